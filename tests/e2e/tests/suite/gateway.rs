//! The workspace gateway end to end: a real JupyterLab (from PyPI, started by the runtime
//! stand-in on its kwok pod address) reached through the API at `/w/<project>/<workspace>/`,
//! as its owner only; the template's blocked paths refused however they are spelt; kernels over
//! WebSockets; activity written at most once per interval; Trellis's credentials never
//! forwarded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, PostParams};
use reqwest::Method;
use reqwest::cookie::CookieStore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite;
use trellis_e2e::api::{ApiOptions, Database, Trellis};
use trellis_e2e::identity::DexOptions;
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings};
use trellis_e2e::runtime::{Runtime, RuntimeOptions, jupyterlab, project_selector};
use trellis_e2e::{
    client, create_active_project, ensure_namespace, install_crds, repo_root, state_dir,
    unique_name, wait_for,
};
use trellis_operator::resources::names::LAST_ACTIVITY_ANNOTATION;
use trellis_operator::resources::names::namespace_name;
use trellis_operator::resources::{Workspace, WorkspacePhase, WorkspaceTemplate};

/// The chart's `jupyter` template (charts/trellis/values.yaml), under a unique name: the test
/// runs what a cluster would.
async fn jupyter_template(kube: &Client) -> (String, WorkspaceTemplate) {
    let values: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("charts/trellis/values.yaml"))
            .expect("the chart's values"),
    )
    .expect("values.yaml is YAML");
    let spec = serde_json::to_value(&values["workspaceTemplates"]["jupyter"]).expect("JSON");
    create_template(kube, "e2e-jupyter", spec).await
}

async fn create_template(kube: &Client, prefix: &str, spec: Value) -> (String, WorkspaceTemplate) {
    let name = unique_name(prefix);
    let template: WorkspaceTemplate = serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "WorkspaceTemplate",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("a template");
    let created = Api::<WorkspaceTemplate>::all(kube.clone())
        .create(&PostParams::default(), &template)
        .await
        .expect("creating a template");
    (name, created)
}

