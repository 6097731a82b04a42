//! The API's configuration: one YAML file, overridden by `TRELLIS_API__<SECTION>__<FIELD>`
//! environment variables (e.g. `TRELLIS_API__OIDC__CLIENT_SECRET`). Every mistake is reported at
//! start with the field it is in.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Yaml};
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use url::Url;

/// The prefix of environment overrides; `__` separates nested fields.
pub const ENV_PREFIX: &str = "TRELLIS_API__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("configuration: {0}")]
    Parse(String),
    #[error("configuration field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP server listens.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
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

fn default_activity_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

/// E-mail about airlock requests (submitted, returned, approved, released, rejected).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// The SMTP server mail goes through; unset: each notification is only logged.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The server's host name (with TLS, the name its certificate must carry) or IP address.
    pub host: String,
    /// Default: 25 without TLS, 587 with STARTTLS, 465 with TLS.
    #[serde(default)]
    pub port: Option<u16>,
    /// The sender, e.g. `Trellis <trellis@tre.example.org>`.
    pub from: String,
    /// `starttls` (the default), `tls` (TLS from the first byte) or `none` (a relay on a
    /// trusted network only; never with a password).
    #[serde(default)]
    pub tls: SmtpTls,
    /// The user name to authenticate as; needs `password_file`.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the password (a mounted Secret).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust besides the system's (a relay with a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long sending one message may take (connecting, TLS and every command); past it the
    /// message counts as failed.
    #[serde(default = "default_smtp_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum SmtpTls {
    #[serde(rename = "none")]
    Plain,
    #[default]
    #[serde(rename = "starttls")]
    StartTls,
    #[serde(rename = "tls")]
    Tls,
}

impl SmtpConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Plain => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Tls => 465,
        })
    }

    /// The password, read from its file; `None` without a user name.
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        match &self.password_file {
            Some(file) if self.username.is_some() => std::fs::read_to_string(file)
                .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_string()))
                .map_err(|e| {
                    invalid(
                        "notifications.smtp.password_file",
                        format!("{}: {e}", file.display()),
                    )
                }),
            _ => Ok(None),
        }
    }
}

fn default_smtp_timeout() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AirlockConfig {
    /// Where files are stored (a local directory) when `s3` is unset; default
    /// `<data_dir>/airlock`.
    #[serde(default)]
    pub storage_dir: Option<PathBuf>,
    /// An S3-compatible bucket to store files in instead of a local directory.
    #[serde(default)]
    pub s3: Option<S3Config>,
    /// Largest file accepted, in bytes.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Whether members of a project may review its requests (separation of duties says no).
    #[serde(default)]
    pub members_may_review: bool,
    /// The egress disclosure rules (e.g. policies/egress/default.yaml); unset: the built-in
    /// defaults, which are that file's rules.
    #[serde(default)]
    pub egress_policy: Option<PathBuf>,
    #[serde(default)]
    pub limits: AirlockLimits,
    /// A ClamAV daemon (`host:port`); when set, every file is scanned on submission and an
    /// infected one blocks the request.
    #[serde(default)]
    pub clamd: Option<String>,
}

/// An S3-compatible object store for airlock files.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// The service's address, e.g. `https://minio.storage.svc:9000`; unset: Amazon S3 in
    /// `region`.
    #[serde(default)]
    pub endpoint: Option<Url>,
    #[serde(default = "default_s3_region")]
    pub region: String,
    pub access_key_id: String,
    /// A file holding the secret access key (a mounted Secret); never inline.
    pub secret_access_key_file: PathBuf,
    /// Keys are stored under this prefix (`<prefix>/blobs/…`), so one bucket can serve several
    /// installations.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// `https://<bucket>.<endpoint host>/…` instead of `https://<endpoint host>/<bucket>/…`.
    #[serde(default)]
    pub virtual_hosted_style: bool,
    /// Allow an `http://` endpoint: files and request signatures travel unencrypted, so only
    /// for a store on the same host or a development setup.
    #[serde(default)]
    pub allow_http: bool,
    /// A PEM file of CA certificates to trust besides the system's (a store with a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_s3_region() -> String {
    "us-east-1".into()
}

