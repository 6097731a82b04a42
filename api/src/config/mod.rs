//! The API's configuration: one YAML file, overridden by `TRELLIS_API__<SECTION>__<FIELD>`
//! environment variables (e.g. `TRELLIS_API__OIDC__CLIENT_SECRET`). Every mistake is reported at
//! start with the field it is in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Yaml};
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use url::Url;

mod airlock;
mod database;
mod error;
mod gateway;
mod notifications;
mod oidc;
mod session;

pub use airlock::*;
pub use database::*;
pub use error::ConfigError;
pub use gateway::*;
pub use notifications::*;
pub use oidc::*;
pub use session::*;

use error::invalid;

/// The prefix of environment overrides; `__` separates nested fields.
pub const ENV_PREFIX: &str = "TRELLIS_API__";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP server listens.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where `/metrics` (with `/healthz` and `/readyz`) is served, for Prometheus: never on
    /// `listen`, which people (and the Ingress) reach. Unset: no metrics are served.
    #[serde(default)]
    pub ops_listen: Option<SocketAddr>,
    /// The address people and workspaces use to reach Trellis; sign-in redirects come back here.
    pub public_url: Url,
    /// Where the embedded SQLite database lives when no database URL is configured.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub database: DatabaseConfig,
    pub oidc: OidcConfig,
    #[serde(default)]
    pub roles: RoleGroups,
    #[serde(default)]
    pub session: SessionConfig,
    #[serde(default)]
    pub workspace_tokens: WorkspaceTokenConfig,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub airlock: AirlockConfig,
    #[serde(default)]
    pub notifications: NotificationsConfig,
    #[serde(default)]
    pub gateway: GatewayConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest JSON request body accepted.
    #[serde(default = "default_json_body_bytes")]
    pub json_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            json_body_bytes: default_json_body_bytes(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/trellis")
}

fn default_json_body_bytes() -> usize {
    64 * 1024
}

