//! Who is calling. Standalone, the server checks personal access tokens itself: the Python
//! client sends one as `X-Opal-Auth` (or a user and password as HTTP Basic); R's opalr sends
//! `Authorization: X-Opal-Auth base64(user:pass)`. The server keeps only SHA-256 digests of the
//! tokens it accepts, each bound to one user. Inside a Trellis project it trusts one caller
//! only, the Trellis API, which has checked the person already and forwards the call with the
//! project's proxy secret and the person's subject.

use std::collections::HashMap;
use std::path::Path;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{AppState, OpalError};

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read the tokens file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the tokens file {path} is invalid: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    users: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    token_sha256: String,
}

/// The accepted tokens, by digest.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    users: HashMap<[u8; 32], String>,
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Tokens, TokensError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Io {
            path: shown.clone(),
            source,
        })?;
        Tokens::parse(&text).map_err(|message| TokensError::Invalid {
            path: shown,
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Tokens, String> {
        let file: TokensFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let mut users = HashMap::new();
        for entry in file.users {
            if entry.name.len() > 128 || !valid_user_name(&entry.name) {
                return Err(format!("'{}' is not a valid user name", entry.name));
            }
            let bytes = hex::decode(&entry.token_sha256)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    format!("{}: token_sha256 must be 64 hexadecimal digits", entry.name)
                })?;
            if users.insert(bytes, entry.name.clone()).is_some() {
                return Err(format!("{}: the same token is listed twice", entry.name));
            }
        }
        Ok(Tokens { users })
    }

    pub fn with_user(mut self, name: &str, token: &str) -> Tokens {
        self.users.insert(digest(token), name.to_owned());
        self
    }

    /// The user a token belongs to.
    pub fn user(&self, token: &str) -> Option<&str> {
        self.users.get(&digest(token)).map(String::as_str)
    }

    /// The user a request's credentials name: a token header, or user and password (the
    /// password being the user's token) in either Basic or opalr's `X-Opal-Auth` scheme.
    pub fn authenticate(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        if let Some(token) = headers.get("X-Opal-Auth").and_then(|v| v.to_str().ok()) {
            return self.user(token.trim()).map(str::to_owned);
        }
        let authorization = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let (scheme, credentials) = authorization.split_once(' ')?;
        match scheme {
            "Bearer" => self.user(credentials.trim()).map(str::to_owned),
            "Basic" | "X-Opal-Auth" => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(credentials.trim())
                    .ok()?;
                let (name, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
                self.user(password)
                    .filter(|owner| *owner == name)
                    .map(str::to_owned)
            }
            _ => None,
        }
    }
}

/// The header the forwarding proxy proves itself with, and the one naming the person.
pub const PROXY_SECRET_HEADER: &str = "x-trellis-proxy-secret";
pub const PROXY_USER_HEADER: &str = "x-trellis-user";

/// How callers are authenticated.
#[derive(Clone, Debug)]
pub enum Authenticator {
    /// Standalone: personal access tokens from the tokens file.
    Tokens(Tokens),
    /// Behind the Trellis API: a call counts only with the proxy secret (kept as a digest, so
    /// comparing takes the same time whatever the guess), and names its user in a header.
    TrustedProxy { secret_sha256: [u8; 32] },
}

impl From<Tokens> for Authenticator {
    fn from(tokens: Tokens) -> Self {
        Authenticator::Tokens(tokens)
    }
}

/// Shorter secrets could be guessed; the operator makes 64 hexadecimal digits.
const SHORTEST_PROXY_SECRET: usize = 32;

impl Authenticator {
    pub fn trusted_proxy(secret: &str) -> Result<Authenticator, String> {
        let secret = secret.trim();
        if secret.len() < SHORTEST_PROXY_SECRET {
            return Err(format!(
                "the proxy secret must be at least {SHORTEST_PROXY_SECRET} characters"
            ));
        }
        Ok(Authenticator::TrustedProxy {
            secret_sha256: digest(secret),
        })
    }

    /// The user a request speaks for, if its credentials are good.
    pub fn authenticate(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        match self {
            Authenticator::Tokens(tokens) => tokens.authenticate(headers),
            Authenticator::TrustedProxy { secret_sha256 } => {
                let presented = headers.get(PROXY_SECRET_HEADER)?.to_str().ok()?;
                if digest(presented) != *secret_sha256 {
                    return None;
                }
                let user = headers.get(PROXY_USER_HEADER)?.to_str().ok()?;
                valid_user_name(user).then(|| user.to_owned())
            }
        }
    }
}

