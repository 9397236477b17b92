//! External identity providers: the `[[identity_providers]]` tables of the config file (no
//! environment or flag twin: an array of tables has no sensible one) and their parsed form.
//!
//! Every endpoint is `https://`, or `http://` on a loopback host only (local test providers), so
//! a typo cannot send a client secret or a user's token over the network in clear.

use crate::{ConfigError, invalid};
use turtlemen_domain::Secret;
use url::Url;

/// One `[[identity_providers]]` table as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityProviderSettings {
    /// Short id in URLs and the database (`google`, `github`…): `[a-z0-9-]`, 1 to 32 characters.
    pub id: String,
    /// `oidc`, `github` or `facebook`.
    pub kind: String,
    /// Shown on the buttons ("Sign in with …"); defaults to the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub client_id: String,
    pub client_secret: Secret,
    /// OpenID Connect: the issuer; discovery at `{issuer}/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// OpenID Connect: the discovery document's URL, when it is not under the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// Scopes to ask for; defaults per kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Whether a first sign-in may attach to a local account with the same email, when the
    /// provider says the email is verified.
    #[serde(default)]
    pub link_by_verified_email: bool,
    /// GitHub / Facebook: overrides of the real endpoints (for GitHub Enterprise, or tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
}

/// How a provider is spoken to, with its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// Any OpenID Connect provider, found through its discovery document.
    Oidc { issuer: String, discovery_url: Url },
    /// GitHub: OAuth 2.0 plus its REST API (`/user`, `/user/emails`).
    Github { auth_url: Url, token_url: Url, api_base_url: Url },
    /// Meta/Facebook: OAuth 2.0 plus the Graph API (`/me`).
    Facebook { auth_url: Url, token_url: Url, api_base_url: Url },
}

impl ProviderKind {
    pub fn name(&self) -> &'static str {
        match self {
            ProviderKind::Oidc { .. } => "oidc",
            ProviderKind::Github { .. } => "github",
            ProviderKind::Facebook { .. } => "facebook",
        }
    }
}

/// A parsed provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProvider {
    pub id: String,
    pub display_name: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    pub link_by_verified_email: bool,
}

const KEY: &str = "identity_providers";

/// Whether `url` may carry secrets: https, or http to a loopback host.
pub fn acceptable_endpoint(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

fn endpoint(id: &str, name: &str, text: Option<&str>, default: &str) -> Result<Url, ConfigError> {
    let text = text.unwrap_or(default);
    let url = Url::parse(text).map_err(|e| invalid(KEY, format!("{id}: {name} {text:?} is not a URL ({e})")))?;
    if !acceptable_endpoint(&url) || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(KEY, format!("{id}: {name} must be https:// (http:// only on a loopback host)")));
    }
    Ok(url)
}