impl Config {
    /// Reads `path`, applies environment overrides from `env`, and validates the result.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::Missing(path.to_owned()));
        }
        Self::from_figment(
            Figment::new()
                .merge(Yaml::file_exact(path))
                .merge(Env::prefixed(ENV_PREFIX).split("__")),
        )
    }

    /// Parses a YAML document (no environment), for tests and `config check`.
    pub fn from_yaml(yaml: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::new().merge(Yaml::string(yaml)))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(|error| {
            // One line per problem, each naming its field.
            let lines: Vec<String> = error
                .into_iter()
                .map(|e| {
                    let field = e.path.join(".");
                    if field.is_empty() {
                        e.kind.to_string()
                    } else {
                        format!("field `{field}`: {}", e.kind)
                    }
                })
                .collect();
            ConfigError::Parse(lines.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.public_url.scheme(), "http" | "https") {
            return Err(invalid("public_url", "must be an http or https URL"));
        }
        if self
            .ops_listen
            .is_some_and(|ops| ops.port() == self.listen.port())
        {
            return Err(invalid(
                "ops_listen",
                "must be another port than `listen`: metrics are not for the public listener",
            ));
        }
        if !matches!(self.oidc.issuer.scheme(), "http" | "https") {
            return Err(invalid("oidc.issuer", "must be an http or https URL"));
        }
        if self.oidc.client_id.trim().is_empty() {
            return Err(invalid("oidc.client_id", "must not be empty"));
        }
        match (&self.oidc.client_secret, &self.oidc.client_secret_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "oidc.client_secret",
                    "set either client_secret or client_secret_file, not both",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "oidc.client_secret",
                    "a client secret is required (client_secret or client_secret_file)",
                ));
            }
            _ => {}
        }
        if self
            .oidc
            .cli_client_id
            .as_ref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err(invalid("oidc.cli_client_id", "must not be empty when set"));
        }
        if let Some(scopes) = &self.oidc.scopes
            && !scopes.iter().any(|s| s == "openid")
        {
            return Err(invalid("oidc.scopes", "must include `openid`"));
        }
        self.algorithms()?;
        if self.oidc.leeway > Duration::from_secs(300) {
            return Err(invalid("oidc.leeway", "at most 5m"));
        }
        if self.session.ttl < Duration::from_secs(60)
            || self.session.ttl > Duration::from_secs(7 * 24 * 3600)
        {
            return Err(invalid("session.ttl", "between 1m and 7d"));
        }
        if self.session.secure_cookie && self.public_url.scheme() == "http" {
            return Err(invalid(
                "session.secure_cookie",
                "secure cookies need an https public_url; turn them off only for local development",
            ));
        }
        if let Some(url) = &self.database.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must be a postgres:// URL (leave it unset for the embedded SQLite database)",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.limits.json_body_bytes < 1024 {
            return Err(invalid("limits.json_body_bytes", "must be at least 1024"));
        }
        let limits = self.airlock.limits;
        if limits.open_requests_per_project == 0
            || limits.requests_per_day == 0
            || limits.files_per_request == 0
            || limits.bytes_per_request == 0
        {
            return Err(invalid("airlock.limits", "every limit must be at least 1"));
        }
        if self.airlock.max_file_bytes == 0 {
            return Err(invalid("airlock.max_file_bytes", "must be at least 1"));
        }
        if let Some(s3) = &self.airlock.s3 {
            if self.airlock.storage_dir.is_some() {
                return Err(invalid(
                    "airlock.storage_dir",
                    "files go to either a directory or S3: unset storage_dir or s3",
                ));
            }
            validate_s3(s3, self.airlock.max_file_bytes)?;
        }
        if self.gateway.activity_interval < Duration::from_secs(1)
            || self.gateway.activity_interval > Duration::from_secs(3600)
        {
            return Err(invalid("gateway.activity_interval", "between 1s and 1h"));
        }
        if self.gateway.connect_timeout < Duration::from_millis(100)
            || self.gateway.connect_timeout > Duration::from_secs(60)
        {
            return Err(invalid("gateway.connect_timeout", "between 100ms and 1m"));
        }
        if let Some(origin) = &self.gateway.public_url {
            validate_workspace_origin(origin, &self.public_url)?;
        }
        if self.workspace_tokens.audience.is_empty() {
            return Err(invalid("workspace_tokens.audience", "must not be empty"));
        }
        if let Some(smtp) = &self.notifications.smtp {
            validate_smtp(smtp)?;
        }
        Ok(())
    }

    /// The accepted signature algorithms. Only asymmetric ones: an HMAC key would have to be
    /// shared with the provider, and `none` is no signature at all.
    pub fn algorithms(&self) -> Result<Vec<Algorithm>, ConfigError> {
        if self.oidc.algorithms.is_empty() {
            return Err(invalid(
                "oidc.algorithms",
                "must list at least one algorithm",
            ));
        }
        self.oidc
            .algorithms
            .iter()
            .map(|name| {
                let algorithm = Algorithm::from_str(name).map_err(|_| {
                    invalid("oidc.algorithms", format!("unknown algorithm `{name}`"))
                })?;
                if matches!(
                    algorithm,
                    Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                ) {
                    return Err(invalid(
                        "oidc.algorithms",
                        format!("`{name}` is symmetric; only public-key algorithms are accepted"),
                    ));
                }
                Ok(algorithm)
            })
            .collect()
    }

    /// The audiences bearer tokens must carry: without a list, the client id and the CLI's.
    pub fn audiences(&self) -> Vec<String> {
        if self.oidc.audiences.is_empty() {
            let mut audiences = vec![self.oidc.client_id.clone()];
            audiences.extend(self.oidc.cli_client_id.clone());
            audiences
        } else {
            self.oidc.audiences.clone()
        }
    }

    /// The client secret, read from its file when configured that way.
    pub fn client_secret(&self) -> Result<String, ConfigError> {
        match (&self.oidc.client_secret, &self.oidc.client_secret_file) {
            (Some(secret), _) => Ok(secret.clone()),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    invalid(
                        "oidc.client_secret_file",
                        format!("{}: {e}", file.display()),
                    )
                }),
            (None, None) => Err(invalid("oidc.client_secret", "missing")),
        }
    }

    /// The directory airlock files are stored in.
    pub fn airlock_dir(&self) -> PathBuf {
        self.airlock
            .storage_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("airlock"))
    }

    /// Where the database is: the configured PostgreSQL URL or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("trellis.db").display()
            ),
        }
    }
}

#[cfg(test)]
mod tests;