impl S3Config {
    /// The secret access key, read from its file.
    pub fn secret_access_key(&self) -> Result<String, ConfigError> {
        let file = &self.secret_access_key_file;
        let secret = std::fs::read_to_string(file)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| {
                invalid(
                    "airlock.s3.secret_access_key_file",
                    format!("{}: {e}", file.display()),
                )
            })?;
        if secret.is_empty() {
            return Err(invalid(
                "airlock.s3.secret_access_key_file",
                format!("{} is empty", file.display()),
            ));
        }
        Ok(secret)
    }
}

/// S3 bucket names: 3–63 lower-case letters, digits, dots and hyphens, starting and ending
/// with a letter or digit.
fn valid_bucket(name: &str) -> bool {
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && edge(name.as_bytes().first())
        && edge(name.as_bytes().last())
}

fn validate_s3(s3: &S3Config, max_file_bytes: u64) -> Result<(), ConfigError> {
    if !valid_bucket(&s3.bucket) {
        return Err(invalid(
            "airlock.s3.bucket",
            "3–63 lower-case letters, digits, dots and hyphens",
        ));
    }
    if let Some(endpoint) = &s3.endpoint {
        match endpoint.scheme() {
            "https" => {}
            "http" if s3.allow_http => {}
            "http" => {
                return Err(invalid(
                    "airlock.s3.endpoint",
                    "an http endpoint sends files unencrypted: use https, or set allow_http for a \
                     store on the same host or a development setup",
                ));
            }
            _ => {
                return Err(invalid(
                    "airlock.s3.endpoint",
                    "must be an http or https URL",
                ));
            }
        }
        if !endpoint.username().is_empty() || endpoint.password().is_some() {
            return Err(invalid(
                "airlock.s3.endpoint",
                "no credentials in the URL: use access_key_id and secret_access_key_file",
            ));
        }
        if endpoint.query().is_some() || endpoint.fragment().is_some() {
            return Err(invalid(
                "airlock.s3.endpoint",
                "no query or fragment: the service's address only",
            ));
        }
    }
    if s3.region.trim().is_empty() {
        return Err(invalid("airlock.s3.region", "must not be empty"));
    }
    if s3.access_key_id.trim().is_empty() {
        return Err(invalid("airlock.s3.access_key_id", "must not be empty"));
    }
    if let Some(prefix) = &s3.path_prefix
        && !matches!(object_store::path::Path::parse(prefix), Ok(p) if !p.as_ref().is_empty() && p.as_ref() == prefix)
    {
        return Err(invalid(
            "airlock.s3.path_prefix",
            "`/`-separated names without empty parts, `.` or `..`, and no leading or trailing `/`",
        ));
    }
    // S3 holds objects of up to 5 TiB (10,000 parts).
    if max_file_bytes > 5 << 40 {
        return Err(invalid(
            "airlock.max_file_bytes",
            "at most 5 TiB, the largest object S3 stores",
        ));
    }
    Ok(())
}

/// How much one project may put through the airlock.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AirlockLimits {
    /// Requests not yet finished (draft, in review, reviewed, returned) per project.
    #[serde(default = "default_open_requests")]
    pub open_requests_per_project: u32,
    /// Requests a project may open in 24 hours.
    #[serde(default = "default_requests_per_day")]
    pub requests_per_day: u32,
    #[serde(default = "default_files_per_request")]
    pub files_per_request: u32,
    #[serde(default = "default_bytes_per_request")]
    pub bytes_per_request: u64,
}

impl Default for AirlockLimits {
    fn default() -> Self {
        Self {
            open_requests_per_project: default_open_requests(),
            requests_per_day: default_requests_per_day(),
            files_per_request: default_files_per_request(),
            bytes_per_request: default_bytes_per_request(),
        }
    }
}

fn default_open_requests() -> u32 {
    10
}
fn default_requests_per_day() -> u32 {
    20
}
fn default_files_per_request() -> u32 {
    50
}
fn default_bytes_per_request() -> u64 {
    16 * 1024 * 1024 * 1024
}

impl Default for AirlockConfig {
    fn default() -> Self {
        Self {
            storage_dir: None,
            s3: None,
            max_file_bytes: default_max_file_bytes(),
            members_may_review: false,
            egress_policy: None,
            limits: AirlockLimits::default(),
            clamd: None,
        }
    }
}

