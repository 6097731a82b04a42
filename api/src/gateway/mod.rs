//! The workspace gateway: `/w/<project>/<workspace>/…` reverse-proxies HTTP and WebSocket
//! traffic to the workspace's pod, for its owner only, refusing the template's blocked paths and
//! recording activity for idle shutdown.
//!
//! The browser's session cookie authenticates; [`crate::policy::gateway`] decides. Bodies are
//! streamed both ways (never buffered: uploads to a notebook server can be large), and an
//! upgraded connection (a kernel's WebSocket) is joined end to end once the workspace agrees
//! to switch protocols.

pub mod activity;
pub mod headers;
pub mod origin;
pub mod rules;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;
use axum::{Extension, Router};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::json;

use crate::app::SharedState;
use crate::audit::AuditAction;
use crate::config::GatewayConfig;
use crate::identity::Principal;
use crate::identity::extract::session_of;
use crate::identity::session::safe_return_path;
use crate::policy::{self, Decision};
use crate::problem::Problem;
use crate::resources::names::{
    LAST_ACTIVITY_ANNOTATION, PROJECT_LABEL, WORKSPACE_LABEL, namespace_name,
};
use crate::resources::{Workspace, WorkspacePhase};
use crate::store::audit::Outcome;

/// How long a pod's address is reused before it is looked up again. Short: a restarted pod
/// gets a new address, and a failed connection forgets the old one at once anyway.
const POD_ADDRESS_TTL: Duration = Duration::from_secs(5);

/// The gateway's routes. They sit outside the JSON API's body limit: uploads to a workspace are
/// streamed through whatever their size.
pub fn routes() -> Router<SharedState> {
    let gateway: Arc<OnceLock<Gateway>> = Arc::new(OnceLock::new());
    Router::new()
        .route(origin::REDEEM_PATH, axum::routing::get(origin::redeem))
        .route(origin::ISSUE_PATH, axum::routing::get(origin::issue))
        .route("/w/{project}/{workspace}", any(add_slash))
        .route("/w/{project}/{workspace}/", any(proxy_root))
        .route("/w/{project}/{workspace}/{*rest}", any(proxy_path))
        .layer(Extension(gateway))
}

/// What the gateway keeps between requests: the connection pool to workspaces, where their
/// pods are, and when their activity was last written.
struct Gateway {
    client: Client<HttpConnector, Body>,
    pods: Mutex<HashMap<(String, String), (Instant, SocketAddr)>>,
    activity: Arc<activity::Limiter>,
}

impl Gateway {
    fn new(config: &GatewayConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            pods: Mutex::new(HashMap::new()),
            activity: Arc::default(),
        }
    }

    fn cached_address(&self, key: &(String, String)) -> Option<SocketAddr> {
        let pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.get(key)
            .filter(|(at, _)| at.elapsed() < POD_ADDRESS_TTL)
            .map(|(_, address)| *address)
    }

    fn forget_address(&self, key: &(String, String)) {
        let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.remove(key);
    }

    /// The workspace pod's address and the template's port. The operator runs a workspace as a
    /// one-replica StatefulSet named after it, so its pod is `<workspace>-0`; the labels are
    /// checked so that a pod of that name that is not the workspace's is never used.
    async fn address(
        &self,
        state: &SharedState,
        project: &str,
        workspace: &str,
        port: u16,
    ) -> Result<SocketAddr, Problem> {
        let namespace = namespace_name(project);
        let key = (namespace.clone(), workspace.to_string());
        if let Some(address) = self.cached_address(&key) {
            return Ok(address);
        }
        let pods: Api<Pod> = Api::namespaced(state.cluster.client(), &namespace);
        let pod = pods
            .get_opt(&format!("{workspace}-0"))
            .await
            .map_err(Problem::from)?;
        let address = pod
            .as_ref()
            .and_then(|pod| pod_address(pod, project, workspace))
            .ok_or_else(|| {
                Problem::unavailable(
                    "the workspace's pod is not running yet; try again in a moment",
                )
            })?;
        let address = SocketAddr::new(address, port);
        let mut pods = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        pods.insert(key, (Instant::now(), address));
        Ok(address)
    }

    /// Writes the workspace's activity if it is due, in the background: the request does not
    /// wait for the apiserver.
    fn record_activity(&self, state: &SharedState, project: &str, workspace: &Workspace) {
        let name = workspace.metadata.name.clone().unwrap_or_default();
        let key = (namespace_name(project), name.clone());
        let now = chrono::Utc::now();
        let on_object = workspace
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LAST_ACTIVITY_ANNOTATION))
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
            .map(|at| at.with_timezone(&chrono::Utc));
        let interval = state.config.gateway.activity_interval;
        if !self.activity.claim(key.clone(), now, on_object, interval) {
            return;
        }
        let state = state.clone();
        let project = project.to_string();
        let limiter = self.activity.clone();
        tokio::spawn(async move {
            let result = state.cluster.record_activity(&project, &name, now).await;
            state.metrics.gateway_activity(result.is_ok());
            if let Err(error) = result {
                tracing::warn!(%error, project, workspace = name, "could not record workspace activity");
                limiter.release(&key, now);
            }
        });
    }
}

