//! The Trellis command-line client: a thin, typed layer over the HTTP API, used by people and,
//! inside a workspace, with the pod's projected service-account token.
#![forbid(unsafe_code)]

pub mod check;
pub mod datashield;
pub mod session;
pub mod table;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API refused; its problem document's detail says why.
    #[error("{status}: {detail}")]
    Refused { status: StatusCode, detail: String },
    #[error("cannot reach the Trellis API at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("cannot read the token file {path}: {source}")]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "not signed in (no credentials): run `trellis login --api URL` (inside a workspace, TRELLIS_TOKEN_FILE is set for you; scripts may set TRELLIS_TOKEN)"
    )]
    NoCredentials,
    #[error(
        "{path} may be read by others (mode {mode:o}); it holds your tokens, so it is not used: run `chmod 600 {path}` if that was you, else `trellis logout` and `trellis login` again"
    )]
    SessionPermissions { path: PathBuf, mode: u32 },
    #[error(
        "{path} is not a Trellis session ({reason}): run `trellis logout`, then `trellis login --api URL`"
    )]
    SessionCorrupt { path: PathBuf, reason: String },
    #[error("the sign-in has expired and cannot be refreshed: run `trellis login --api URL`")]
    SessionExpired,
    #[error("sign-in failed: {0}")]
    SignIn(String),
    #[error("{name}: the downloaded bytes hash to {actual}, not {expected}; discarded")]
    HashMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("unexpected answer from the API: {0}")]
    Unexpected(String),
}

/// Where the credentials come from. A token file is read for every call, because the kubelet
/// rotates projected tokens in place.
#[derive(Clone, Debug)]
pub enum Credentials {
    TokenFile(PathBuf),
    Token(String),
    /// The session file of `trellis login`, refreshed before a call when about to expire.
    Session(PathBuf),
}

pub struct Client {
    http: reqwest::Client,
    api: String,
    project: String,
    credentials: Credentials,
}

impl Client {
    pub fn new(api: &str, project: &str, credentials: Credentials) -> Self {
        install_crypto();
        Self {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client with default settings"),
            api: api.trim_end_matches('/').to_string(),
            project: project.to_string(),
            credentials,
        }
    }

    /// The project this client acts in.
    pub fn project(&self) -> &str {
        &self.project
    }

    async fn token(&self) -> Result<String, CliError> {
        match &self.credentials {
            Credentials::Token(token) => Ok(token.clone()),
            Credentials::TokenFile(path) => tokio::fs::read_to_string(path)
                .await
                .map(|t| t.trim().to_string())
                .map_err(|source| CliError::Token {
                    path: path.clone(),
                    source,
                }),
            Credentials::Session(path) => session::fresh_token(path).await,
        }
    }

    /// The API's base URL.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// Calls `path` (from `/api/v1/…`) of the API with a JSON body, if any; the JSON answer, or
    /// `Value::Null` for an empty one.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.api);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let bytes = self
            .send(request, &url)
            .await?
            .bytes()
            .await
            .map_err(|source| CliError::Unreachable {
                url: url.clone(),
                source,
            })?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| CliError::Unexpected(e.to_string()))
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/api/v1/projects/{}/airlock{path}",
            self.api, self.project
        )
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, CliError> {
        let response = request
            .bearer_auth(self.token().await?)
            .send()
            .await
            .map_err(|source| CliError::Unreachable {
                url: url.to_string(),
                source,
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let detail = body["detail"]
            .as_str()
            .unwrap_or("no detail given")
            .to_string();
        Err(CliError::Refused { status, detail })
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let url = self.url(path);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request, &url)
            .await?
            .json()
            .await
            .map_err(|e| CliError::Unexpected(e.to_string()))
    }

    /// Opens a request; returns it.
    pub async fn create(
        &self,
        direction: &str,
        title: &str,
        context: &str,
        controls: &str,
    ) -> Result<Value, CliError> {
        let body = serde_json::json!({"direction": direction, "title": title, "context": context, "controls": controls});
        self.json(Method::POST, "", Some(body)).await
    }

    pub async fn request(&self, id: &str) -> Result<Value, CliError> {
        self.json(Method::GET, &format!("/{id}"), None).await
    }

    pub async fn requests(&self) -> Result<Vec<Value>, CliError> {
        let list = self.json(Method::GET, "", None).await?;
        list.as_array()
            .cloned()
            .ok_or_else(|| CliError::Unexpected("a list of requests".into()))
    }

    pub async fn submit(&self, id: &str) -> Result<Value, CliError> {
        self.json(Method::POST, &format!("/{id}/submit"), None)
            .await
    }

    /// Uploads `path` as `name`, streaming it in 1 MiB pieces; `progress` hears the bytes sent.
    pub async fn upload(
        &self,
        id: &str,
        path: &Path,
        name: &str,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<Value, CliError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| CliError::File {
                path: path.to_path_buf(),
                source,
            })?;
        let size = file
            .metadata()
            .await
            .map_err(|source| CliError::File {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let chunks = futures::stream::unfold(file, |mut file| async move {
            let mut buffer = vec![0u8; 1 << 20];
            match file.read(&mut buffer).await {
                Ok(0) => None,
                Ok(n) => {
                    buffer.truncate(n);
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buffer)), file))
                }
                Err(error) => Some((Err(error), file)),
            }
        })
        .inspect_ok(move |chunk| progress(chunk.len() as u64));
        let url = self.url(&format!("/{id}/files/{}", encode_segment(name)));
        let request = self
            .http
            .put(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(chunks));
        self.send(request, &url)
            .await?
            .json()
            .await
            .map_err(|e| CliError::Unexpected(e.to_string()))
    }

    /// Downloads a file into `target` (via a temporary file beside it), checking its hash.
    pub async fn download(
        &self,
        id: &str,
        name: &str,
        sha256: &str,
        target: &Path,
    ) -> Result<u64, CliError> {
        let url = self.url(&format!("/{id}/files/{}", encode_segment(name)));
        let response = self.send(self.http.get(&url), &url).await?;
        let partial = target.with_extension("partial");
        let io = |source| CliError::File {
            path: partial.clone(),
            source,
        };
        let mut out = tokio::fs::File::create(&partial).await.map_err(io)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| CliError::Unreachable {
                url: url.clone(),
                source,
            })?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            out.write_all(&chunk).await.map_err(io)?;
        }
        out.flush().await.map_err(io)?;
        out.sync_all().await.map_err(io)?;
        drop(out);
        let actual = hex::encode(hasher.finalize());
        if actual != sha256 {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(CliError::HashMismatch {
                name: name.to_string(),
                expected: sha256.to_string(),
                actual,
            });
        }
        read_only(&partial).map_err(io)?;
        tokio::fs::rename(&partial, target)
            .await
            .map_err(|source| CliError::File {
                path: target.to_path_buf(),
                source,
            })?;
        Ok(size)
    }
}

/// TLS with the ring provider (the same as the rest of Trellis); idempotent.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A path segment with the characters URLs reserve percent-encoded.
pub fn encode_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn read_only(path: &Path) -> std::io::Result<()> {
    let mut permissions = std::fs::metadata(path)?.permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(path, permissions)
}

/// The SHA-256 of a file already on disk, if it exists.
pub fn file_sha256(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Some(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_segment() {
        assert_eq!(encode_segment("table.csv"), "table.csv");
        assert_eq!(encode_segment("Figure 1/2.png"), "Figure%201%2F2.png");
        assert_eq!(encode_segment("résumé"), "r%C3%A9sum%C3%A9");
    }
}