/// Parses and checks every provider; ids must be unique.
pub fn resolve(raw: &[IdentityProviderSettings]) -> Result<Vec<IdentityProvider>, ConfigError> {
    let mut out: Vec<IdentityProvider> = Vec::new();
    for p in raw {
        let id = p.id.as_str();
        let id_ok = (1..=32).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok {
            return Err(invalid(KEY, format!("id {id:?} must be 1 to 32 characters of a-z, 0-9 and '-'")));
        }
        if out.iter().any(|o| o.id == id) {
            return Err(invalid(KEY, format!("id {id:?} is used twice")));
        }
        if p.client_id.trim().is_empty() || p.client_secret.is_empty() {
            return Err(invalid(KEY, format!("{id}: client_id and client_secret must not be empty")));
        }
        let only_oidc = p.issuer.is_some() || p.discovery_url.is_some();
        let only_oauth = p.auth_url.is_some() || p.token_url.is_some() || p.api_base_url.is_some();
        let kind = match p.kind.as_str() {
            "oidc" => {
                if only_oauth {
                    return Err(invalid(
                        KEY,
                        format!(
                            "{id}: auth_url, token_url and api_base_url are for github and facebook; an oidc provider is found by its issuer"
                        ),
                    ));
                }
                let (issuer, discovery_url) = match (&p.issuer, &p.discovery_url) {
                    (_, Some(d)) => {
                        let url = endpoint(id, "discovery_url", Some(d), "")?;
                        let issuer = match &p.issuer {
                            Some(i) => i.trim_end_matches('/').to_owned(),
                            None => d.split("/.well-known/").next().unwrap_or(d).trim_end_matches('/').to_owned(),
                        };
                        (issuer, url)
                    }
                    (Some(i), None) => {
                        let i = i.trim_end_matches('/');
                        (
                            i.to_owned(),
                            endpoint(id, "issuer", Some(&format!("{i}/.well-known/openid-configuration")), "")?,
                        )
                    }
                    (None, None) => {
                        return Err(invalid(KEY, format!("{id}: an oidc provider needs issuer (or discovery_url)")));
                    }
                };
                ProviderKind::Oidc { issuer, discovery_url }
            }
            "github" | "facebook" if only_oidc => {
                return Err(invalid(KEY, format!("{id}: issuer and discovery_url are only for kind = \"oidc\"")));
            }
            "github" => ProviderKind::Github {
                auth_url: endpoint(id, "auth_url", p.auth_url.as_deref(), "https://github.com/login/oauth/authorize")?,
                token_url: endpoint(
                    id,
                    "token_url",
                    p.token_url.as_deref(),
                    "https://github.com/login/oauth/access_token",
                )?,
                api_base_url: endpoint(id, "api_base_url", p.api_base_url.as_deref(), "https://api.github.com")?,
            },
            "facebook" => ProviderKind::Facebook {
                auth_url: endpoint(
                    id,
                    "auth_url",
                    p.auth_url.as_deref(),
                    "https://www.facebook.com/v19.0/dialog/oauth",
                )?,
                token_url: endpoint(
                    id,
                    "token_url",
                    p.token_url.as_deref(),
                    "https://graph.facebook.com/v19.0/oauth/access_token",
                )?,
                api_base_url: endpoint(
                    id,
                    "api_base_url",
                    p.api_base_url.as_deref(),
                    "https://graph.facebook.com/v19.0",
                )?,
            },
            other => return Err(invalid(KEY, format!("{id}: kind {other:?} is not oidc, github or facebook"))),
        };
        let default_scopes: &[&str] = match kind {
            ProviderKind::Oidc { .. } => &["openid", "email", "profile"],
            ProviderKind::Github { .. } => &["read:user", "user:email"],
            ProviderKind::Facebook { .. } => &["email", "public_profile"],
        };
        let scopes = p.scopes.clone().unwrap_or_else(|| default_scopes.iter().map(|s| (*s).to_owned()).collect());
        if scopes.iter().any(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control())) {
            return Err(invalid(KEY, format!("{id}: scopes must be non-empty words without spaces")));
        }
        if matches!(kind, ProviderKind::Oidc { .. }) && !scopes.iter().any(|s| s == "openid") {
            return Err(invalid(KEY, format!("{id}: an oidc provider's scopes must include \"openid\"")));
        }
        let display_name = p.display_name.clone().unwrap_or_else(|| id.to_owned());
        if display_name.trim().is_empty() || display_name.chars().count() > 64 {
            return Err(invalid(KEY, format!("{id}: display_name must be 1 to 64 characters")));
        }
        out.push(IdentityProvider {
            id: id.to_owned(),
            display_name,
            kind,
            client_id: p.client_id.trim().to_owned(),
            client_secret: p.client_secret.clone(),
            scopes,
            link_by_verified_email: p.link_by_verified_email,
        });
    }
    Ok(out)
}

