//! Runs a real Keycloak (installed by tests/keycloak/setup.sh) as a second OpenID Connect provider:
//! dev mode on a loopback port, its H2 database in a fresh directory, the realm of
//! tests/keycloak/trellis-realm.json imported at start. Stopped when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, repo_root, state_dir, unique_name};

/// The realm's confidential client (tests/keycloak/trellis-realm.json).
pub const CLIENT_ID: &str = "trellis";
pub const CLIENT_SECRET: &str = "trellis-dev-secret";
const REALM: &str = "trellis";

/// The realm's users' password rule, as with Dex.
pub fn password(user: &str) -> String {
    format!("{user}-password")
}

pub struct Keycloak {
    /// `http://127.0.0.1:<port>/realms/trellis`.
    pub issuer: String,
    /// From spawning the JVM until the realm's discovery document answered.
    pub startup: Duration,
    pub log: PathBuf,
    child: Child,
}

/// Keycloak's home directory: `TRELLIS_E2E_KEYCLOAK_HOME` (set by tests/run-e2e.sh), or what
/// tests/keycloak/setup.sh installs (cached by version).
fn home() -> PathBuf {
    if let Ok(home) = std::env::var("TRELLIS_E2E_KEYCLOAK_HOME")
        && !home.is_empty()
    {
        return PathBuf::from(home);
    }
    let output = Command::new(repo_root().join("tests/keycloak/setup.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("running tests/keycloak/setup.sh");
    assert!(
        output.status.success(),
        "tests/keycloak/setup.sh failed (see above)"
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

impl Keycloak {
    /// Starts Keycloak with the `trellis` client allowed to redirect to `redirect_uris`.
    pub async fn start(redirect_uris: &[String]) -> Self {
        let home = home();
        let java_home = std::fs::read_to_string(home.join(".trellis-java-home"))
            .expect("the JDK chosen by tests/keycloak/setup.sh")
            .trim()
            .to_string();
        let port = free_port();
        let management_port = free_port();
        let dir = state_dir(&unique_name("keycloak"));
        let realm = std::fs::read_to_string(repo_root().join("tests/keycloak/trellis-realm.json"))
            .expect("tests/keycloak/trellis-realm.json")
            .replace(
                "\"@REDIRECT_URI@\"",
                serde_json::to_string(redirect_uris)
                    .expect("JSON")
                    .trim_matches(['[', ']']),
            );
        // `--import-realm` reads the home's data/import; the database, new for each start, makes
        // the import happen every time.
        let import = home.join("data/import");
        std::fs::create_dir_all(&import).expect("Keycloak's import directory");
        std::fs::write(import.join("trellis-realm.json"), realm).expect("writing the realm");
        let log = dir.join("keycloak.log");
        let file = std::fs::File::create(&log).expect("a log file");
        let started = Instant::now();
        let child = Command::new(home.join("bin/kc.sh"))
            .args(["start-dev", "--import-realm"])
            .arg(format!("--http-port={port}"))
            .arg("--http-host=127.0.0.1")
            .arg(format!("--hostname=http://127.0.0.1:{port}"))
            .arg(format!("--http-management-port={management_port}"))
            .arg(format!(
                "--db-url=jdbc:h2:file:{}/keycloakdb;NON_KEYWORDS=VALUE",
                dir.join("h2").display()
            ))
            .env("JAVA_HOME", java_home)
            // On Java 24 and later, Keycloak's thread pools need this to stop without errors.
            .env(
                "JAVA_OPTS_APPEND",
                "--add-opens=java.base/java.lang=ALL-UNNAMED",
            )
            .stdout(Stdio::from(file.try_clone().expect("a log handle")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("starting Keycloak");
        let mut keycloak = Self {
            issuer: format!("http://127.0.0.1:{port}/realms/{REALM}"),
            startup: Duration::ZERO,
            log,
            child,
        };
        keycloak.wait_ready().await;
        keycloak.startup = started.elapsed();
        keycloak
    }

    async fn wait_ready(&mut self) {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "Keycloak exited ({status}) before it was ready; see {}",
                    self.log.display()
                );
            }
            if let Ok(response) = reqwest::get(&url).await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "Keycloak was not ready at {url} after 180s; see {}",
            self.log.display()
        );
    }

    /// The scopes Keycloak's discovery document offers.
    pub async fn scopes_supported(&self) -> Vec<String> {
        let document: serde_json::Value =
            reqwest::get(format!("{}/.well-known/openid-configuration", self.issuer))
                .await
                .expect("Keycloak's discovery document")
                .json()
                .await
                .expect("JSON");
        document["scopes_supported"]
            .as_array()
            .expect("scopes_supported")
            .iter()
            .map(|s| s.as_str().expect("a scope").to_string())
            .collect()
    }

    /// An access token for `user` (the password grant, which the test client allows).
    pub async fn token(&self, user: &str) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/protocol/openid-connect/token", self.issuer))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", &password(user)),
                ("scope", "openid"),
            ])
            .send()
            .await
            .expect("Keycloak answers");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("a JSON token response");
        assert!(
            status.is_success(),
            "Keycloak refused a token for {user}: {body}"
        );
        body["access_token"]
            .as_str()
            .expect("an access token")
            .to_string()
    }
}

/// Signs `user` in to the Trellis at `api_url` the way a browser does, over plain HTTP, through
/// Keycloak's login form (`#kc-form-login`: `username`, `password`): /auth/login → the form → the
/// callback → a session cookie in `browser` → `return_to`, whose response this is.
pub async fn sign_in(
    browser: &reqwest::Client,
    api_url: &str,
    issuer: &str,
    user: &str,
    return_to: &str,
) -> reqwest::Response {
    let (_, page) =
        crate::api::provider_login_page(browser, api_url, issuer, return_to, "Keycloak").await;
    let action = form_action(&page, "kc-form-login")
        .unwrap_or_else(|| panic!("Keycloak's login form: {page}"));
    browser
        .post(action)
        .form(&[("username", user.to_string()), ("password", password(user))])
        .send()
        .await
        .expect("Keycloak accepts the password and redirects back")
}

/// The `action` of the form with id `id`, its HTML entities undone.
fn form_action(page: &str, id: &str) -> Option<String> {
    let form = &page[page.find(&format!("id=\"{id}\""))?..];
    let start = form.find("action=\"")? + "action=\"".len();
    let end = start + form[start..].find('"')?;
    Some(
        form[start..end]
            .replace("&amp;", "&")
            .replace("&#x3D;", "=")
            .replace("&#61;", "="),
    )
}

impl Drop for Keycloak {
    fn drop(&mut self) {
        // kc.sh passes SIGTERM on to the JVM it started and waits for it; a SIGKILL would leave
        // the JVM running.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