/// The pod's address if it is the workspace's pod and running.
fn pod_address(pod: &Pod, project: &str, workspace: &str) -> Option<IpAddr> {
    let labels = pod.metadata.labels.as_ref()?;
    if labels.get(WORKSPACE_LABEL).map(String::as_str) != Some(workspace)
        || labels.get(PROJECT_LABEL).map(String::as_str) != Some(project)
        || pod.metadata.deletion_timestamp.is_some()
    {
        return None;
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    status.pod_ip.as_deref()?.parse().ok()
}

/// `/w/<p>/<w>` → `/w/<p>/<w>/`: the workspace's program serves under the trailing-slash path.
async fn add_slash(uri: Uri) -> Redirect {
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Redirect::temporary(&format!("{}/{query}", uri.path()))
}

async fn proxy_root(
    State(state): State<SharedState>,
    Extension(gateway): Extension<Arc<OnceLock<Gateway>>>,
    Path((project, workspace)): Path<(String, String)>,
    request: Request,
) -> Response {
    let gateway = gateway.get_or_init(|| Gateway::new(&state.config.gateway));
    respond(&state, gateway, &project, &workspace, request).await
}

async fn proxy_path(
    State(state): State<SharedState>,
    Extension(gateway): Extension<Arc<OnceLock<Gateway>>>,
    Path((project, workspace, _rest)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    let gateway = gateway.get_or_init(|| Gateway::new(&state.config.gateway));
    respond(&state, gateway, &project, &workspace, request).await
}

/// How a gateway request ended, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Proxied,
    Upgraded,
    SignIn,
    Denied,
    Blocked,
    BadPath,
    NotFound,
    Unavailable,
    BadGateway,
}

async fn respond(
    state: &SharedState,
    gateway: &Gateway,
    project: &str,
    workspace: &str,
    request: Request,
) -> Response {
    // A person opening a workspace gets a page; a program gets problem+json.
    let browser = request
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let (outcome, response) = match handle(state, gateway, project, workspace, request).await {
        Ok(done) => done,
        Err((outcome, problem)) if browser => {
            // A workspace that is starting answers soon: the page tries again by itself.
            let retry = matches!(outcome, Ending::Unavailable | Ending::BadGateway);
            (
                outcome,
                crate::web::problem_page(problem, retry, &state.config.public_url),
            )
        }
        Err((outcome, problem)) => (outcome, problem.into_response()),
    };
    state.metrics.gateway_request(outcome.name());
    response
}

impl Ending {
    fn name(self) -> &'static str {
        match self {
            Ending::Proxied => "proxied",
            Ending::Upgraded => "upgraded",
            Ending::SignIn => "sign-in",
            Ending::Denied => "denied",
            Ending::Blocked => "blocked",
            Ending::BadPath => "bad-path",
            Ending::NotFound => "not-found",
            Ending::Unavailable => "unavailable",
            Ending::BadGateway => "bad-gateway",
        }
    }
}

type Refusal = (Ending, Problem);