/// The settings that resolve to `providers` (secrets redacted when serialised), for
/// `turtlemen config`.
pub fn unresolve(providers: &[IdentityProvider]) -> Vec<IdentityProviderSettings> {
    providers
        .iter()
        .map(|p| {
            let (issuer, discovery_url, auth_url, token_url, api_base_url) = match &p.kind {
                ProviderKind::Oidc { issuer, discovery_url } => {
                    (Some(issuer.clone()), Some(discovery_url.to_string()), None, None, None)
                }
                ProviderKind::Github { auth_url, token_url, api_base_url }
                | ProviderKind::Facebook { auth_url, token_url, api_base_url } => (
                    None,
                    None,
                    Some(auth_url.to_string()),
                    Some(token_url.to_string()),
                    Some(api_base_url.to_string()),
                ),
            };
            IdentityProviderSettings {
                id: p.id.clone(),
                kind: p.kind.name().to_owned(),
                display_name: Some(p.display_name.clone()),
                client_id: p.client_id.clone(),
                client_secret: p.client_secret.clone(),
                issuer,
                discovery_url,
                scopes: Some(p.scopes.clone()),
                link_by_verified_email: p.link_by_verified_email,
                auth_url,
                token_url,
                api_base_url,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Vec<IdentityProviderSettings> {
        #[derive(serde::Deserialize)]
        struct File {
            identity_providers: Vec<IdentityProviderSettings>,
        }
        toml::from_str::<File>(text).map(|f| f.identity_providers).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn defaults_per_kind() {
        let raw = table(
            r#"
            [[identity_providers]]
            id = "google"
            kind = "oidc"
            display_name = "Google"
            client_id = "c"
            client_secret = "s"
            issuer = "https://accounts.google.com/"

            [[identity_providers]]
            id = "github"
            kind = "github"
            client_id = "c"
            client_secret = "s"
            link_by_verified_email = true
            "#,
        );
        let ps = resolve(&raw).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ps[0].kind,
            ProviderKind::Oidc {
                issuer: "https://accounts.google.com".into(),
                discovery_url: Url::parse("https://accounts.google.com/.well-known/openid-configuration").unwrap()
            }
        );
        assert_eq!(ps[0].scopes, ["openid", "email", "profile"]);
        assert!(
            matches!(&ps[1].kind, ProviderKind::Github { api_base_url, .. } if api_base_url.as_str() == "https://api.github.com/")
        );
        assert!(ps[1].link_by_verified_email && !ps[0].link_by_verified_email);
        assert_eq!(ps[1].display_name, "github");
        assert_eq!(resolve(&unresolve(&ps)).unwrap_or_else(|e| panic!("{e}")), ps);
    }

    #[test]
    fn refusals_name_the_problem() {
        let base = IdentityProviderSettings {
            id: "x".into(),
            kind: "oidc".into(),
            display_name: None,
            client_id: "c".into(),
            client_secret: Secret::new("s"),
            issuer: Some("https://id.example".into()),
            discovery_url: None,
            scopes: None,
            link_by_verified_email: false,
            auth_url: None,
            token_url: None,
            api_base_url: None,
        };
        let refused = |p: IdentityProviderSettings| resolve(&[p]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused(IdentityProviderSettings { id: "Bad Id".into(), ..base.clone() }).contains("a-z"));
        assert!(refused(IdentityProviderSettings { kind: "saml".into(), ..base.clone() }).contains("not oidc"));
        assert!(
            refused(IdentityProviderSettings { issuer: Some("http://id.example".into()), ..base.clone() })
                .contains("https")
        );
        assert!(refused(IdentityProviderSettings { issuer: None, ..base.clone() }).contains("needs issuer"));
        assert!(
            refused(IdentityProviderSettings { client_secret: Secret::new(""), ..base.clone() })
                .contains("client_secret")
        );
        assert!(
            refused(IdentityProviderSettings { scopes: Some(vec!["email".into()]), ..base.clone() }).contains("openid")
        );
        assert!(resolve(&[base.clone(), base.clone()]).is_err(), "duplicate ids");
        // Loopback http is allowed (local providers in tests).
        let local = IdentityProviderSettings { issuer: Some("http://127.0.0.1:9/op".into()), ..base };
        assert!(resolve(&[local]).is_ok());
    }
}
