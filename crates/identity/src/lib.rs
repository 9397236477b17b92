//! Who is asking: the claims of the access tokens the auth service issues, and their local
//! verification against the issuer's published keys (JWKS).
//!
//! The gateway and the API server both verify access tokens this way — signature (ES256, by
//! `kid`), `typ: at+jwt`, `iss`, `aud` and `exp` — without a database call or a session
//! lookup per request. Keys are cached and fetched again, at most every few seconds, when a
//! token names a `kid` we do not know (key rotation).
//!
//! [`Transport`] is how the issuer is reached: over HTTP, or in-process when every role runs
//! in one binary (the same requests and responses, without the network).
//!
//! [`Scope`] is the one list of the scopes a token can carry, with what each allows in words.

pub mod jwks;
pub mod scope;
mod transport;

pub use jwks::{Jwks, VerifyError};
pub use scope::{Scope, Scopes};
pub use transport::{Http, InProcess, Transport, TransportError};

use serde::{Deserialize, Serialize};

/// The audience of access tokens: the API server (and the gateway on its behalf).
pub const API_AUDIENCE: &str = "turtlemen-api";
/// The JOSE `typ` of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The claims of an access token (RFC 9068 shape plus the profile the services need).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub auth_time: i64,
    pub sid: String,
    pub preferred_username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl AccessClaims {
    /// The scopes the token grants (unknown names dropped).
    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope)
    }
}