fn valid_user_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 256 && !name.chars().any(|c| c.is_control() || c == ':')
}

/// The authenticated user of a request.
pub struct User(pub String);

impl<S> FromRequestParts<S> for User
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = OpalError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        state
            .auth
            .authenticate(&parts.headers)
            .map(User)
            .ok_or_else(|| {
                OpalError::new(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    match *state.auth {
                        Authenticator::Tokens(_) => {
                            "a valid personal access token is required (X-Opal-Auth)"
                        }
                        Authenticator::TrustedProxy { .. } => {
                            "this server is reached only through Trellis: connect to your \
                             project's DataSHIELD address with a Trellis access token"
                        }
                    },
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn every_client_form_is_accepted_and_nothing_else() {
        let tokens = Tokens::default().with_user("alice", "s3cret");
        let basic = |user: &str, password: &str| {
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        };
        assert_eq!(
            tokens
                .authenticate(&headers("X-Opal-Auth", "s3cret"))
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            tokens
                .authenticate(&headers("Authorization", "Bearer s3cret"))
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            tokens
                .authenticate(&headers(
                    "Authorization",
                    &format!("Basic {}", basic("alice", "s3cret"))
                ))
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            tokens
                .authenticate(&headers(
                    "Authorization",
                    &format!("X-Opal-Auth {}", basic("alice", "s3cret"))
                ))
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            tokens.authenticate(&headers(
                "Authorization",
                &format!("Basic {}", basic("bob", "s3cret"))
            )),
            None
        );
        assert_eq!(tokens.authenticate(&headers("X-Opal-Auth", "wrong")), None);
        assert_eq!(
            tokens.authenticate(&headers("Authorization", "Digest s3cret")),
            None
        );
        assert_eq!(tokens.authenticate(&HeaderMap::new()), None);
    }

    #[test]
    fn behind_the_proxy_only_the_secret_counts_and_the_user_is_its_header() {
        let secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let auth = Authenticator::trusted_proxy(secret).unwrap();
        let mut forwarded = headers(PROXY_SECRET_HEADER, secret);
        forwarded.insert(PROXY_USER_HEADER, HeaderValue::from_static("alice"));
        assert_eq!(auth.authenticate(&forwarded).as_deref(), Some("alice"));

        let mut wrong = headers(PROXY_SECRET_HEADER, &secret.replace('0', "1"));
        wrong.insert(PROXY_USER_HEADER, HeaderValue::from_static("alice"));
        assert_eq!(auth.authenticate(&wrong), None, "a wrong secret");
        assert_eq!(
            auth.authenticate(&headers(PROXY_SECRET_HEADER, secret)),
            None,
            "no user named"
        );
        let mut empty_user = headers(PROXY_SECRET_HEADER, secret);
        empty_user.insert(PROXY_USER_HEADER, HeaderValue::from_static(""));
        assert_eq!(auth.authenticate(&empty_user), None, "an empty user");
        // A person's own token is no way in: only the proxy is trusted.
        let mut token_only = headers("X-Opal-Auth", secret);
        token_only.insert(PROXY_USER_HEADER, HeaderValue::from_static("alice"));
        assert_eq!(auth.authenticate(&token_only), None);
        assert!(
            Authenticator::trusted_proxy("short")
                .unwrap_err()
                .contains("at least 32")
        );
    }

    #[test]
    fn the_tokens_file_holds_digests_only() {
        let hex_digest = hex::encode(digest("s3cret"));
        let tokens = Tokens::parse(&format!(
            "users:\n- {{name: alice, token_sha256: {hex_digest}}}\n"
        ))
        .unwrap();
        assert_eq!(tokens.user("s3cret"), Some("alice"));
        assert!(
            Tokens::parse("users:\n- {name: alice, token_sha256: abc}\n")
                .unwrap_err()
                .contains("64 hexadecimal")
        );
        assert!(Tokens::parse(&format!("users:\n- {{name: a, token_sha256: {hex_digest}}}\n- {{name: b, token_sha256: {hex_digest}}}\n")).unwrap_err().contains("twice"));
    }
}
