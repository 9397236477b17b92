//! CSRF protection for every form of the auth service.
//!
//! A random value lives in an HttpOnly cookie (`__Host-` prefixed over https); each form carries
//! `HMAC-SHA256(cookie key, value ‖ login session cookie)`. A cross-site page can neither read
//! the cookies nor compute the MAC, so it cannot forge a submission; the check is constant-time.
//! The token is bound to the browser's login (SSO) session when there is one, so a cookie and
//! token pair made in another browser or account does not pass, and a token dies with its
//! session; at sign-in the cookie value itself is replaced ([`Csrf::rotate`]).

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
    /// The login session's cookie, which tokens are bound to.
    session_cookie: &'static str,
    secure: bool,
}

impl Csrf {
    pub fn new(cookie_key: &[u8], secure: bool) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, cookie_key),
            cookie_name: if secure { "__Host-turtlemen_csrf" } else { "turtlemen_csrf" },
            session_cookie: crate::sso::cookie_name(secure),
            secure,
        }
    }

    fn cookie(&self, value: String) -> Cookie<'static> {
        Cookie::build((self.cookie_name, value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .build()
    }

    /// What the MAC covers: the cookie value and the login session cookie of the same browser.
    fn message(&self, jar: &CookieJar, value: &str) -> String {
        let session = jar.get(self.session_cookie).map(|c| c.value().to_string()).unwrap_or_default();
        format!("csrf:{value}\0{session}")
    }

    /// The jar with a new cookie value: every token made before stops passing (at sign-in).
    pub fn rotate(&self, jar: CookieJar) -> CookieJar {
        jar.add(self.cookie(random_token(32)))
    }

    /// The token for the form about to be rendered, setting the cookie first if needed.
    pub fn token(&self, jar: CookieJar) -> (CookieJar, String) {
        let (jar, value) = match jar.get(self.cookie_name).map(|c| c.value().to_string()) {
            Some(v) if v.len() == 43 => (jar, v),
            _ => {
                let v = random_token(32);
                (jar.add(self.cookie(v.clone())), v)
            }
        };
        let tag = hmac::sign(&self.key, self.message(&jar, &value).as_bytes());
        (jar, b64url(tag.as_ref()))
    }

    /// Whether `submitted` is the token for this browser's cookie and login session.
    pub fn verify(&self, jar: &CookieJar, submitted: &str) -> bool {
        let Some(cookie) = jar.get(self.cookie_name) else { return false };
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(submitted) else { return false };
        hmac::verify(&self.key, self.message(jar, cookie.value()).as_bytes(), &tag).is_ok()
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
        let (jar, again) = csrf.token(jar);
        assert_eq!(again, token);
        // Bound to the login session: signing in (a session cookie) or another session changes it.
        let signed_in = jar.clone().add(Cookie::new("turtlemen_sso", "a".repeat(43)));
        assert!(!csrf.verify(&signed_in, &token), "a pre-login token does not pass in a session");
        let (signed_in, in_session) = csrf.token(signed_in);
        assert!(csrf.verify(&signed_in, &in_session));
        let other_session = signed_in.clone().add(Cookie::new("turtlemen_sso", "b".repeat(43)));
        assert!(!csrf.verify(&other_session, &in_session), "another session's token");
        // Rotating replaces the cookie: earlier tokens stop passing.
        let rotated = csrf.rotate(signed_in);
        assert!(!csrf.verify(&rotated, &in_session));
    }
}
