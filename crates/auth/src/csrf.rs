//! CSRF protection for every form of the auth service.
//!
//! A random value lives in an HttpOnly cookie (`__Host-` prefixed over https); each form carries
//! `HMAC-SHA256(cookie key, value)`. A cross-site page can neither read the cookie nor compute
//! the MAC, so it cannot forge a submission; the check is constant-time.

use crate::util::{b64url, random_token};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use ring::hmac;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// CSRF tokens bound to one instance's cookie key.
#[derive(Clone)]
pub struct Csrf {
    key: hmac::Key,
    cookie_name: &'static str,
    secure: bool,
}

impl Csrf {
    pub fn new(cookie_key: &[u8], secure: bool) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, cookie_key),
            cookie_name: if secure { "__Host-turtlemen_csrf" } else { "turtlemen_csrf" },
            secure,
        }
    }

    /// The token for the form about to be rendered, setting the cookie first if needed.
    pub fn token(&self, jar: CookieJar) -> (CookieJar, String) {
        let (jar, value) = match jar.get(self.cookie_name).map(|c| c.value().to_string()) {
            Some(v) if v.len() == 43 => (jar, v),
            _ => {
                let v = random_token(32);
                let cookie = Cookie::build((self.cookie_name, v.clone()))
                    .path("/")
                    .http_only(true)
                    .secure(self.secure)
                    .same_site(SameSite::Lax)
                    .build();
                (jar.add(cookie), v)
            }
        };
        let tag = hmac::sign(&self.key, format!("csrf:{value}").as_bytes());
        (jar, b64url(tag.as_ref()))
    }

    /// Whether `submitted` is the token for this browser's cookie.
    pub fn verify(&self, jar: &CookieJar, submitted: &str) -> bool {
        let Some(cookie) = jar.get(self.cookie_name) else { return false };
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(submitted) else { return false };
        hmac::verify(&self.key, format!("csrf:{}", cookie.value()).as_bytes(), &tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_the_cookie_and_the_key() {
        let csrf = Csrf::new(&[7u8; 64], false);
        let (jar, token) = csrf.token(CookieJar::new());
        assert!(csrf.verify(&jar, &token));
        assert!(!csrf.verify(&jar, "forged"));
        assert!(!csrf.verify(&CookieJar::new(), &token), "no cookie, no pass");
        let (other_jar, _) = csrf.token(CookieJar::new());
        assert!(!csrf.verify(&other_jar, &token), "another browser's token");
        let other_key = Csrf::new(&[8u8; 64], false);
        assert!(!other_key.verify(&jar, &token));
        // The same browser keeps its cookie and gets the same token.
        let (_, again) = csrf.token(jar);
        assert_eq!(again, token);
    }
}
