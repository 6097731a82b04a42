//! What the DataSHIELD tests share: data brought in through the airlock, and the project's
//! server pod once the runtime stand-in has it listening.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use reqwest::Method;
use serde_json::json;
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