/// The signed-in person, from the session cookie alone: a workspace is opened by a browser.
async fn signed_in(
    state: &SharedState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Principal>, Problem> {
    if state.config.gateway.public_url.is_some() {
        return Ok(origin::signed_in(state, headers).await?);
    }
    Ok(session_of(state, headers)
        .await?
        .map(|session| session.principal))
}

/// Back to this very path once signed in.
fn sign_in(uri: &Uri) -> Response {
    let wanted = uri.path_and_query().map_or("/", |p| p.as_str());
    let back = safe_return_path(Some(wanted));
    let encoded: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    Redirect::to(&format!("/auth/login?return_to={encoded}")).into_response()
}

async fn handle(
    state: &SharedState,
    gateway: &Gateway,
    project_name: &str,
    workspace_name: &str,
    mut request: Request,
) -> Result<(Ending, Response), Refusal> {
    let unavailable = |problem: Problem| (Ending::Unavailable, problem);
    // The request's body is not `Sync`: only its headers are held across awaits.
    let Some(who) = signed_in(state, request.headers())
        .await
        .map_err(unavailable)?
    else {
        let to = if state.config.gateway.public_url.is_some() {
            Redirect::to(&origin::sign_in_url(state, request.uri())).into_response()
        } else {
            sign_in(request.uri())
        };
        return Ok((Ending::SignIn, to));
    };
    let target = format!("workspace/{project_name}/{workspace_name}");
    let not_found = || {
        (
            Ending::NotFound,
            Problem::not_found(format!(
                "there is no workspace `{workspace_name}` in project `{project_name}`"
            )),
        )
    };
    let project = state.cluster.project(project_name).ok_or_else(not_found)?;
    let workspace = state
        .cluster
        .workspace(project_name, workspace_name)
        .ok_or_else(not_found)?;
    if let Decision::Deny(why) = policy::gateway(&who, &project, &workspace) {
        state
            .audit_denial(
                &who,
                AuditAction::WorkspaceGateway,
                &target,
                Some(project_name),
            )
            .await;
        return Err((Ending::Denied, Problem::forbidden(why)));
    }

    let template = match state.cluster.template(&workspace.spec.template) {
        Ok(Some(template)) => template,
        Ok(None) => {
            return Err(unavailable(Problem::unavailable(format!(
                "the workspace's template `{}` no longer exists",
                workspace.spec.template
            ))));
        }
        Err(error) => return Err(unavailable(Problem::unavailable(error.to_string()))),
    };
    let base = format!("/w/{project_name}/{workspace_name}");
    let path = request.uri().path().to_string();
    let blocked = template
        .spec
        .gateway
        .blocked_paths
        .iter()
        .map(|p| p.0.as_str());
    match rules::decide(&path, &base, blocked) {
        Ok(rules::Verdict::Forward(_)) => {}
        Ok(rules::Verdict::Blocked {
            path: within,
            prefix,
        }) => {
            state
                .record(
                    AuditAction::WorkspaceGatewayBlocked
                        .by(&who, target.clone())
                        .in_project(Some(project_name))
                        .with_outcome(Outcome::Denied)
                        .with_detail(
                            json!({ "path": path, "normalised": within, "blocked": prefix }),
                        ),
                )
                .await;
            return Err((
                Ending::Blocked,
                Problem::forbidden(format!(
                    "`{within}` is under `{prefix}`, which the workspace's template blocks at \
                     the gateway: files leave a workspace only through an airlock egress request"
                )),
            ));
        }
        Err(error) => {
            return Err((
                Ending::BadPath,
                Problem::bad_request(format!("{error}: {path}")),
            ));
        }
    }

    let phase = workspace.status.as_ref().and_then(|s| s.phase);
    if phase != Some(WorkspacePhase::Running) {
        let shown = phase.map_or("not yet started", |p| p.as_str());
        return Err(unavailable(Problem::unavailable(format!(
            "the workspace is {shown}; it opens once it is Running"
        ))));
    }
    let address = gateway
        .address(state, project_name, workspace_name, template.spec.port)
        .await
        .map_err(unavailable)?;
    gateway.record_activity(state, project_name, &workspace);

    let client_upgrade = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let (parts, body) = request.into_parts();
    let mut incoming = parts.headers;
    // HTTP/2 carries the host in the URI; the workspace compares `Host` with `Origin`.
    if !incoming.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        incoming.insert(header::HOST, host);
    }
    let forwarded = headers::Forwarded {
        client: peer,
        proto: state.config.public_url.scheme(),
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = format!("http://{address}{path_and_query}")
        .parse()
        .map_err(|_| {
            (
                Ending::BadPath,
                Problem::bad_request("the request target cannot be forwarded"),
            )
        })?;
    let mut outgoing = axum::http::Request::new(body);
    *outgoing.method_mut() = parts.method;
    *outgoing.uri_mut() = uri;
    *outgoing.version_mut() = Version::HTTP_11;
    *outgoing.headers_mut() = headers::request_headers(&incoming, &forwarded);

    let mut response = match gateway.client.request(outgoing).await {
        Ok(response) => response,
        Err(error) => {
            gateway.forget_address(&(namespace_name(project_name), workspace_name.to_string()));
            tracing::warn!(%error, project = project_name, workspace = workspace_name, %address, "workspace unreachable");
            return Err((
                Ending::BadGateway,
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "bad-gateway",
                    "the workspace did not answer; if it has just started, try again in a moment",
                ),
            ));
        }
    };

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_side) = client_upgrade else {
            return Err((
                Ending::BadGateway,
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "bad-gateway",
                    "the workspace switched protocols on a connection that cannot be upgraded",
                ),
            ));
        };
        let backend_side = hyper::upgrade::on(&mut response);
        let project = project_name.to_string();
        let name = workspace_name.to_string();
        tokio::spawn(async move {
            match tokio::try_join!(client_side, backend_side) {
                Ok((client, backend)) => {
                    let mut client = TokioIo::new(client);
                    let mut backend = TokioIo::new(backend);
                    if let Err(error) =
                        tokio::io::copy_bidirectional(&mut client, &mut backend).await
                    {
                        tracing::debug!(%error, project, workspace = name, "upgraded connection ended");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, project, workspace = name, "upgrade failed");
                }
            }
        });
        let mut switched = Response::new(Body::empty());
        *switched.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *switched.headers_mut() = headers::response_headers(response.headers(), true);
        return Ok((Ending::Upgraded, switched));
    }

    let (mut back, body) = response.into_parts();
    back.headers = headers::response_headers(&back.headers, false);
    back.version = Version::default();
    Ok((Ending::Proxied, Response::from_parts(back, Body::new(body))))
}
