//! Where a project's DataSHIELD server is and the secret it expects: its pod (by label, in the
//! project's namespace, Running and Ready) and the Secret the operator made for it. Both are
//! looked up at the apiserver and kept a little while; a failed call forgets them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams};

use crate::app::SharedState;
use crate::problem::Problem;
use crate::resources::names::{
    COMPONENT_LABEL, DATASHIELD_COMPONENT, DATASHIELD_NAME, DATASHIELD_PORT,
    DATASHIELD_PROXY_SECRET_KEY, PROJECT_LABEL, namespace_name,
};

/// Short: a restarted pod has a new address (and a failed call forgets it at once anyway).
const ADDRESS_TTL: Duration = Duration::from_secs(5);
/// The secret never changes while its Secret lives; a 401 from the server forgets it.
const SECRET_TTL: Duration = Duration::from_secs(300);
/// A GLM on a large table takes seconds; nothing should take minutes.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Upstreams {
    client: Client<HttpConnector, Body>,
    addresses: Mutex<HashMap<String, (Instant, SocketAddr)>>,
    secrets: Mutex<HashMap<String, (Instant, String)>>,
}

impl Upstreams {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            addresses: Mutex::default(),
            secrets: Mutex::default(),
        }
    }

    pub async fn send(
        &self,
        request: axum::http::Request<Body>,
    ) -> Result<axum::http::Response<hyper::body::Incoming>, String> {
        match tokio::time::timeout(CALL_TIMEOUT, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {CALL_TIMEOUT:?}")),
        }
    }

    pub fn forget(&self, project: &str) {
        lock(&self.addresses).remove(project);
        lock(&self.secrets).remove(project);
    }

    pub async fn address(&self, state: &SharedState, project: &str) -> Result<SocketAddr, Problem> {
        if let Some((at, address)) = lock(&self.addresses).get(project)
            && at.elapsed() < ADDRESS_TTL
        {
            return Ok(*address);
        }
        let pods: Api<Pod> = Api::namespaced(state.cluster.client(), &namespace_name(project));
        let selector =
            format!("{COMPONENT_LABEL}={DATASHIELD_COMPONENT},{PROJECT_LABEL}={project}");
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(Problem::from)?;
        let ip = listed
            .items
            .iter()
            .find_map(serving_address)
            .ok_or_else(|| {
                Problem::unavailable(
                    "the project's DataSHIELD server is not running: it is starting, or the \
                     project is not Active; try again in a moment",
                )
            })?;
        let address = SocketAddr::new(ip, DATASHIELD_PORT);
        lock(&self.addresses).insert(project.to_owned(), (Instant::now(), address));
        Ok(address)
    }

    pub async fn secret(&self, state: &SharedState, project: &str) -> Result<String, Problem> {
        if let Some((at, secret)) = lock(&self.secrets).get(project)
            && at.elapsed() < SECRET_TTL
        {
            return Ok(secret.clone());
        }
        let secrets: Api<Secret> =
            Api::namespaced(state.cluster.client(), &namespace_name(project));
        let secret = secrets
            .get_opt(DATASHIELD_NAME)
            .await
            .map_err(Problem::from)?
            .and_then(|s| s.data)
            .and_then(|data| data.get(DATASHIELD_PROXY_SECRET_KEY).cloned())
            .and_then(|bytes| String::from_utf8(bytes.0).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Problem::unavailable("the project's DataSHIELD server is not set up yet")
            })?;
        lock(&self.secrets).insert(project.to_owned(), (Instant::now(), secret.clone()));
        Ok(secret)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pod's address if it is serving: Running, Ready, not being deleted.
fn serving_address(pod: &Pod) -> Option<IpAddr> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if status.phase.as_deref() != Some("Running") || !ready {
        return None;
    }
    status.pod_ip.as_deref()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn pod(phase: &str, ready: &str, ip: Option<&str>) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                pod_ip: ip.map(Into::into),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn only_a_running_ready_pod_with_an_address_serves() {
        assert_eq!(
            serving_address(&pod("Running", "True", Some("10.1.2.3"))),
            Some("10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            serving_address(&pod("Running", "False", Some("10.1.2.3"))),
            None
        );
        assert_eq!(
            serving_address(&pod("Pending", "True", Some("10.1.2.3"))),
            None
        );
        assert_eq!(serving_address(&pod("Running", "True", None)), None);
        let mut leaving = pod("Running", "True", Some("10.1.2.3"));
        leaving.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(serving_address(&leaving), None);
    }
}
