//! What the DataSHIELD tests share: data brought in through the airlock, the server turned on
//! and ready, its pod once the runtime stand-in has it listening, and a client spoken by hand.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use reqwest::Method;
use serde_json::json;
use trellis_operator::resources::Project;
use trellis_operator::resources::names::{
    COMPONENT_LABEL, DATASHIELD_COMPONENT, DATASHIELD_PORT, namespace_name,
};

use crate::api::Trellis;
use crate::runtime::Runtime;

/// An ingress request by `author` holding `files`, approved and released by `reviewer` (the
/// project needs one review); returns its id.
pub async fn released_ingress(
    trellis: &Trellis,
    project: &str,
    author: &str,
    reviewer: &str,
    title: &str,
    files: &[(&str, &[u8])],
) -> String {
    let author = trellis.dex.token(author).await;
    let reviewer = trellis.dex.token(reviewer).await;
    let (status, made) = trellis
        .call(
            Method::POST,
            &format!("/api/v1/projects/{project}/airlock"),
            Some(&author),
            Some(json!({"direction": "ingress", "title": title})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_str().expect("an id").to_owned();
    let base = format!("/api/v1/projects/{project}/airlock/{id}");
    for (name, bytes) in files {
        let put = trellis
            .put(&format!("{base}/files/{name}"), &author, bytes.to_vec())
            .await
            .expect("an upload");
        assert_eq!(put.status(), 201, "{name}");
    }
    let (status, submitted) = trellis
        .call(Method::POST, &format!("{base}/submit"), Some(&author), None)
        .await;
    assert_eq!(status, 200, "{submitted}");
    let votes: Vec<_> = files
        .iter()
        .map(|(file, _)| json!({"file": file, "vote": "approve"}))
        .collect();
    let (status, voted) = trellis
        .call(
            Method::POST,
            &format!("{base}/votes"),
            Some(&reviewer),
            Some(json!({"votes": votes})),
        )
        .await;
    assert_eq!(status, 200, "{voted}");
    let (_, done) = trellis
        .call(
            Method::POST,
            &format!("{base}/outcome"),
            Some(&reviewer),
            Some(json!({"outcome": "approve"})),
        )
        .await;
    assert_eq!(done["state"], "released", "{done}");
    id
}

/// The project's DataSHIELD pod, once its server listens on its address.
pub async fn serving_pod(kube: &kube::Client, runtime: &Runtime, project: &str) -> Pod {
    let namespace = namespace_name(project);
    let pods: Api<Pod> = Api::namespaced(kube.clone(), &namespace);
    let selector = format!("{COMPONENT_LABEL}={DATASHIELD_COMPONENT}");
    let started = Instant::now();
    let (pod, ip) = loop {
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .expect("listing pods");
        let found = listed.items.into_iter().find_map(|p| {
            let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone())?;
            p.metadata.deletion_timestamp.is_none().then_some((p, ip))
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no DataSHIELD pod with an address within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    runtime
        .wait_listening(
            &namespace,
            pod.metadata.name.as_deref().expect("a name"),
            &format!("{ip}:{DATASHIELD_PORT}"),
            Duration::from_secs(90),
        )
        .await;
    pod
}

/// Turns on the project's DataSHIELD server with `datashield` (the rest of `spec.datashield`:
/// tables, settings) and waits until its status says it is ready; returns the project then.
pub async fn enable(
    kube: &kube::Client,
    project: &str,
    datashield: serde_json::Value,
    timeout: Duration,
) -> Project {
    let projects: Api<Project> = Api::all(kube.clone());
    let mut spec = datashield;
    spec["enabled"] = json!(true);
    projects
        .patch(
            project,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"datashield": spec}})),
        )
        .await
        .expect("enabling DataSHIELD");
    crate::wait_for(
        &projects,
        project,
        timeout,
        "DataSHIELD ready",
        |p: Option<&Project>| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.datashield.as_ref())
                .is_some_and(|d| d.ready)
        },
    )
    .await
}

/// A DataSHIELD client spoken by hand through Trellis: Opal's protocol as the published clients
/// use it, with a personal access token.
pub struct Opal {
    pub http: reqwest::Client,
    /// `<api>/datashield/<project>/ws/datashield`.
    pub base: String,
    pub token: String,
}

impl Opal {
    pub fn new(api_url: &str, project: &str, token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("{api_url}/datashield/{project}/ws/datashield"),
            token: token.to_owned(),
        }
    }

    /// Opens a session; its id.
    pub async fn open(&self) -> String {
        let session: serde_json::Value = self
            .http
            .post(format!("{}/sessions", self.base))
            .header("X-Opal-Auth", &self.token)
            .send()
            .await
            .expect("a session")
            .json()
            .await
            .expect("a session document");
        session["id"].as_str().expect("a session id").to_owned()
    }

    /// Assigns `table` (`<project>.<name>`) to `symbol`; asserts the server agreed.
    pub async fn assign_table(&self, session: &str, symbol: &str, table: &str) {
        let assigned = self
            .http
            .put(format!(
                "{}/session/{session}/symbol/{symbol}/table/{table}",
                self.base
            ))
            .header("X-Opal-Auth", &self.token)
            .send()
            .await
            .expect("an assignment");
        assert!(assigned.status().is_success(), "{}", assigned.status());
    }

    /// One aggregate call, answered as JSON.
    pub async fn aggregate(&self, session: &str, call: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/session/{session}/aggregate", self.base))
            .header("X-Opal-Auth", &self.token)
            .header("content-type", "application/x-rscript")
            .header("accept", "application/json")
            .body(call.to_owned())
            .send()
            .await
            .expect("an aggregate")
    }
}
