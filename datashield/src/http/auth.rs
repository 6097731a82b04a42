//! Who is calling. The Python client sends a personal access token as `X-Opal-Auth` (or a
//! user and password as HTTP Basic); R's opalr sends `Authorization: X-Opal-Auth base64(user:pass)`.
//! The server keeps only SHA-256 digests of the tokens it accepts, each bound to one user.

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
            if entry.name.is_empty()
                || entry.name.len() > 128
                || entry.name.chars().any(|c| c.is_control() || c == ':')
            {
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
            .tokens
            .authenticate(&parts.headers)
            .map(User)
            .ok_or_else(|| {
                OpalError::new(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    "a valid personal access token is required (X-Opal-Auth)",
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
