//! Airlock files, content-addressed by SHA-256 in an object store: a local directory by default,
//! or an S3-compatible bucket (`airlock.s3`).
//!
//! An upload streams into `staging/<random>` while it is hashed and counted (never held whole in
//! memory: a multipart upload with a few parts in flight), and only a complete upload within its
//! size limit is copied to `blobs/<sha256>`: a failed, oversized or cut-off upload is aborted and
//! leaves nothing under `blobs/`. Reads are verified against the hash before anything is served
//! or released. The same code runs on either store; only building the store differs.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use object_store::aws::AmazonS3Builder;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService,
};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, WriteMultipart};
use openidconnect::reqwest;
use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError, S3Config};

/// S3 copies at most 5 GiB in one request; a larger upload is streamed into place instead.
const S3_COPY_LIMIT: u64 = 5 << 30;
/// S3 multipart uploads: parts of at least 5 MiB (but the last), at most 10,000 of them.
const MIN_PART_BYTES: u64 = 5 << 20;
const MAX_PARTS: u64 = 10_000;
/// Part uploads in flight besides the one being filled; memory stays within a few parts.
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the file is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error(
        "stored file {sha256} does not match its hash (it reads as {actual}); it will not be served"
    )]
    Corrupt { sha256: String, actual: String },
    #[error("no stored file {0}")]
    NotFound(String),
    #[error("stored file {0} changed after it was verified; it will not be served")]
    Changed(String),
    #[error("`{0}` is not a SHA-256 in hex")]
    BadHash(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
}

/// A blob as it was when its bytes were checked against its hash: reads pinned to this version
/// fail if the object has changed since (no window between checking and serving).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub size: u64,
    e_tag: Option<String>,
    version: Option<String>,
}

/// What a finished upload stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// The largest object the store copies in one request; larger uploads are streamed into
    /// place (and hashed again on the way).
    copy_limit: u64,
    /// What the files are in, for logs: `directory` or `s3`.
    kind: &'static str,
}

fn blob_path(sha256: &str) -> Result<ObjectPath, StorageError> {
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(StorageError::BadHash(sha256.to_string()));
    }
    Ok(ObjectPath::from(format!("blobs/{sha256}")))
}

/// The part size for an upload of at most `limit` bytes: S3's minimum, or larger when 10,000
/// parts of it would not hold `limit`.
fn part_size(limit: u64) -> usize {
    let size = MIN_PART_BYTES.max(limit.div_ceil(MAX_PARTS));
    usize::try_from(size).unwrap_or(usize::MAX)
}

fn s3_invalid(field: &'static str, reason: impl Into<String>) -> StorageError {
    StorageError::Config(ConfigError::Invalid {
        field,
        reason: reason.into(),
    })
}

/// The endpoint as object_store wants it: with virtual-hosted-style requests the bucket is part
/// of the host (`https://<bucket>.<host>`), which the configuration leaves out.
fn s3_endpoint(s3: &S3Config) -> Option<String> {
    let mut endpoint = s3.endpoint.clone()?;
    if s3.virtual_hosted_style
        && let Some(host) = endpoint.host_str().map(str::to_owned)
    {
        // The host was parsed already and a bucket name is a valid label, so this holds.
        let _ = endpoint.set_host(Some(&format!("{}.{host}", s3.bucket)));
    }
    Some(endpoint.as_str().trim_end_matches('/').to_string())
}

/// The bucket (under its path prefix) as an object store; the tests look into it this way too.
pub fn s3_store(s3: &S3Config) -> Result<Arc<dyn ObjectStore>, StorageError> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_access_key_id(&s3.access_key_id)
        .with_secret_access_key(s3.secret_access_key()?)
        .with_virtual_hosted_style_request(s3.virtual_hosted_style)
        .with_allow_http(s3.allow_http)
        .with_http_connector(Transport(s3_client(s3)?));
    if let Some(endpoint) = s3_endpoint(s3) {
        builder = builder.with_endpoint(endpoint);
    }
    let bucket: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
    Ok(match &s3.path_prefix {
        Some(prefix) => Arc::new(PrefixStore::new(bucket, prefix.as_str())),
        None => bucket,
    })
}

