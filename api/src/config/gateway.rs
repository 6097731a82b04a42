//! `gateway`: the workspace gateway, and the separate origin workspaces may be served from.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{ConfigError, invalid};

/// The workspace gateway (`/w/<project>/<workspace>/`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Activity is written to a Workspace (`trellis.dev/last-activity`, for idle shutdown) at
    /// most this often; idle timeouts are only as precise as this.
    #[serde(default = "default_activity_interval", with = "humantime_serde")]
    pub activity_interval: Duration,
    /// How long to wait for a workspace to accept a connection before answering 502.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// The origin workspaces are served from, e.g. `https://workspaces.trellis.example`: another
    /// host than `public_url`, so that nothing a workspace shows in the browser runs with
    /// Trellis's session (the browser carries the sign-in over with a one-time ticket). Unset:
    /// workspaces are served under `public_url` (see the README's security notes).
    #[serde(default)]
    pub public_url: Option<Url>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            activity_interval: default_activity_interval(),
            connect_timeout: default_connect_timeout(),
            public_url: None,
        }
    }
}

pub(super) fn default_activity_interval() -> Duration {
    Duration::from_secs(60)
}

pub(super) fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The workspace origin must be an origin of its own (a different host: cookies ignore ports),
/// with nothing after it, and as secure as Trellis's.
pub(super) fn validate_workspace_origin(origin: &Url, public_url: &Url) -> Result<(), ConfigError> {
    let field = "gateway.public_url";
    if !matches!(origin.scheme(), "http" | "https") {
        return Err(invalid(field, "must be an http or https URL"));
    }
    if origin.scheme() == "http" && public_url.scheme() == "https" {
        return Err(invalid(field, "must be https when public_url is"));
    }
    if origin.path() != "/" || origin.query().is_some() || origin.fragment().is_some() {
        return Err(invalid(
            field,
            "is an origin only (scheme, host, port), without a path",
        ));
    }
    if origin.host_str() == public_url.host_str() {
        return Err(invalid(
            field,
            "must be another host than public_url (a different port is not enough: browsers \
             send cookies to every port of a host)",
        ));
    }
    Ok(())
}