fn default_max_file_bytes() -> u64 {
    8 * 1024 * 1024 * 1024
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` for PostgreSQL (required for more than one replica); unset means SQLite
    /// in `data_dir`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: default_max_connections(),
        }
    }
}

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
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
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
fn default_max_connections() -> u32 {
    10
}
fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email", "groups"]
        .map(String::from)
        .to_vec()
}
fn default_subject_claim() -> String {
    "preferred_username".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_algorithms() -> Vec<String> {
    ["RS256", "ES256"].map(String::from).to_vec()
}
fn default_leeway() -> Duration {
    Duration::from_secs(30)
}
fn default_jwks_refresh() -> Duration {
    Duration::from_secs(10)
}
fn default_admin_groups() -> BTreeSet<String> {
    BTreeSet::from(["trellis-admins".to_string()])
}
fn default_checker_groups() -> BTreeSet<String> {
    BTreeSet::from(["trellis-output-checkers".to_string()])
}
fn default_steward_groups() -> BTreeSet<String> {
    BTreeSet::from(["trellis-data-stewards".to_string()])
}
fn default_session_ttl() -> Duration {
    Duration::from_secs(8 * 3600)
}
fn default_true() -> bool {
    true
}
fn default_workspace_audience() -> String {
    "trellis".into()
}
fn default_review_cache() -> Duration {
    Duration::from_secs(60)
}
fn default_json_body_bytes() -> usize {
    64 * 1024
}

/// The workspace origin must be an origin of its own (a different host: cookies ignore ports),
/// with nothing after it, and as secure as Trellis's.
fn validate_workspace_origin(origin: &Url, public_url: &Url) -> Result<(), ConfigError> {
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

fn validate_smtp(smtp: &SmtpConfig) -> Result<(), ConfigError> {
    if smtp.host.trim().is_empty() {
        return Err(invalid("notifications.smtp.host", "must not be empty"));
    }
    if smtp.port == Some(0) {
        return Err(invalid("notifications.smtp.port", "must be 1–65535"));
    }
    if let Err(error) = smtp.from.parse::<lettre::message::Mailbox>() {
        return Err(invalid(
            "notifications.smtp.from",
            format!("not an e-mail address (`Name <user@domain>` or `user@domain`): {error}"),
        ));
    }
    match (&smtp.username, &smtp.password_file) {
        (Some(_), None) => {
            return Err(invalid(
                "notifications.smtp.password_file",
                "a username needs a password_file",
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "notifications.smtp.username",
                "a password_file needs a username",
            ));
        }
        (Some(_), Some(_)) if smtp.tls == SmtpTls::Plain => {
            return Err(invalid(
                "notifications.smtp.tls",
                "a password is never sent without TLS: use starttls or tls",
            ));
        }
        _ => {}
    }
    if smtp.timeout < Duration::from_secs(1) || smtp.timeout > Duration::from_secs(300) {
        return Err(invalid("notifications.smtp.timeout", "between 1s and 5m"));
    }
    Ok(())
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
        if !self.oidc.scopes.iter().any(|s| s == "openid") {
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

    /// The audiences bearer tokens must carry.
    pub fn audiences(&self) -> Vec<String> {
        if self.oidc.audiences.is_empty() {
            vec![self.oidc.client_id.clone()]
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
mod tests {
    use super::*;

    const MINIMAL: &str = "
public_url: https://trellis.example.org
oidc:
  issuer: https://id.example.org
  client_id: trellis
  client_secret: s3cret
";

    #[test]
    fn minimal_config_gets_safe_defaults() {
        let config = Config::from_yaml(MINIMAL).unwrap();
        assert!(config.session.secure_cookie);
        assert_eq!(config.audiences(), vec!["trellis".to_string()]);
        assert_eq!(
            config.algorithms().unwrap(),
            vec![Algorithm::RS256, Algorithm::ES256]
        );
        assert_eq!(config.oidc.subject_claim, "preferred_username");
        assert_eq!(
            config.database_url(),
            "sqlite:///var/lib/trellis/trellis.db?mode=rwc"
        );
        assert_eq!(config.session.ttl, Duration::from_secs(8 * 3600));
        assert_eq!(config.gateway.activity_interval, Duration::from_secs(60));
        assert_eq!(config.gateway.connect_timeout, Duration::from_secs(5));
    }

    fn error_of(yaml: &str) -> String {
        Config::from_yaml(yaml).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                MINIMAL.replace("https://id.example.org", "not a url"),
                "oidc.issuer",
            ),
            (format!("{MINIMAL}listen: nowhere\n"), "listen"),
            (format!("{MINIMAL}colour: blue\n"), "colour"),
            (
                MINIMAL.replace("  client_secret: s3cret\n", ""),
                "oidc.client_secret",
            ),
            (
                format!("{MINIMAL}  algorithms: [none]\n"),
                "oidc.algorithms",
            ),
            (
                format!("{MINIMAL}  algorithms: [HS256]\n"),
                "oidc.algorithms",
            ),
            (format!("{MINIMAL}  leeway: 1h\n"), "oidc.leeway"),
            (format!("{MINIMAL}  leeway: soon\n"), "oidc.leeway"),
            (
                format!("{MINIMAL}database:\n  url: mysql://x\n"),
                "database.url",
            ),
            (format!("{MINIMAL}session:\n  ttl: 5s\n"), "session.ttl"),
            (
                format!("{MINIMAL}gateway:\n  activity_interval: 0s\n"),
                "gateway.activity_interval",
            ),
            (
                format!("{MINIMAL}gateway:\n  connect_timeout: 2m\n"),
                "gateway.connect_timeout",
            ),
            (format!("{MINIMAL}gateway:\n  activity: 1m\n"), "gateway"),
            (
                format!("{MINIMAL}gateway:\n  public_url: http://127.0.0.1:9999\n"),
                "gateway.public_url",
            ),
            (
                format!("{MINIMAL}gateway:\n  public_url: https://workspaces.example/w/\n"),
                "gateway.public_url",
            ),
            (
                MINIMAL.replace("https://trellis", "http://trellis"),
                "session.secure_cookie",
            ),
            (
                MINIMAL.replace("public_url: https://trellis.example.org\n", ""),
                "public_url",
            ),
        ];
        for (yaml, field) in cases {
            let error = error_of(&yaml);
            assert!(error.contains(field), "error for `{field}` was: {error}");
        }
    }

    #[test]
    fn smtp_settings_are_checked() {
        assert!(
            Config::from_yaml(MINIMAL)
                .unwrap()
                .notifications
                .smtp
                .is_none(),
            "no SMTP unless configured"
        );
        let smtp = format!(
            "{MINIMAL}notifications:\n  smtp:\n    host: mail.example.org\n    from: Trellis <trellis@example.org>\n"
        );
        let config = Config::from_yaml(&smtp).unwrap();
        let parsed = config.notifications.smtp.as_ref().unwrap();
        assert_eq!((parsed.tls, parsed.port()), (SmtpTls::StartTls, 587));
        assert_eq!(parsed.timeout, Duration::from_secs(30));
        let cases = [
            (
                smtp.replace("trellis@example.org", "not an address"),
                "notifications.smtp.from",
            ),
            (format!("{smtp}    tls: sometimes\n"), "tls"),
            (
                format!("{smtp}    username: trellis\n"),
                "notifications.smtp.password_file",
            ),
            (
                format!("{smtp}    password_file: /p\n"),
                "notifications.smtp.username",
            ),
            (
                format!("{smtp}    tls: none\n    username: u\n    password_file: /p\n"),
                "notifications.smtp.tls",
            ),
            (
                format!("{smtp}    timeout: 0s\n"),
                "notifications.smtp.timeout",
            ),
            (format!("{smtp}    port: 0\n"), "notifications.smtp.port"),
            (
                smtp.replace("mail.example.org", "''"),
                "notifications.smtp.host",
            ),
        ];
        for (yaml, field) in cases {
            let error = error_of(&yaml);
            assert!(error.contains(field), "error for `{field}` was: {error}");
        }
        let tls = format!("{smtp}    tls: tls\n");
        assert_eq!(
            Config::from_yaml(&tls)
                .unwrap()
                .notifications
                .smtp
                .unwrap()
                .port(),
            465
        );
    }

    #[test]
    fn s3_settings_are_checked() {
        let dir = Config::from_yaml(MINIMAL).unwrap();
        assert!(
            dir.airlock.s3.is_none(),
            "a local directory unless configured"
        );
        let s3 = format!(
            "{MINIMAL}airlock:\n  s3:\n    bucket: trellis-airlock\n    access_key_id: trellis\n    secret_access_key_file: /run/secrets/s3\n"
        );
        let parsed = Config::from_yaml(&s3).unwrap().airlock.s3.unwrap();
        assert_eq!(parsed.region, "us-east-1");
        assert!(parsed.endpoint.is_none() && !parsed.virtual_hosted_style && !parsed.allow_http);
        let endpoint = |url: &str| format!("{s3}    endpoint: {url}\n");
        let ok = [
            endpoint("https://minio.storage.svc:9000"),
            format!(
                "{}    allow_http: true\n",
                endpoint("http://127.0.0.1:9000")
            ),
            format!("{s3}    path_prefix: tre/prod\n"),
        ];
        for yaml in ok {
            assert!(
                Config::from_yaml(&yaml).is_ok(),
                "{yaml}: {:?}",
                Config::from_yaml(&yaml).err()
            );
        }
        let cases = [
            (
                s3.replace("trellis-airlock", "Trellis_Airlock"),
                "airlock.s3.bucket",
            ),
            (s3.replace("trellis-airlock", "ab"), "airlock.s3.bucket"),
            (
                s3.replace("trellis-airlock", "-airlock"),
                "airlock.s3.bucket",
            ),
            (endpoint("http://127.0.0.1:9000"), "airlock.s3.endpoint"),
            (endpoint("ftp://store.example.org"), "airlock.s3.endpoint"),
            (
                endpoint("https://key:secret@store.example.org"),
                "airlock.s3.endpoint",
            ),
            (
                endpoint("https://store.example.org/?x=1"),
                "airlock.s3.endpoint",
            ),
            (endpoint("not a url"), "airlock.s3.endpoint"),
            (format!("{s3}    region: ''\n"), "airlock.s3.region"),
            (
                s3.replace("access_key_id: trellis", "access_key_id: ' '"),
                "airlock.s3.access_key_id",
            ),
            (
                s3.replace("    secret_access_key_file: /run/secrets/s3\n", ""),
                "secret_access_key_file",
            ),
            // Secrets come from a file only.
            (
                format!("{s3}    secret_access_key: inline\n"),
                "secret_access_key",
            ),
            (
                format!("{s3}    path_prefix: /tre\n"),
                "airlock.s3.path_prefix",
            ),
            (
                format!("{s3}    path_prefix: tre/\n"),
                "airlock.s3.path_prefix",
            ),
            (
                format!("{s3}    path_prefix: a/../b\n"),
                "airlock.s3.path_prefix",
            ),
            (
                format!("{s3}    path_prefix: a//b\n"),
                "airlock.s3.path_prefix",
            ),
            (
                format!("{s3}  storage_dir: /srv/airlock\n"),
                "airlock.storage_dir",
            ),
            (
                format!("{s3}  max_file_bytes: 6000000000000\n"),
                "airlock.max_file_bytes",
            ),
        ];
        for (yaml, field) in cases {
            let error = error_of(&yaml);
            assert!(error.contains(field), "error for `{field}` was: {error}");
        }
    }

    #[test]
    fn the_s3_secret_is_read_from_its_file() {
        let dir = std::env::temp_dir().join(format!("trellis-s3-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        let yaml = format!(
            "{MINIMAL}airlock:\n  s3:\n    bucket: b-1\n    access_key_id: k\n    secret_access_key_file: {}\n",
            file.display()
        );
        let s3 = Config::from_yaml(&yaml).unwrap().airlock.s3.unwrap();
        let missing = s3.secret_access_key().unwrap_err().to_string();
        assert!(
            missing.contains("airlock.s3.secret_access_key_file"),
            "{missing}"
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(
            s3.secret_access_key()
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
        std::fs::write(&file, "s3cret key\n").unwrap();
        assert_eq!(s3.secret_access_key().unwrap(), "s3cret key");
    }

    #[test]
    fn plain_http_needs_insecure_cookies_said_out_loud() {
        let yaml = MINIMAL.replace("https://trellis", "http://trellis")
            + "session:\n  secure_cookie: false\n";
        assert!(!Config::from_yaml(&yaml).unwrap().session.secure_cookie);
    }
}