/// A program that answers every request with what it received: the headers, the raw path,
/// and the body's size and SHA-256 (read as it streams). It also tries to set Trellis's session
/// cookie. A real workspace program, like any a researcher could run.
const ECHO: &str = r#"
import hashlib, http.server, json, os
class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        digest, size = hashlib.sha256(), 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                length = int(self.rfile.readline().split(b";")[0], 16)
                if length == 0:
                    self.rfile.readline()
                    break
                while length:
                    chunk = self.rfile.read(min(length, 1 << 16))
                    digest.update(chunk); size += len(chunk); length -= len(chunk)
                self.rfile.readline()
        else:
            length = int(self.headers.get("Content-Length", "0"))
            while length:
                chunk = self.rfile.read(min(length, 1 << 16))
                digest.update(chunk); size += len(chunk); length -= len(chunk)
        body = json.dumps({
            "path": self.path,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "size": size, "sha256": digest.hexdigest(),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "trellis_session=forged; Path=/")
        self.send_header("Set-Cookie", "echo=1; Path=/")
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_PUT = answer
http.server.ThreadingHTTPServer((os.environ["POD_IP"], int(os.environ["PORT"])), Echo).serve_forever()
"#;

/// One test's Trellis: its operator, Dex and API, a project where alice (a researcher) has a
/// workspace and bob owns the project, and the runtime stand-in running that project's pods.
struct Setup {
    kube: Client,
    trellis: Trellis,
    _runtime: Runtime,
    _operator: Operator,
    project: String,
    workspace: String,
    /// Where the workspace's program listens: `ip:port` of its pod.
    backend: String,
    jar: Arc<reqwest::cookie::Jar>,
    /// alice's browser, signed in.
    alice: reqwest::Client,
}

impl Setup {
    async fn start(template: TemplateKind, api: ApiOptions) -> Self {
        let kube = client().await;
        install_crds(&kube).await;
        ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
        let settings = OperatorSettings::new();
        let operator = Operator::start(&settings);
        let (template, spec) = match template {
            TemplateKind::Jupyter => jupyter_template(&kube).await,
            TemplateKind::Echo => {
                create_template(
                    &kube,
                    "e2e-echo",
                    json!({
                        "displayName": "Echo", "image": "docker.io/library/python:3.13-slim",
                        "port": 8000, "command": ["python3", "-c", ECHO],
                        "env": [{"name": "PORT", "value": "8000"}],
                        "resources": {"default": {"cpu": "1", "memory": "1Gi"}, "max": {"cpu": "1", "memory": "1Gi"}},
                        "defaultStorage": "1Gi", "gateway": {"blockedPaths": ["/files/"]},
                    }),
                )
                .await
            }
        };
        let project = create_active_project(
            &kube,
            &settings.run,
            "e2e-gw",
            json!({
                "title": "Gateway", "purpose": "Gateway tests.",
                "approval": {"reference": "R-1", "approvedBy": "DAC", "approvedAt": "2026-01-05T00:00:00Z"},
                "startDate": "2026-01-05", "endDate": "2099-12-31",
                "members": [{"subject": "bob", "role": "owner"}, {"subject": "alice", "role": "researcher"}],
                "resources": {"cpu": "8", "memory": "32Gi", "storage": "50Gi", "maxWorkspaces": 2},
                "templates": [template],
            }),
        )
        .await;
        let runtime = Runtime::start(
            kube.clone(),
            RuntimeOptions {
                selector: project_selector(&project),
                dir: state_dir(&unique_name("runtime")),
                jupyterlab: jupyterlab(),
                pod_files: None,
            },
        );
        let trellis = Trellis::start_with(&Database::Sqlite, DexOptions::default(), api).await;
        let alice_token = trellis.dex.token("alice").await;
        let workspace = "nb".to_string();
        let (status, made) = trellis
            .call(
                Method::POST,
                &format!("/api/v1/projects/{project}/workspaces"),
                Some(&alice_token),
                Some(json!({"name": workspace, "template": template})),
            )
            .await;
        assert_eq!(status, 201, "{made}");
        let namespace = namespace_name(&project);
        let workspaces: Api<Workspace> = Api::namespaced(kube.clone(), &namespace);
        wait_for(
            &workspaces,
            &workspace,
            Duration::from_secs(60),
            "Running",
            |w: Option<&Workspace>| {
                w.and_then(|w| w.status.as_ref()).and_then(|s| s.phase)
                    == Some(WorkspacePhase::Running)
            },
        )
        .await;
        let pods: Api<Pod> = Api::namespaced(kube.clone(), &namespace);
        let pod = wait_for(
            &pods,
            &format!("{workspace}-0"),
            Duration::from_secs(60),
            "an address",
            |p: Option<&Pod>| {
                p.and_then(|p| p.status.as_ref())
                    .and_then(|s| s.pod_ip.as_ref())
                    .is_some()
            },
        )
        .await;
        let ip = pod.status.and_then(|s| s.pod_ip).expect("a pod address");
        let backend = format!("{ip}:{}", spec.spec.port);
        runtime
            .wait_listening(
                &namespace,
                &format!("{workspace}-0"),
                &backend,
                Duration::from_secs(90),
            )
            .await;
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let alice = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .expect("a browser");
        let landed = trellis.sign_in(&alice, "alice", "/api/v1/me").await;
        assert_eq!(landed.status(), 200, "alice signed in");
        Self {
            kube,
            trellis,
            _runtime: runtime,
            _operator: operator,
            project,
            workspace,
            backend,
            jar,
            alice,
        }
    }

    /// The workspace's URL path, with `rest` after its base.
    fn path(&self, rest: &str) -> String {
        format!("/w/{}/{}{rest}", self.project, self.workspace)
    }

    fn url(&self, rest: &str) -> String {
        format!("{}{}", self.trellis.api.url, self.path(rest))
    }

    /// The `Cookie` header alice's browser sends to the gateway.
    fn cookies(&self) -> String {
        let url = reqwest::Url::parse(&self.url("/")).expect("a URL");
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().expect("ASCII").to_string())
            .unwrap_or_default()
    }

    /// Jupyter's `_xsrf` cookie, which unsafe requests repeat in `X-XSRFToken`.
    async fn xsrf(&self) -> String {
        let lab = self
            .alice
            .get(self.url("/lab"))
            .send()
            .await
            .expect("the lab");
        assert_eq!(lab.status(), 200);
        self.cookies()
            .split("; ")
            .find_map(|c| c.strip_prefix("_xsrf="))
            .expect("Jupyter sets its _xsrf cookie through the gateway")
            .to_string()
    }

    fn namespace(&self) -> String {
        namespace_name(&self.project)
    }

    fn audit(&self, action: &str) -> Vec<Value> {
        self.trellis
            .api
            .audit_records()
            .into_iter()
            .filter(|r| r["action"] == action)
            .collect()
    }
}

#[derive(Clone, Copy)]
enum TemplateKind {
    Jupyter,
    Echo,
}

/// A request sent byte for byte as written (an HTTP client would normalise the path):
/// (status, headers, body).
async fn raw(
    address: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connecting");
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("sending");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("reading");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    (status, head.to_string(), body.to_string())
}

