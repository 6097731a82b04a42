//! Runs a real Dex (built by tests/cluster/build-tools.sh) as a child process with the demo users
//! of tests/dev/dex.yaml, on its own port, and gets tokens from it the way clients do.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_yaml::Value;

use crate::{free_port, repo_root, state_dir, unique_name};

/// The demo users' password rule (tests/dev/dex.yaml).
pub fn password(user: &str) -> String {
    format!("{user}-password")
}

pub const CLIENT_ID: &str = "trellis";
pub const CLIENT_SECRET: &str = "trellis-dev-secret";
/// The public client of `trellis login` (the device flow).
pub const CLI_CLIENT_ID: &str = "trellis-cli";
/// A second registered client: its tokens are meant for another audience.
pub const OTHER_CLIENT_ID: &str = "other-app";
pub const OTHER_CLIENT_SECRET: &str = "other-app-secret";

pub struct Dex {
    pub issuer: String,
    pub port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Child,
}

#[derive(Default, Clone)]
pub struct DexOptions {
    /// Where the `trellis` client may be redirected after sign-in.
    pub redirect_uris: Vec<String>,
    /// Lifetime of ID and access tokens (Dex's `expiry.idTokens`), e.g. "3s".
    pub token_lifetime: Option<String>,
}

impl Dex {
    pub async fn start(options: DexOptions) -> Self {
        let port = free_port();
        let dir = state_dir(&unique_name("dex"));
        let issuer = format!("http://127.0.0.1:{port}/dex");
        let dev = std::fs::read_to_string(repo_root().join("tests/dev/dex.yaml"))
            .expect("tests/dev/dex.yaml");
        let mut config: Value = serde_yaml::from_str(&dev).expect("tests/dev/dex.yaml is YAML");
        config["issuer"] = issuer.clone().into();
        config["web"]["http"] = format!("127.0.0.1:{port}").into();
        config["telemetry"]["http"] = format!("127.0.0.1:{}", free_port()).into();
        config["logger"]["format"] = "json".into();
        config["staticClients"][0]["redirectURIs"] = Value::Sequence(
            options
                .redirect_uris
                .iter()
                .map(|u| u.clone().into())
                .collect(),
        );
        let other: Value = serde_yaml::from_str(&format!(
            "{{id: {OTHER_CLIENT_ID}, name: Other, secret: {OTHER_CLIENT_SECRET}, redirectURIs: ['http://127.0.0.1:1/cb']}}"
        ))
        .expect("client YAML");
        config["staticClients"]
            .as_sequence_mut()
            .expect("staticClients")
            .push(other);
        if let Some(lifetime) = &options.token_lifetime {
            config["expiry"] =
                serde_yaml::from_str(&format!("{{idTokens: '{lifetime}'}}")).expect("expiry YAML");
        }
        let path = dir.join("dex.yaml");
        std::fs::write(&path, serde_yaml::to_string(&config).expect("YAML"))
            .expect("writing dex.yaml");
        let log = dir.join("dex.log");
        let child = spawn(&path, &log);
        let dex = Self {
            issuer,
            port,
            config: path,
            log,
            child,
        };
        dex.wait_ready().await;
        dex
    }

    /// Stops this Dex and starts a new one with the same settings: in-memory storage means it
    /// comes back with a new signing key, as after a key rotation.
    pub async fn restart(mut self) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.config, &self.log);
        self.wait_ready().await;
        self
    }

    async fn wait_ready(&self) {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        for _ in 0..200 {
            if let Ok(response) = reqwest::get(&url).await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("Dex did not come up at {url}; see {}", self.log.display());
    }

    /// An access token for a demo user, from the password grant as the `trellis` client.
    pub async fn token(&self, user: &str) -> String {
        self.token_as(user, CLIENT_ID, CLIENT_SECRET).await
    }

    pub async fn token_as(&self, user: &str, client_id: &str, secret: &str) -> String {
        password_token(&self.issuer, user, client_id, secret).await
    }
}

/// An access token for a demo user from the password grant of the provider at `issuer`, as the
/// client `client_id`.
pub async fn password_token(issuer: &str, user: &str, client_id: &str, secret: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "password"),
            ("username", &format!("{user}@trellis.example")),
            ("password", &password(user)),
            ("scope", "openid profile email groups"),
        ])
        .send()
        .await
        .expect("Dex answers");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("a JSON token response");
    assert!(
        status.is_success(),
        "Dex refused a token for {user}: {body}"
    );
    body["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

fn spawn(config: &PathBuf, log: &PathBuf) -> Child {
    let binary = repo_root().join("target/cluster/bin/dex");
    assert!(
        binary.exists(),
        "{} is missing: run tests/cluster/build-tools.sh dex",
        binary.display()
    );
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("a log file");
    Command::new(binary)
        .arg("serve")
        .arg(config)
        // A misspelt setting must fail the start, not be ignored.
        .env("DEX_CONFIG_DISALLOW_UNKNOWN_FIELDS", "true")
        .stdout(Stdio::from(log.try_clone().expect("a log handle")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("starting dex")
}

impl Drop for Dex {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
