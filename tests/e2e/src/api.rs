//! Runs the real `trellis-api` binary as a child process against the test cluster, a real Dex,
//! and SQLite or PostgreSQL.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::identity::{CLI_CLIENT_ID, CLIENT_ID, CLIENT_SECRET, Dex, DexOptions, password};
use crate::{free_port, state_dir, target_profile_dir, unique_name};

/// A kubeconfig holding the chart's API ServiceAccount token, when set.
pub const IDENTITY_KUBECONFIG: &str = "TRELLIS_E2E_API_KUBECONFIG";

/// Which database the API uses.
#[derive(Clone, Debug)]
pub enum Database {
    Sqlite,
    /// A fresh PostgreSQL database, by URL.
    Postgres(String),
}

impl Database {
    /// Both kinds, each fresh: the same test runs on each.
    pub async fn both() -> [Database; 2] {
        [
            Database::Sqlite,
            Database::Postgres(postgres_database().await),
        ]
    }
}

/// A new, empty database on the test PostgreSQL server (started by tests/run-e2e.sh).
pub async fn postgres_database() -> String {
    let server = std::env::var("TRELLIS_TEST_POSTGRES_URL").unwrap_or_default();
    assert!(
        !server.is_empty(),
        "TRELLIS_TEST_POSTGRES_URL is not set: start PostgreSQL with tests/cluster/postgres-up.sh and \
         export its URL (or run `make test`, which does both)"
    );
    sqlx::any::install_default_drivers();
    let name = unique_name("db").replace('-', "_");
    let pool = sqlx::AnyPool::connect(&server)
        .await
        .expect("connecting to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("creating a test database");
    pool.close().await;
    let base = server
        .rsplit_once('/')
        .map_or(server.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

pub struct ApiServer {
    pub url: String,
    /// The operational listener: `/metrics`, which the public `url` does not serve.
    pub ops_url: String,
    /// The database the server writes, for tests that inspect or tamper with it.
    pub database_url: String,
    /// The server's data directory (the SQLite file and the airlock's object store).
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Child,
}

#[derive(Clone, Debug, Default)]
pub struct ApiOptions {
    /// Clock skew tolerated on token times (default 5s).
    pub leeway: Option<String>,
    /// YAML appended to the configuration (sections the harness does not write, e.g. `airlock`).
    pub extra: Option<String>,
    /// YAML lines added to the `oidc` section, each indented by two spaces (e.g. `  scopes: […]`).
    pub oidc_extra: Option<String>,
}

impl ApiServer {
    pub async fn start(dex: &Dex, port: u16, database: &Database, options: &ApiOptions) -> Self {
        Self::start_for(
            (&dex.issuer, CLIENT_ID, CLIENT_SECRET),
            port,
            database,
            options,
        )
        .await
    }

    /// Starts the API with the provider at `issuer`, as the confidential client `client_id`.
    pub async fn start_for(
        (issuer, client_id, client_secret): (&str, &str, &str),
        port: u16,
        database: &Database,
        options: &ApiOptions,
    ) -> Self {
        let dir = state_dir(&unique_name("api"));
        let (database_yaml, database_url) = match database {
            Database::Sqlite => (
                String::new(),
                format!("sqlite://{}", dir.join("data/trellis.db").display()),
            ),
            Database::Postgres(url) => (format!("database:\n  url: {url}\n"), url.clone()),
        };
        let leeway = options.leeway.as_deref().unwrap_or("5s");
        let ops_port = free_port();
        let yaml = format!(
            "listen: 127.0.0.1:{port}\nops_listen: 127.0.0.1:{ops_port}\npublic_url: http://127.0.0.1:{port}\ndata_dir: {data}\n{database_yaml}\
             oidc:\n  issuer: {issuer}\n  client_id: {client_id}\n  client_secret: {client_secret}\n  leeway: {leeway}\n  jwks_min_refresh: 1s\n  cli_client_id: {CLI_CLIENT_ID}\n{oidc_extra}\
             session:\n  secure_cookie: false\n{extra}",
            data = dir.join("data").display(),
            oidc_extra = options.oidc_extra.as_deref().unwrap_or_default(),
            // `{port}` in the extra YAML is this server's port (e.g. for a second origin).
            extra = options
                .extra
                .as_deref()
                .unwrap_or_default()
                .replace("{port}", &port.to_string()),
        );
        let config = dir.join("trellis.yaml");
        std::fs::write(&config, yaml).expect("writing the API configuration");
        let log = dir.join("api.log");
        let binary = target_profile_dir().join("trellis-api");
        assert!(
            binary.exists(),
            "{} is missing: run `cargo build -p trellis-api` first",
            binary.display()
        );
        let file = std::fs::File::create(&log).expect("a log file");
        let mut command = Command::new(binary);
        // Under `make test`, the API runs as the chart's ServiceAccount (tests/run-e2e.sh).
        if let Ok(kubeconfig) = std::env::var(IDENTITY_KUBECONFIG) {
            command.env("KUBECONFIG", kubeconfig);
        }
        let child = command
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info,kube_runtime=warn")
            .stdout(Stdio::from(file.try_clone().expect("a log handle")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("starting trellis-api");
        let server = Self {
            url: format!("http://127.0.0.1:{port}"),
            ops_url: format!("http://127.0.0.1:{ops_port}"),
            database_url,
            data_dir: dir.join("data"),
            config,
            log,
            child,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.url);
        for _ in 0..300 {
            if let Ok(response) = reqwest::get(&url).await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "trellis-api was not ready at {url}; see {}",
            self.log.display()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now and at its peak, in bytes.
    pub fn memory(&self) -> (u64, u64) {
        crate::process_memory(self.child.id())
    }

    /// Runs `trellis-api audit <args>` on this server's configuration: (success, stdout, stderr).
    pub fn audit(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(target_profile_dir().join("trellis-api"))
            .arg("audit")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("running trellis-api audit");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Every audit record, through `trellis-api audit export`.
    pub fn audit_records(&self) -> Vec<Value> {
        let (ok, out, err) = self.audit(&["export"]);
        assert!(ok, "audit export failed: {err}");
        out.lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Dex and an API that signs in through it.
pub struct Trellis {
    pub dex: Dex,
    pub api: ApiServer,
    pub http: reqwest::Client,
}

impl Trellis {
    pub async fn start(database: &Database) -> Self {
        Self::start_with(database, DexOptions::default(), ApiOptions::default()).await
    }

    pub async fn start_with(
        database: &Database,
        mut dex_options: DexOptions,
        api_options: ApiOptions,
    ) -> Self {
        let port = free_port();
        dex_options.redirect_uris = vec![format!("http://127.0.0.1:{port}/auth/callback")];
        let dex = Dex::start(dex_options).await;
        let api = ApiServer::start(&dex, port, database, &api_options).await;
        Self {
            dex,
            api,
            http: reqwest::Client::new(),
        }
    }

    /// A browser: keeps cookies and follows redirects.
    pub fn browser() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("a client")
    }

    /// Signs `user` in the way a browser does (see [`sign_in`]).
    pub async fn sign_in(
        &self,
        browser: &reqwest::Client,
        user: &str,
        return_to: &str,
    ) -> reqwest::Response {
        sign_in(browser, &self.api.url, &self.dex.issuer, user, return_to).await
    }

    /// A PUT of `body` (streamed, e.g. an airlock file) to `path` as `token`'s holder: the raw
    /// answer, or the error of a body that broke off.
    pub async fn put(
        &self,
        path: &str,
        token: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Result<reqwest::Response> {
        self.http
            .put(format!("{}{path}", self.api.url))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
    }

    /// A request as `token`'s holder (no token: anonymous).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        call(&self.http, &self.api.url, method, path, token, body).await
    }
}

/// Signs `user` in to the Trellis at `api_url` the way a browser does, over plain HTTP:
/// /auth/login → the provider's (at `issuer`) login form → the callback → a session cookie in
/// `browser` → `return_to`, whose response this is.
pub async fn sign_in(
    browser: &reqwest::Client,
    api_url: &str,
    issuer: &str,
    user: &str,
    return_to: &str,
) -> reqwest::Response {
    let (form_url, page) = provider_login_page(browser, api_url, issuer, return_to, "Dex").await;
    assert!(page.contains("password"), "a password form: {page}");
    browser
        .post(form_url)
        .form(&[
            ("login", format!("{user}@trellis.example")),
            ("password", password(user)),
        ])
        .send()
        .await
        .expect("Dex accepts the password and redirects back")
}

/// `/auth/login` of the Trellis at `api_url`, followed to `provider`'s login page at `issuer`:
/// the page's address and its HTML.
pub async fn provider_login_page(
    browser: &reqwest::Client,
    api_url: &str,
    issuer: &str,
    return_to: &str,
    provider: &str,
) -> (reqwest::Url, String) {
    let login_page = browser
        .get(format!("{api_url}/auth/login"))
        .query(&[("return_to", return_to)])
        .send()
        .await
        .unwrap_or_else(|e| panic!("the sign-in redirects to {provider}'s login form: {e}"));
    assert!(login_page.status().is_success(), "{}", login_page.status());
    let at = login_page.url().clone();
    assert!(at.as_str().starts_with(issuer), "at {provider}: {at}");
    let page = login_page.text().await.expect("the login page");
    (at, page)
}

/// A request to the Trellis at `api_url` as `token`'s holder (no token: anonymous): the status and
/// the body as JSON (or as a string when it is not JSON).
pub async fn call(
    http: &reqwest::Client,
    api_url: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, format!("{api_url}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