/// The HTTP client S3 requests go through.
fn s3_client(s3: &S3Config) -> Result<reqwest::Client, StorageError> {
    // No limit on a whole request: a download streams as slowly as its reader takes it. A
    // stalled connection is caught by the read timeout instead (and retried).
    let mut builder = reqwest::Client::builder()
        .https_only(!s3.allow_http)
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(60))
        .tcp_keepalive(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(file) = &s3.ca_file {
        let pem = std::fs::read(file)
            .map_err(|e| s3_invalid("airlock.s3.ca_file", format!("{}: {e}", file.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|found| !found.is_empty())
            .ok_or_else(|| {
                s3_invalid(
                    "airlock.s3.ca_file",
                    format!("{}: no PEM certificates", file.display()),
                )
            })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|e| s3_invalid("airlock.s3", format!("an HTTP client: {e}")))
}

/// object_store's S3 client over the API's own reqwest (rustls with ring, as everywhere in
/// Trellis). object_store's built-in transport is a newer reqwest whose rustls would either
/// bring a second crypto library, which leaves rustls unable to pick a default for kube, or
/// need a process-wide provider installed before any reqwest client is built.
#[derive(Debug)]
struct Transport(reqwest::Client);

impl HttpConnector for Transport {
    fn connect(&self, _: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(Service(self.0.clone())))
    }
}

#[derive(Debug)]
struct Service(reqwest::Client);

#[async_trait::async_trait]
impl HttpService for Service {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
        let mut outgoing = reqwest::Request::new(parts.method, url);
        *outgoing.headers_mut() = parts.headers;
        // object_store sets Content-Length itself, so a streamed body is not sent chunked.
        *outgoing.body_mut() = Some(reqwest::Body::wrap(body));
        let response: http::Response<reqwest::Body> =
            self.0.execute(outgoing).await.map_err(http_error)?.into();
        let (parts, body) = response.into_parts();
        Ok(HttpResponse::from_parts(
            parts,
            HttpResponseBody::new(body.map_err(http_error)),
        ))
    }
}

/// What went wrong, in the terms object_store decides retries by.
fn http_error(error: reqwest::Error) -> HttpError {
    let mut kind = if error.is_timeout() {
        HttpErrorKind::Timeout
    } else if error.is_connect() {
        HttpErrorKind::Connect
    } else if error.is_decode() {
        HttpErrorKind::Decode
    } else if error.is_request() || error.is_body() {
        HttpErrorKind::Request
    } else {
        HttpErrorKind::Unknown
    };
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                TimedOut => kind = HttpErrorKind::Timeout,
                ConnectionAborted | ConnectionReset | BrokenPipe | UnexpectedEof => {
                    kind = HttpErrorKind::Interrupted
                }
                _ => {}
            }
        }
        source = cause.source();
    }
    HttpError::new(kind, error.without_url())
}

/// A multipart upload that is aborted unless taken out to be finished, even when the future
/// writing it is dropped: a client that goes away mid-upload cancels the request's handler, and
/// an S3 upload left open keeps its parts (invisible, but stored and billed) until aborted.
struct Pending(Option<WriteMultipart>);

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(upload) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(error) = upload.abort().await {
                    tracing::warn!(%error, "could not abort an abandoned upload");
                }
            });
        }
    }
}

impl BlobStore {
    /// The store `airlock` configures: its S3 bucket, or else its directory.
    pub fn from_config(config: &Config) -> Result<Self, StorageError> {
        match &config.airlock.s3 {
            Some(s3) => Self::s3(s3),
            None => Self::local(&config.airlock_dir()),
        }
    }