fn problem_detail(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["detail"].as_str().map(String::from))
        .unwrap_or_else(|| panic!("a problem document: {body}"))
}

#[tokio::test]
async fn only_the_owner_reaches_jupyterlab() {
    let setup = Setup::start(TemplateKind::Jupyter, ApiOptions::default()).await;
    let api = setup.trellis.api.url.clone();

    // The owner: the lab page and Jupyter's API, under the workspace's base path.
    let lab = setup
        .alice
        .get(setup.url("/lab"))
        .send()
        .await
        .expect("the lab");
    assert_eq!(lab.status(), 200);
    let headers = lab.headers().clone();
    let page = lab.text().await.expect("the page");
    assert!(page.contains("<title>JupyterLab</title>"), "{page}");
    assert!(
        page.contains(&format!("\"baseUrl\": \"{}\"", setup.path("/"))),
        "Jupyter serves under the gateway path: {page}"
    );
    // Jupyter's own CSP stands (the API's strict one would break the page); the API's framing
    // and sniffing protections are added.
    let csp = headers["content-security-policy"].to_str().expect("ASCII");
    assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // The application's script loads through the gateway too.
    let script = page
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page names its script");
    assert!(script.starts_with(&setup.path("/static/")), "{script}");
    let bundle = setup
        .alice
        .get(format!("{api}{script}"))
        .send()
        .await
        .expect("the script");
    assert_eq!(bundle.status(), 200);
    assert!(
        bundle.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .contains("javascript")
    );
    let status: Value = setup
        .alice
        .get(setup.url("/api/status"))
        .send()
        .await
        .expect("Jupyter's status")
        .json()
        .await
        .expect("JSON");
    assert!(status["started"].is_string(), "{status}");
    // Without the trailing slash: redirected to it.
    let bare = setup
        .alice
        .get(format!("{api}{}", setup.path("")))
        .send()
        .await
        .expect("the bare path");
    assert_eq!(bare.status(), 200);
    assert!(
        bare.url().path().starts_with(&setup.path("/")),
        "{}",
        bare.url()
    );

    // Anonymous: sent to sign in, and back to the lab afterwards.
    let (status, head, _) = raw(
        &api.replace("http://", ""),
        "GET",
        &setup.path("/lab?reset"),
        &[],
    )
    .await;
    assert_eq!(status, 303, "{head}");
    let expected = format!(
        "location: /auth/login?return_to={}",
        setup
            .path("/lab?reset")
            .replace('/', "%2F")
            .replace('?', "%3F")
    );
    assert!(
        head.to_lowercase().contains(&expected.to_lowercase()),
        "{head}"
    );
    let browser = Trellis::browser();
    let landed = setup
        .trellis
        .sign_in(&browser, "alice", &setup.path("/lab"))
        .await;
    assert_eq!(landed.status(), 200);
    assert_eq!(landed.url().path(), setup.path("/lab"));

    // Everybody else is refused, and each refusal audited: the project's owner, an output
    // checker, a platform admin.
    for user in ["bob", "carol", "admin"] {
        let browser = Trellis::browser();
        let me = setup.trellis.sign_in(&browser, user, "/api/v1/me").await;
        assert_eq!(me.status(), 200);
        for rest in ["/lab", "/api/status", "/api/contents"] {
            let refused = browser
                .get(setup.url(rest))
                .send()
                .await
                .expect("an answer");
            assert_eq!(refused.status(), 403, "{user} {rest}");
            assert_eq!(
                refused.headers()["content-type"],
                "application/problem+json"
            );
            let detail = problem_detail(&refused.text().await.expect("a body"));
            assert!(detail.contains("only the workspace's owner"), "{detail}");
        }
    }
    let denied = setup.audit("workspace.gateway");
    for user in ["bob", "carol", "admin"] {
        let theirs: Vec<&Value> = denied.iter().filter(|r| r["actor"] == user).collect();
        assert_eq!(theirs.len(), 3, "{user}: {denied:?}");
        assert!(theirs.iter().all(|r| r["outcome"] == "denied"
            && r["target"] == format!("workspace/{}/{}", setup.project, setup.workspace)));
    }
    assert!(
        denied.iter().all(|r| r["actor"] != "alice"),
        "the owner was never refused: {denied:?}"
    );
    let (ok, out, err) = setup.trellis.api.audit(&["verify"]);
    assert!(ok, "{out} {err}");
}

