//! `oidc` and `roles`: the identity provider, and the provider groups that grant platform roles.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL; its discovery document and keys are read from here.
    pub issuer: Url,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A file holding the client secret (a mounted Secret), instead of `client_secret`.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Audiences a bearer token may carry; empty means the client id.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// The scopes browser sign-in asks for. Unset (the default), Trellis asks for `openid` and,
    /// of `profile`, `email` and `groups`, those the provider's discovery document lists in
    /// `scopes_supported`, so that a provider without a `groups` scope (Keycloak's default
    /// configuration, which puts groups in tokens through a mapper instead) is not refused with
    /// `invalid_scope`; when the document lists no scopes at all, it asks for all four. Set, the
    /// list is sent as written (it must include `openid`): the override for a provider that
    /// needs a scope of its own.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// The public client (no secret) that `trellis login` uses for the device authorization
    /// grant; its tokens are accepted as the API's own. Unset: the CLI uses `client_id`.
    #[serde(default)]
    pub cli_client_id: Option<String>,
    /// The claim that names a person; it is matched against `Project.spec.members[].subject`.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The claim listing a person's groups, mapped to platform roles by `roles`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Signature algorithms accepted on tokens; `none` and HMAC are never accepted.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
    /// Shortest interval between two key-set fetches caused by tokens with an unknown key id.
    #[serde(default = "default_jwks_refresh", with = "humantime_serde")]
    pub jwks_min_refresh: Duration,
}

/// Provider groups that grant each platform role.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleGroups {
    #[serde(default = "default_admin_groups")]
    pub admin: BTreeSet<String>,
    #[serde(default = "default_checker_groups")]
    pub output_checker: BTreeSet<String>,
    #[serde(default = "default_steward_groups")]
    pub data_steward: BTreeSet<String>,
}

impl Default for RoleGroups {
    fn default() -> Self {
        Self {
            admin: default_admin_groups(),
            output_checker: default_checker_groups(),
            data_steward: default_steward_groups(),
        }
    }
}

/// The scopes asked for when neither the configuration nor the provider says otherwise.
pub const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "groups"];

pub(super) fn default_subject_claim() -> String {
    "preferred_username".into()
}

pub(super) fn default_groups_claim() -> String {
    "groups".into()
}

pub(super) fn default_algorithms() -> Vec<String> {
    ["RS256", "ES256"].map(String::from).to_vec()
}

pub(super) fn default_leeway() -> Duration {
    Duration::from_secs(30)
}

pub(super) fn default_jwks_refresh() -> Duration {
    Duration::from_secs(10)
}

pub(super) fn default_admin_groups() -> BTreeSet<String> {
    BTreeSet::from(["trellis-admins".to_string()])
}

pub(super) fn default_checker_groups() -> BTreeSet<String> {
    BTreeSet::from(["trellis-output-checkers".to_string()])
}

pub(super) fn default_steward_groups() -> BTreeSet<String> {
    BTreeSet::from(["trellis-data-stewards".to_string()])
}