    /// A store in a local directory (created if missing).
    pub fn local(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StorageError::Store(object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            })
        })?;
        Ok(Self {
            store: Arc::new(LocalFileSystem::new_with_prefix(dir)?),
            // A rename on disk has no size limit.
            copy_limit: u64::MAX,
            kind: "directory",
        })
    }

    /// A store in an S3-compatible bucket. Reads the secret (and CA) files; connects to nothing
    /// yet, so `check-config` uses it too.
    pub fn s3(s3: &S3Config) -> Result<Self, StorageError> {
        Ok(Self {
            store: s3_store(s3)?,
            copy_limit: S3_COPY_LIMIT,
            kind: "s3",
        })
    }

    /// Any object store, copying objects of any size.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            copy_limit: u64::MAX,
            kind: "custom",
        }
    }

    /// Streams uploads larger than `bytes` into place instead of copying them.
    pub fn with_copy_limit(mut self, bytes: u64) -> Self {
        self.copy_limit = bytes;
        self
    }

    /// `directory` or `s3`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Lists the blobs once, to say at start whether the store is reachable.
    pub async fn probe(&self) -> Result<(), StorageError> {
        self.store
            .list_with_delimiter(Some(&ObjectPath::from("blobs")))
            .await?;
        Ok(())
    }

    /// Stores what `body` yields, refusing more than `limit` bytes.
    pub async fn put<E: std::fmt::Display>(
        &self,
        body: impl Stream<Item = Result<Bytes, E>>,
        limit: u64,
    ) -> Result<StoredBlob, StorageError> {
        let staging = ObjectPath::from(format!(
            "staging/{}",
            crate::identity::session::random_token()
        ));
        let stored = self.write(&staging, body, limit, None).await?;
        let placed = self.place(&staging, &stored).await;
        // A staging object left behind is invisible and harmless; the upload itself succeeded.
        if let Err(error) = self.store.delete(&staging).await {
            tracing::warn!(%error, path = %staging, "could not remove a staged airlock upload");
        }
        placed.map(|()| stored)
    }

    /// Writes `body` to `path` as a multipart upload, hashing and counting on the way. Anything
    /// short of a complete upload within `limit` (whose hash is `expect`, when given) aborts the
    /// upload, so nothing appears at `path`.
    async fn write<E: std::fmt::Display>(
        &self,
        path: &ObjectPath,
        body: impl Stream<Item = Result<Bytes, E>>,
        limit: u64,
        expect: Option<&str>,
    ) -> Result<StoredBlob, StorageError> {
        let mut pending = Pending(Some(WriteMultipart::new_with_chunk_size(
            self.store.put_multipart(path).await?,
            part_size(limit),
        )));
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut body = std::pin::pin!(body);
        let streamed = async {
            let upload = pending.0.as_mut().expect("the upload is not finished yet");
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| StorageError::Interrupted(e.to_string()))?;
                size += chunk.len() as u64;
                if size > limit {
                    return Err(StorageError::TooLarge { limit });
                }
                hasher.update(&chunk);
                // Waits for part uploads to drain, so memory stays bounded by a few parts.
                upload.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                upload.put(chunk);
            }
            let sha256 = hex::encode(hasher.finalize_reset());
            if let Some(expected) = expect
                && expected != sha256
            {
                return Err(StorageError::Corrupt {
                    sha256: expected.to_string(),
                    actual: sha256,
                });
            }
            Ok(sha256)
        }
        .await;
        let upload = pending.0.take().expect("the upload is not finished yet");
        let sha256 = match streamed {
            Ok(sha256) => sha256,
            Err(error) => {
                // Awaited here, so that once the caller hears of the failure nothing is left.
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(error = %abort, %path, "could not abort a failed upload");
                }
                return Err(error);
            }
        };
        // Completes the upload, or aborts it if the last parts or completing fail.
        upload.finish().await?;
        Ok(StoredBlob { sha256, size })
    }

    /// Puts a staged upload at its content address, keeping the first copy when the same
    /// content is stored already.
    async fn place(&self, staging: &ObjectPath, stored: &StoredBlob) -> Result<(), StorageError> {
        let target = blob_path(&stored.sha256)?;
        if stored.size > self.copy_limit {
            if self.exists(&target).await? {
                return Ok(());
            }
            // Too large to copy in one request: streamed, and checked against the hash again.
            let staged = self.store.get(staging).await?.into_stream();
            self.write(&target, staged, stored.size, Some(&stored.sha256))
                .await?;
            return Ok(());
        }
        match self.store.copy_if_not_exists(staging, &target).await {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            // S3 offers no "copy unless present" by default. Looking first and then copying is
            // as good here: a racing copy of the same key carries the same bytes.
            Err(
                object_store::Error::NotSupported { .. }
                | object_store::Error::NotImplemented { .. },
            ) => {
                if !self.exists(&target).await? {
                    self.store.copy(staging, &target).await?;
                }
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn exists(&self, path: &ObjectPath) -> Result<bool, StorageError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Reads the whole blob once to check it still has its hash; returns its size.
    pub async fn verify(&self, sha256: &str) -> Result<u64, StorageError> {
        Ok(self.verify_version(sha256).await?.size)
    }

    /// Reads the whole blob once to check it still has its hash, and notes which version of the
    /// object that was, for [`Self::open_verified`].
    pub async fn verify_version(&self, sha256: &str) -> Result<Verified, StorageError> {
        let path = blob_path(sha256)?;
        let found = match self.store.get(&path).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StorageError::NotFound(sha256.to_string()));
            }
            Err(error) => return Err(error.into()),
        };
        let (e_tag, version) = (found.meta.e_tag.clone(), found.meta.version.clone());
        let mut stream = found.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.try_next().await? {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        let actual = hex::encode(hasher.finalize());
        if actual != sha256 {
            return Err(StorageError::Corrupt {
                sha256: sha256.to_string(),
                actual,
            });
        }
        Ok(Verified {
            size,
            e_tag,
            version,
        })
    }

    /// The bytes of exactly the version [`Self::verify_version`] checked; a blob changed since
    /// is refused rather than served.
    pub async fn open_verified(
        &self,
        sha256: &str,
        verified: &Verified,
    ) -> Result<impl Stream<Item = Result<Bytes, object_store::Error>> + use<>, StorageError> {
        let path = blob_path(sha256)?;
        let options = object_store::GetOptions {
            if_match: verified.e_tag.clone(),
            version: verified.version.clone(),
            ..Default::default()
        };
        match self.store.get_opts(&path, options).await {
            Ok(found) if found.meta.size == verified.size => Ok(found.into_stream()),
            Ok(_) | Err(object_store::Error::Precondition { .. }) => {
                Err(StorageError::Changed(sha256.to_string()))
            }
            Err(object_store::Error::NotFound { .. }) => {
                Err(StorageError::NotFound(sha256.to_string()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The blob's bytes as a stream (call [`Self::verify`] first when serving or releasing).
    pub async fn open(
        &self,
        sha256: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, object_store::Error>> + use<>, StorageError> {
        let path = blob_path(sha256)?;
        match self.store.get(&path).await {
            Ok(found) => Ok(found.into_stream()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(StorageError::NotFound(sha256.to_string()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Whether anything is left in staging (a crash mid-upload); for tests and housekeeping.
    pub async fn staged(&self) -> Result<usize, StorageError> {
        Ok(self
            .store
            .list(Some(&ObjectPath::from("staging")))
            .try_collect::<Vec<_>>()
            .await?
            .len())
    }

    /// The number of stored blobs.
    pub async fn blobs(&self) -> Result<usize, StorageError> {
        Ok(self
            .store
            .list(Some(&ObjectPath::from("blobs")))
            .try_collect::<Vec<_>>()
            .await?
            .len())
    }
}

#[cfg(test)]
mod tests;