#[tokio::test]
async fn blocked_paths_are_refused_however_they_are_spelt() {
    let setup = Setup::start(TemplateKind::Jupyter, ApiOptions::default()).await;
    let xsrf = setup.xsrf().await;
    // A results file and a notebook, made through the editor's own API (which stays open).
    for (name, body) in [
        (
            "results.csv",
            json!({"type": "file", "format": "text", "content": "region,count\nNorth,3\n"}),
        ),
        (
            "analysis.ipynb",
            json!({"type": "notebook", "content": {
                "cells": [{"cell_type": "markdown", "metadata": {}, "source": "Counts: North 3"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
            }}),
        ),
    ] {
        let saved = setup
            .alice
            .put(setup.url(&format!("/api/contents/{name}")))
            .header("X-XSRFToken", &xsrf)
            .json(&body)
            .send()
            .await
            .expect("saving through the contents API");
        assert!(saved.status().is_success(), "{name}: {}", saved.status());
    }
    let read: Value = setup
        .alice
        .get(setup.url("/api/contents/results.csv?content=1"))
        .send()
        .await
        .expect("reading through the contents API")
        .json()
        .await
        .expect("JSON");
    assert_eq!(read["content"], "region,count\nNorth,3\n");

    // Jupyter itself would serve the downloads: asked directly, bypassing the gateway, as a
    // browser on its page asks (Jupyter wants a same-site Referer on these GETs).
    let direct = |rest: &str| format!("http://{}{}", setup.backend, setup.path(rest));
    let plain = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::REFERER,
                direct("/lab").parse().expect("a header value"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .expect("a client");
    let file = plain
        .get(direct("/files/results.csv"))
        .send()
        .await
        .expect("Jupyter answers");
    assert_eq!(file.status(), 200);
    assert_eq!(
        file.text().await.expect("the file"),
        "region,count\nNorth,3\n"
    );
    let export = plain
        .get(direct("/nbconvert/html/analysis.ipynb?download=true"))
        .send()
        .await
        .expect("Jupyter answers");
    assert_eq!(export.status(), 200);
    assert!(
        export
            .text()
            .await
            .expect("HTML")
            .contains("Counts: North 3")
    );

    // Through the gateway, every spelling of them is refused.
    let api = setup.trellis.api.url.replace("http://", "");
    let cookie = setup.cookies();
    let attempts = [
        "/files/results.csv",
        "/files/",
        "//files/results.csv",
        "/./files/results.csv",
        "/api/../files/results.csv",
        "/api/%2e%2e/files/results.csv",
        "/%66iles/results.csv",
        "/%2566iles/results.csv",
        "/files%2Fresults.csv",
        "/nbconvert/html/analysis.ipynb?download=true",
        "/NBCONVERT/../nbconvert/pdf/analysis.ipynb",
    ];
    for attempt in attempts {
        let (status, head, body) =
            raw(&api, "GET", &setup.path(attempt), &[("Cookie", &cookie)]).await;
        assert_eq!(status, 403, "{attempt}: {head}\n{body}");
        assert!(
            head.to_lowercase()
                .contains("content-type: application/problem+json"),
            "{head}"
        );
        assert!(
            problem_detail(&body).contains("airlock"),
            "{attempt}: {body}"
        );
    }
    let blocked = setup.audit("workspace.gateway.blocked");
    assert_eq!(blocked.len(), attempts.len(), "{blocked:?}");
    for (record, attempt) in blocked.iter().zip(attempts) {
        assert_eq!(record["actor"], "alice");
        assert_eq!(record["outcome"], "denied");
        let path = attempt.split('?').next().unwrap_or(attempt);
        assert_eq!(record["detail"]["path"], setup.path(path), "{record}");
    }
    // A path that leaves the workspace is not forwarded at all.
    let (status, _, body) = raw(
        &api,
        "GET",
        &setup.path("/../other/api/status"),
        &[("Cookie", &cookie)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // And the editor's API still works after all that.
    let listing = setup
        .alice
        .get(setup.url("/api/contents"))
        .send()
        .await
        .expect("the listing");
    assert_eq!(listing.status(), 200);
}

#[tokio::test]
async fn kernels_run_code_over_websockets_through_the_gateway() {
    let setup = Setup::start(TemplateKind::Jupyter, ApiOptions::default()).await;
    let xsrf = setup.xsrf().await;
    let kernel: Value = setup
        .alice
        .post(setup.url("/api/kernels"))
        .header("X-XSRFToken", &xsrf)
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .expect("starting a kernel")
        .json()
        .await
        .expect("the kernel as JSON");
    let id = kernel["id"].as_str().expect("a kernel id");

    let ws_url = format!(
        "{}/api/kernels/{id}/channels",
        setup.url("").replacen("http://", "ws://", 1)
    );
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(ws_url.as_str())
        .expect("a WebSocket request");
    let headers = request.headers_mut();
    headers.insert("cookie", setup.cookies().parse().expect("a header value"));
    // As a browser on the Trellis page sends it: Jupyter compares it with the Host header.
    headers.insert(
        "origin",
        setup.trellis.api.url.parse().expect("a header value"),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the kernel's channels open through the gateway");
    assert_eq!(response.status(), 101);

    let msg_id = unique_name("msg");
    let execute = json!({
        "header": {"msg_id": msg_id, "username": "alice", "session": unique_name("session"),
                   "msg_type": "execute_request", "version": "5.3", "date": chrono::Utc::now().to_rfc3339()},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": "print(6*7)", "silent": false, "store_history": false,
                    "user_expressions": {}, "allow_stdin": false, "stop_on_error": true},
    });
    socket
        .send(tungstenite::Message::text(execute.to_string()))
        .await
        .expect("sending the execute request");
    let mut seen = Vec::new();
    let printed = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(message) = socket.next().await {
            let message = message.expect("a WebSocket message");
            let tungstenite::Message::Text(text) = message else {
                continue;
            };
            let reply: Value = serde_json::from_str(text.as_str()).expect("a JSON message");
            seen.push(format!(
                "{}:{}",
                reply["channel"].as_str().unwrap_or_default(),
                reply["msg_type"].as_str().unwrap_or_default()
            ));
            if reply["channel"] == "iopub"
                && reply["msg_type"] == "stream"
                && reply["parent_header"]["msg_id"] == msg_id.as_str()
            {
                return reply["content"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
            }
        }
        String::new()
    })
    .await;
    assert_eq!(
        printed.as_deref().ok(),
        Some("42\n"),
        "messages seen: {seen:?}"
    );
    let _ = socket.close(None).await;
    let stopped = setup
        .alice
        .delete(setup.url(&format!("/api/kernels/{id}")))
        .header("X-XSRFToken", &xsrf)
        .send()
        .await
        .expect("stopping the kernel");
    assert_eq!(stopped.status(), 204);
}

#[tokio::test]
async fn activity_is_written_at_most_once_per_interval() {
    let interval = Duration::from_secs(4);
    let setup = Setup::start(
        TemplateKind::Echo,
        ApiOptions {
            extra: Some(format!(
                "gateway:\n  activity_interval: {}s\n",
                interval.as_secs()
            )),
            ..Default::default()
        },
    )
    .await;
    let workspaces: Api<Workspace> = Api::namespaced(setup.kube.clone(), &setup.namespace());
    let annotation = |w: &Workspace| {
        w.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LAST_ACTIVITY_ANNOTATION).cloned())
    };
    let before = workspaces
        .get(&setup.workspace)
        .await
        .expect("the workspace");
    assert_eq!(annotation(&before), None, "no traffic yet");

    // A burst of requests: the first writes the annotation, the rest within the interval do not.
    let burst = Instant::now();
    for _ in 0..20 {
        let answer = setup
            .alice
            .get(setup.url("/anything"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 200);
    }
    assert!(
        burst.elapsed() < interval / 2,
        "the burst took {:?}",
        burst.elapsed()
    );
    let written = wait_for(
        &workspaces,
        &setup.workspace,
        Duration::from_secs(10),
        "the last-activity annotation",
        |w: Option<&Workspace>| w.and_then(annotation).is_some(),
    )
    .await;
    let first = annotation(&written).expect("an annotation");
    let first_at = chrono::DateTime::parse_from_rfc3339(&first).expect("RFC 3339");
    assert!(
        (chrono::Utc::now() - first_at.with_timezone(&chrono::Utc)).num_seconds() < 30,
        "{first}"
    );
    assert_eq!(
        activity_writes(&setup, 1.0).await,
        1.0,
        "one write for the burst"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let still = workspaces
        .get(&setup.workspace)
        .await
        .expect("the workspace");
    assert_eq!(annotation(&still).as_deref(), Some(first.as_str()));
    // The operator reads it (idle shutdown counts from it) and shows it in the status.
    wait_for(
        &workspaces,
        &setup.workspace,
        Duration::from_secs(10),
        "status.lastActivity",
        |w: Option<&Workspace>| {
            w.and_then(|w| w.status.as_ref())
                .and_then(|s| s.last_activity)
                .is_some_and(|at| at == first_at.with_timezone(&chrono::Utc))
        },
    )
    .await;

    // After the interval, the next request writes again.
    tokio::time::sleep(interval).await;
    let answer = setup
        .alice
        .get(setup.url("/later"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200);
    let rewritten = wait_for(
        &workspaces,
        &setup.workspace,
        Duration::from_secs(10),
        "a newer last-activity annotation",
        |w: Option<&Workspace>| w.and_then(annotation).is_some_and(|a| a != first),
    )
    .await;
    let second = annotation(&rewritten).expect("an annotation");
    assert!(second > first, "{second} after {first}");
    assert_eq!(activity_writes(&setup, 2.0).await, 2.0);
    // Refused requests are no activity.
    let browser = Trellis::browser();
    setup.trellis.sign_in(&browser, "bob", "/api/v1/me").await;
    for _ in 0..3 {
        let refused = browser
            .get(setup.url("/x"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(refused.status(), 403);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(activity_writes(&setup, 2.0).await, 2.0);
    let after = workspaces
        .get(&setup.workspace)
        .await
        .expect("the workspace");
    assert_eq!(annotation(&after).as_deref(), Some(second.as_str()));
}

/// The gateway's activity writes so far, from /metrics; waits a little for `expected` (the
/// write's count follows its answer from the apiserver).
async fn activity_writes(setup: &Setup, expected: f64) -> f64 {
    let mut seen = 0.0;
    for _ in 0..50 {
        let metrics = reqwest::get(format!("{}/metrics", setup.trellis.api.ops_url))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("the metrics");
        seen = metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix("trellis_api_gateway_activity_writes_total{outcome=\"written\"}")
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0);
        if seen >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

#[tokio::test]
async fn trellis_credentials_never_reach_the_workspace() {
    let setup = Setup::start(TemplateKind::Echo, ApiOptions::default()).await;
    let token = setup.trellis.dex.token("alice").await;
    let echo = |answer: Value| {
        let headers: Vec<(String, String)> = answer["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap_or_default().to_string(),
                    pair[1].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        (answer, headers)
    };
    // The browser's request carries the session cookie, cookies of the workspace's own, and
    // (as a script might add) a bearer token and the API's CSRF header.
    setup.jar.add_cookie_str(
        "theme=dark; Path=/",
        &reqwest::Url::parse(&setup.trellis.api.url).expect("a URL"),
    );
    let answer = setup
        .alice
        .get(setup.url("/echo?x=1"))
        .bearer_auth(&token)
        .header("x-csrf-token", "the-api-csrf-token")
        .header("origin", &setup.trellis.api.url)
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200);
    let set_cookies: Vec<String> = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        set_cookies,
        ["echo=1; Path=/"],
        "the workspace cannot set Trellis's session cookie"
    );
    let (answer, headers) = echo(answer.json().await.expect("the echo"));
    let all = format!("{headers:?}");
    assert!(
        setup.cookies().contains("trellis_session="),
        "the browser has a session"
    );
    assert!(!all.contains("trellis_session"), "{all}");
    assert!(!all.contains(&token), "{all}");
    assert!(!all.contains("the-api-csrf-token"), "{all}");
    let header = |name: &str| {
        headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert!(header("authorization").is_empty());
    let cookies = header("cookie").join("; ");
    assert!(cookies.contains("theme=dark"), "{cookies}");
    let host = setup.trellis.api.url.replace("http://", "");
    assert_eq!(header("host"), [host.as_str()]);
    assert_eq!(header("origin"), [setup.trellis.api.url.as_str()]);
    assert_eq!(header("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(header("x-forwarded-proto"), ["http"]);
    assert_eq!(header("x-forwarded-host"), [host.as_str()]);
    assert_eq!(answer["path"], setup.path("/echo?x=1"));

    // The path goes on exactly as sent (only the decision normalises it).
    let (status, _, body) = raw(
        &host,
        "GET",
        &setup.path("/a//b/%2e/c%20d"),
        &[("Cookie", &setup.cookies())],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent: Value = serde_json::from_str(&body).expect("the echo");
    assert_eq!(sent["path"], setup.path("/a//b/%2e/c%20d"));

    // A large upload streams through, past the JSON API's body limit, intact.
    let size = 64 * 1024 * 1024;
    let chunk = vec![7u8; 1024 * 1024];
    let mut expected = Sha256::new();
    for _ in 0..size / chunk.len() {
        expected.update(&chunk);
    }
    let chunks = futures::stream::iter(
        (0..size / chunk.len()).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
    );
    let answer = setup
        .alice
        .post(setup.url("/upload"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("the upload");
    assert_eq!(answer.status(), 200);
    let (answer, _) = echo(answer.json().await.expect("the echo"));
    assert_eq!(answer["size"], size);
    assert_eq!(answer["sha256"], hex::encode(expected.finalize()));
}

/// With `gateway.public_url` set, workspaces live on an origin of their own (here `localhost`,
/// Trellis on `127.0.0.1`): the sign-in crosses over with a one-time ticket, the workspace
/// origin serves workspaces and nothing else, and neither origin's cookie works on the other.
#[tokio::test]
async fn workspaces_on_their_own_origin_never_see_or_use_trellis_sessions() {
    let api = ApiOptions {
        extra: Some("gateway:\n  public_url: http://localhost:{port}\n".into()),
        ..ApiOptions::default()
    };
    let setup = Setup::start(TemplateKind::Echo, api).await;
    let main = setup.trellis.api.url.clone();
    let port = main.rsplit(':').next().expect("a port").to_string();
    let workspaces = format!("http://localhost:{port}");
    let no_redirects = reqwest::Client::builder()
        .cookie_provider(setup.jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let location = |answer: &reqwest::Response| {
        answer.headers()["location"]
            .to_str()
            .expect("ASCII")
            .to_string()
    };

    // Opening the workspace from Trellis's page: main → workspace origin → ticket → back.
    let opened = setup
        .alice
        .get(setup.url("/echo"))
        .send()
        .await
        .expect("the workspace");
    assert_eq!(opened.status(), 200);
    assert_eq!(
        opened.url().as_str(),
        format!("{workspaces}{}", setup.path("/echo")),
        "served from the workspace origin"
    );
    let seen: Value = opened.json().await.expect("the echo");
    let seen = seen["headers"].to_string();
    assert!(
        !seen.contains("trellis_session") && !seen.contains("trellis_workspace"),
        "{seen}"
    );
    let issued = setup.audit("auth.workspace");
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["actor"], "alice");
    assert_eq!(issued[0]["outcome"], "success");

    // The workspace origin serves workspaces only.
    for path in ["/api/v1/me", "/", "/auth/login", "/projects"] {
        let answer = setup
            .alice
            .get(format!("{workspaces}{path}"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 404, "{path} on the workspace origin");
    }

    // Each origin's cookie is worthless on the other.
    let cookie_value = |url: &str, name: &str| {
        setup
            .jar
            .cookies(&reqwest::Url::parse(url).expect("a URL"))
            .and_then(|v| {
                v.to_str().ok().and_then(|all| {
                    all.split("; ")
                        .find_map(|c| c.strip_prefix(&format!("{name}=")))
                        .map(String::from)
                })
            })
            .unwrap_or_else(|| panic!("{name} for {url}"))
    };
    let session = cookie_value(&main, "trellis_session");
    let gateway = cookie_value(
        &setup.url("/").replace(&main, &workspaces),
        "trellis_workspace",
    );
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let with_session = plain
        .get(format!("{workspaces}{}", setup.path("/echo")))
        .header("cookie", format!("trellis_session={session}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        with_session.status(),
        303,
        "a Trellis session does not open workspaces there"
    );
    assert!(location(&with_session).starts_with(&format!("{main}/auth/workspace?return_to=")));
    let with_gateway = plain
        .get(format!("{main}/api/v1/me"))
        .header("cookie", format!("trellis_session={gateway}"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        with_gateway.status(),
        401,
        "a gateway session is not an API session"
    );

    // A ticket is good once; a return path outside the workspaces is refused.
    let issue = no_redirects
        .get(format!(
            "{main}/auth/workspace?return_to={}",
            setup.path("/echo")
        ))
        .send()
        .await
        .expect("a ticket");
    assert_eq!(issue.status(), 303);
    let redeem = location(&issue);
    assert!(
        redeem.starts_with(&format!("{workspaces}/w/_auth?ticket=")),
        "{redeem}"
    );
    let first = plain.get(&redeem).send().await.expect("redeemed");
    assert_eq!(first.status(), 303);
    assert_eq!(location(&first), setup.path("/echo"));
    let cookie = first.headers()["set-cookie"].to_str().expect("ASCII");
    assert!(
        cookie.starts_with("trellis_workspace=")
            && cookie.contains("HttpOnly")
            && cookie.contains("Path=/w/"),
        "{cookie}"
    );
    let again = plain.get(&redeem).send().await.expect("an answer");
    assert_eq!(again.status(), 403, "a ticket works once");
    let failures: Vec<Value> = setup
        .audit("auth.workspace")
        .into_iter()
        .filter(|r| r["outcome"] == "failure")
        .collect();
    assert_eq!(failures.len(), 1);
    let elsewhere = no_redirects
        .get(format!("{main}/auth/workspace?return_to=/api/v1/me"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(elsewhere.status(), 400);

    // Signed out on Trellis: the hop goes through sign-in first.
    let anonymous = plain
        .get(format!(
            "{main}/auth/workspace?return_to={}",
            setup.path("/")
        ))
        .send()
        .await
        .expect("an answer");
    assert_eq!(anonymous.status(), 303);
    assert!(location(&anonymous).starts_with("/auth/login?return_to=%2Fauth%2Fworkspace"));

    // Signing out of Trellis closes the workspaces too: the gateway session lives only as long as
    // the Trellis session it came from.
    let ws_echo = format!("{workspaces}{}", setup.path("/echo"));
    let before = no_redirects.get(&ws_echo).send().await.expect("an answer");
    assert_eq!(before.status(), 200, "signed in, the workspace opens");
    let me: Value = setup
        .alice
        .get(format!("{main}/api/v1/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("JSON");
    let csrf = me["csrfToken"].as_str().expect("a CSRF token").to_string();
    let out = no_redirects
        .post(format!("{main}/auth/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("signed out");
    assert_eq!(out.status(), 303);
    let after = no_redirects.get(&ws_echo).send().await.expect("an answer");
    assert_eq!(
        after.status(),
        303,
        "signed out of Trellis, the workspace is closed"
    );
    assert!(location(&after).starts_with(&format!("{main}/auth/workspace?return_to=")));

    // The ticket carries the person; the gateway still decides (bob owns the project, not the
    // workspace).
    let bob = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a browser");
    setup.trellis.sign_in(&bob, "bob", "/").await;
    let refused = bob.get(setup.url("/echo")).send().await.expect("an answer");
    assert_eq!(refused.status(), 403);
}

/// A workspace that does not answer (its program stopped) is a 502, and one that is not Running
/// a 503 naming its phase: problem+json for programs, a page that retries by itself for people.
#[tokio::test]
async fn a_workspace_that_is_down_gets_a_clear_answer() {
    let setup = Setup::start(TemplateKind::Echo, ApiOptions::default()).await;
    let ask = |accept: &'static str| {
        let request = setup.alice.get(setup.url("/echo")).header("accept", accept);
        async move {
            let answer = request.send().await.expect("an answer");
            let status = answer.status().as_u16();
            let kind = answer.headers()["content-type"]
                .to_str()
                .expect("ASCII")
                .to_string();
            (status, kind, answer.text().await.expect("a body"))
        }
    };
    assert_eq!(ask("*/*").await.0, 200, "the workspace answers at first");

    // Running, but nothing listens: 502.
    setup._runtime.stop_all();
    let (status, kind, body) = ask("application/json").await;
    assert_eq!(
        (status, kind.as_str()),
        (502, "application/problem+json"),
        "{body}"
    );
    assert!(body.contains("did not answer"), "{body}");
    let (status, kind, page) = ask("text/html,application/xhtml+xml").await;
    assert_eq!(status, 502);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(
        page.contains("http-equiv=\"refresh\"") && page.contains("role=\"alert\""),
        "{page}"
    );
    assert!(
        page.contains(&format!("href=\"{}/\"", setup.trellis.api.url)),
        "{page}"
    );

    // Stopped: 503 naming the phase; a page for people says so and retries.
    let token = setup.trellis.dex.token("alice").await;
    let (stopped, answer) = setup
        .trellis
        .call(
            Method::POST,
            &format!(
                "/api/v1/projects/{}/workspaces/{}/stop",
                setup.project, setup.workspace
            ),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(stopped, 200, "{answer}");
    let workspaces: Api<Workspace> = Api::namespaced(setup.kube.clone(), &setup.namespace());
    wait_for(
        &workspaces,
        &setup.workspace,
        Duration::from_secs(60),
        "Stopped",
        |w: Option<&Workspace>| {
            w.and_then(|w| w.status.as_ref()).and_then(|s| s.phase) == Some(WorkspacePhase::Stopped)
        },
    )
    .await;
    // The gateway reads workspaces from the API's watch cache, which may trail the apiserver by
    // a moment: "Stopping" is a right answer until the cache has the Stopped status.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (status, kind, body) = loop {
        let answer = ask("application/json").await;
        if answer.2.contains("Stopped") || tokio::time::Instant::now() > deadline {
            break answer;
        }
        assert!(
            answer.2.contains("Stopping"),
            "only Stopping may come first: {}",
            answer.2
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (status, kind.as_str()),
        (503, "application/problem+json"),
        "{body}"
    );
    assert!(body.contains("Stopped"), "the phase is named: {body}");
    let (status, _, page) = ask("text/html").await;
    assert_eq!(status, 503);
    assert!(
        page.contains("Stopped") && page.contains("http-equiv=\"refresh\""),
        "{page}"
    );
}
