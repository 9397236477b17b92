//! Redirect targets (`RedirectTarget::parse_local`): the `rd` and `return_to` values of the
//! gateway's and the auth service's sign-in and sign-out flows.
//!
//! Holds: an accepted target, resolved by a WHATWG URL parser (the `url` crate, as a browser
//! does) against any page of the site, stays on the site's origin; it is a valid `Location`
//! header value (axum's `Redirect::to` panics on one that is not); it is kept as given.

use axum::http::HeaderValue;
use turtlemen_domain::RedirectTarget;
use url::Url;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some(target) = RedirectTarget::parse_local(text) else { return };
    assert_eq!(target.as_str(), text);
    assert!(HeaderValue::from_str(target.as_str()).is_ok(), "not a Location value: {text:?}");
    for base in ["https://video.example.org/", "https://video.example.org/auth/login?x=1", "http://[::1]:8080/a/b"] {
        let base = Url::parse(base).expect("a fixed URL");
        let to = base.join(target.as_str()).unwrap_or_else(|e| panic!("{text:?} does not resolve: {e}"));
        assert_eq!(to.origin(), base.origin(), "{text:?} leaves the site: {to}");
    }
}
