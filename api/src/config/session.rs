//! `session` and `workspace_tokens`: browser sessions, and the tokens workspaces present.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// A session ends this long after sign-in, whatever happens.
    #[serde(default = "default_session_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// Send the session cookie only over HTTPS. Only a plain-HTTP development setup turns it off.
    #[serde(default = "default_true")]
    pub secure_cookie: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ttl: default_session_ttl(),
            secure_cookie: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceTokenConfig {
    /// The audience of the projected service-account tokens workspaces present.
    #[serde(default = "default_workspace_audience")]
    pub audience: String,
    /// How long a TokenReview answer is reused for the same token.
    #[serde(default = "default_review_cache", with = "humantime_serde")]
    pub cache_ttl: Duration,
}

impl Default for WorkspaceTokenConfig {
    fn default() -> Self {
        Self {
            audience: default_workspace_audience(),
            cache_ttl: default_review_cache(),
        }
    }
}

pub(super) fn default_session_ttl() -> Duration {
    Duration::from_secs(8 * 3600)
}

pub(super) fn default_true() -> bool {
    true
}

pub(super) fn default_workspace_audience() -> String {
    "trellis".into()
}

pub(super) fn default_review_cache() -> Duration {
    Duration::from_secs(60)
}
