//! Runs a real S3-compatible server, MinIO (built from the Go module proxy by tests/s3/build.sh,
//! which `TRELLIS_E2E_S3_SERVER` names), on a loopback port with its own data directory and
//! credentials, and creates the bucket the airlock stores files in.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::HttpRequestBody;
use trellis_api::config::S3Config;

use crate::{free_port, repo_root, state_dir, unique_name};

/// The MinIO binary (tests/run-e2e.sh sets it).
pub const SERVER: &str = "TRELLIS_E2E_S3_SERVER";
/// The bucket every server is started with.
pub const BUCKET: &str = "trellis-airlock";
const REGION: &str = "us-east-1";

pub struct S3Server {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub access_key: String,
    /// A file holding the secret key, as the API reads it.
    pub secret_file: PathBuf,
    secret: String,
    data: PathBuf,
    log: PathBuf,
    http: reqwest::Client,
    child: Child,
}

/// MinIO: from `TRELLIS_E2E_S3_SERVER`, or built (or found in the cache) now.
fn binary() -> PathBuf {
    let path = match std::env::var(SERVER) {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            let output = Command::new(repo_root().join("tests/s3/build.sh"))
                .stderr(Stdio::inherit())
                .output()
                .expect("running tests/s3/build.sh");
            assert!(output.status.success(), "tests/s3/build.sh failed");
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
        }
    };
    assert!(
        path.exists(),
        "{} is missing: run tests/s3/build.sh and export {SERVER}",
        path.display()
    );
    path
}

impl S3Server {
    /// A fresh server with an empty bucket [`BUCKET`].
    pub async fn start() -> Self {
        let name = unique_name("s3");
        let dir = state_dir(&name);
        // The objects live in memory where there is a tmpfs: MinIO refuses every write once its
        // disk is nearly full (under about 1 GiB free), which a developer's disk may well be.
        let shm = std::path::Path::new("/dev/shm");
        let data = if shm.is_dir() {
            shm.join(format!("trellis-{name}"))
        } else {
            dir.join("data")
        };
        std::fs::create_dir_all(&data).expect("the data directory");
        let access_key = "trellis-e2e".to_string();
        let secret = format!("secret-{}", unique_name("s3"));
        let secret_file = dir.join("secret-access-key");
        std::fs::write(&secret_file, format!("{secret}\n")).expect("the secret file");
        let port = free_port();
        let log = dir.join("minio.log");
        let file = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(binary())
            .args(["server", "--quiet", "--address"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--console-address")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg(&data)
            .env("MINIO_ROOT_USER", &access_key)
            .env("MINIO_ROOT_PASSWORD", &secret)
            .env("MINIO_BROWSER", "off")
            .stdout(Stdio::from(file.try_clone().expect("a log handle")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("starting MinIO");
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key,
            secret_file,
            secret,
            data,
            log,
            http: reqwest::Client::new(),
            child,
        };
        server.create_bucket(port).await;
        server
    }

    /// Creates the bucket once MinIO takes requests (it answers 503 while it initializes, even
    /// after its readiness check passes).
    async fn create_bucket(&self, port: u16) {
        let mut last = (0, String::new());
        for _ in 0..300 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                last = self
                    .signed(reqwest::Method::PUT, &format!("/{BUCKET}"))
                    .await;
                match last.0 {
                    200 => return,
                    503 => {}
                    _ => break,
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "creating bucket {BUCKET} at {} failed: {last:?}; see {}",
            self.endpoint,
            self.log.display()
        );
    }

    /// A request signed with the server's credentials (SigV4): (status, body).
    async fn signed(&self, method: reqwest::Method, path_and_query: &str) -> (u16, String) {
        let url = format!("{}{path_and_query}", self.endpoint);
        let mut request = http::Request::builder()
            .method(method.as_str())
            .uri(&url)
            .body(HttpRequestBody::empty())
            .expect("a request");
        let credential = AwsCredential {
            key_id: self.access_key.clone(),
            secret_key: self.secret.clone(),
            token: None,
        };
        AwsAuthorizer::new(&credential, "s3", REGION)
            .try_authorize(&mut request, None)
            .expect("signing a request");
        let response = self
            .http
            .request(method, &url)
            .headers(request.headers().clone())
            .send()
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"));
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    }

    /// The `airlock.s3` settings for this server, keys under `prefix`.
    fn settings(&self, prefix: Option<&str>) -> String {
        let mut yaml = format!(
            "bucket: {BUCKET}\nendpoint: {}\nallow_http: true\naccess_key_id: {}\nsecret_access_key_file: {}\n",
            self.endpoint,
            self.access_key,
            self.secret_file.display()
        );
        if let Some(prefix) = prefix {
            yaml.push_str(&format!("path_prefix: {prefix}\n"));
        }
        yaml
    }

    /// The API's `airlock.s3` section (to follow `airlock:`), keys under `prefix`.
    pub fn airlock_yaml(&self, prefix: Option<&str>) -> String {
        let settings: String = self
            .settings(prefix)
            .lines()
            .map(|line| format!("    {line}\n"))
            .collect();
        format!("  s3:\n{settings}")
    }

    /// The whole bucket as an object store, through the API's own S3 client.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        let config: S3Config =
            serde_yaml::from_str(&self.settings(None)).expect("an S3 configuration");
        trellis_api::airlock::storage::s3_store(&config).expect("an S3 client")
    }

    /// Every key in the bucket under `prefix`, sorted.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let prefix = object_store::path::Path::from(prefix);
        let mut keys: Vec<String> = self
            .store()
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .expect("listing the bucket");
        keys.sort();
        keys
    }

    /// How many multipart uploads were begun and neither completed nor aborted. MinIO's
    /// ListMultipartUploads names only the uploads of one exact key, and staging keys are
    /// random, so this counts them where MinIO keeps them: one directory per upload under
    /// `.minio.sys/multipart/<hash of bucket and key>/` in its data directory.
    pub fn unfinished_uploads(&self) -> usize {
        let root = self.data.join(".minio.sys/multipart");
        let Ok(keys) = std::fs::read_dir(&root) else {
            return 0;
        };
        keys.filter_map(Result::ok)
            .filter_map(|key| std::fs::read_dir(key.path()).ok())
            .flat_map(|uploads| uploads.filter_map(Result::ok))
            .filter(|upload| upload.path().is_dir())
            .count()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
