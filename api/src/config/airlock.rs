//! `airlock`: where files are kept (a directory or S3), the egress policy, malware scanning,
//! and the limits on requests.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{ConfigError, invalid};

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

pub(super) fn default_s3_region() -> String {
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
pub(super) fn valid_bucket(name: &str) -> bool {
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && edge(name.as_bytes().first())
        && edge(name.as_bytes().last())
}

pub(super) fn validate_s3(s3: &S3Config, max_file_bytes: u64) -> Result<(), ConfigError> {
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

pub(super) fn default_open_requests() -> u32 {
    10
}

pub(super) fn default_requests_per_day() -> u32 {
    20
}

pub(super) fn default_files_per_request() -> u32 {
    50
}

pub(super) fn default_bytes_per_request() -> u64 {
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

pub(super) fn default_max_file_bytes() -> u64 {
    8 * 1024 * 1024 * 1024
}
