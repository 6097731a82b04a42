//! Browser sessions and sign-ins in progress, kept in the database so any replica can serve
//! any request. Only SHA-256 digests of the random cookie and state values are stored.

use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use super::Principal;
use crate::store::{Store, StoreError, timestamp};

pub const SESSION_COOKIE: &str = "trellis_session";
/// Binds a sign-in to the browser that started it (against login CSRF).
pub const LOGIN_COOKIE: &str = "trellis_login";
/// The header unsafe requests with a session cookie must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A random 256-bit value, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Constant-time comparison for secrets from requests.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[derive(Clone, Debug)]
pub struct Session {
    pub principal: Principal,
    pub csrf_token: String,
}

/// A sign-in started at the provider: what the callback needs to finish it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoginAttempt {
    pub pkce_verifier: String,
    pub nonce: String,
    pub return_to: String,
}

#[derive(Clone)]
pub struct Sessions {
    store: Store,
    ttl: Duration,
}

impl Sessions {
    pub fn new(store: Store, ttl: Duration) -> Self {
        Self { store, ttl }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Creates a session on `conn` (the sign-in's audit transaction); returns the cookie value.
    pub async fn create(
        &self,
        conn: &mut AnyConnection,
        principal: &Principal,
    ) -> Result<(String, String), StoreError> {
        let id = random_token();
        let csrf = random_token();
        let now = chrono::Utc::now();
        let expires =
            now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::hours(8));
        sqlx::query(
            "INSERT INTO sessions (id_hash, principal, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest(&id))
        .bind(serde_json::to_string(principal).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(&csrf)
        .bind(timestamp(now))
        .bind(timestamp(expires))
        .execute(&mut *conn)
        .await?;
        Ok((id, csrf))
    }

    /// The live session a cookie names, if any.
    pub async fn get(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT principal, csrf_token FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(digest(id))
        .bind(timestamp(chrono::Utc::now()))
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let principal: String = row.try_get("principal")?;
        Ok(Some(Session {
            principal: serde_json::from_str(&principal)
                .map_err(|e| StoreError::Corrupt(format!("session: {e}")))?,
            csrf_token: row.try_get("csrf_token")?,
        }))
    }

    /// Ends a session; returns whether it existed.
    pub async fn delete(&self, conn: &mut AnyConnection, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(digest(id))
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Remembers a sign-in started with `state` for ten minutes.
    pub async fn start_login(&self, state: &str, attempt: &LoginAttempt) -> Result<(), StoreError> {
        let expires = chrono::Utc::now() + chrono::Duration::minutes(10);
        sqlx::query(
            "INSERT INTO login_attempts (state_hash, pkce_verifier, nonce, return_to, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest(state))
        .bind(&attempt.pkce_verifier)
        .bind(&attempt.nonce)
        .bind(&attempt.return_to)
        .bind(timestamp(expires))
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Takes (and forgets) the sign-in started with `state`: a state is good for one callback.
    pub async fn finish_login(&self, state: &str) -> Result<Option<LoginAttempt>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM login_attempts WHERE state_hash = $1 AND expires_at > $2 \
             RETURNING pkce_verifier, nonce, return_to",
        )
        .bind(digest(state))
        .bind(timestamp(chrono::Utc::now()))
        .fetch_optional(self.store.pool())
        .await?;
        row.map(|row| {
            Ok(LoginAttempt {
                pkce_verifier: row.try_get("pkce_verifier")?,
                nonce: row.try_get("nonce")?,
                return_to: row.try_get("return_to")?,
            })
        })
        .transpose()
    }

    /// Deletes expired sessions and sign-ins.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = timestamp(chrono::Utc::now());
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(&now)
            .execute(self.store.pool())
            .await?;
        let logins = sqlx::query("DELETE FROM login_attempts WHERE expires_at <= $1")
            .bind(&now)
            .execute(self.store.pool())
            .await?;
        Ok(sessions.rows_affected() + logins.rows_affected())
    }
}

/// Where to go after sign-in: only a path on this site, never another origin.
pub fn safe_return_path(requested: Option<&str>) -> String {
    match requested {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(|c| c.is_control()) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(safe_return_path(Some("/projects/demo")), "/projects/demo");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "javascript:x",
            "/a\nb",
            "",
        ] {
            assert_eq!(safe_return_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_path(None), "/");
    }

    #[test]
    fn tokens_are_random_and_long() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &random_token()));
        assert!(!same_secret("short", "longer"));
    }
}
