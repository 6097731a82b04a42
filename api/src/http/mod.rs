//! The HTTP surface: routes, the caller extractor, strict JSON bodies, and the shared state.

pub mod airlock;
pub mod audit;
pub mod auth;
pub mod json;
pub mod me;
pub mod ops;
pub mod projects;
pub mod workspaces;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use axum_extra::extract::CookieJar;
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::identity::bearer::BearerValidator;
use crate::identity::oidc::Provider;
use crate::identity::session::{CSRF_HEADER, SESSION_COOKIE, Sessions, same_secret};
use crate::identity::workspace_token::{WorkspaceTokens, looks_like_service_account_token};
use crate::identity::{ClaimMapping, Credential, Principal};
use crate::metrics::Metrics;
use crate::policy::{self, Action, Decision, Target};
use crate::problem::Problem;
use crate::store::Store;
use crate::store::audit::{Audit, Event, Outcome};

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub audit: Audit,
    pub sessions: Sessions,
    pub cluster: Cluster,
    pub blobs: crate::airlock::storage::BlobStore,
    pub egress_policy: crate::disclosure::Policy,
    pub scanner: Option<crate::airlock::scan::Scanner>,
    pub bearer: BearerValidator,
    pub provider: Provider,
    pub workspace_tokens: WorkspaceTokens,
    pub claims: ClaimMapping,
    pub metrics: Metrics,
    pub people: crate::notify::People,
    pub notifier: crate::notify::Notifier,
}

pub type SharedState = Arc<AppState>;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Trellis API",
        description = "Projects, workspaces and (later) the airlock of a Trusted Research Environment. \
                       Errors are RFC 9457 problem details (application/problem+json).",
    ),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "identity", description = "Who the caller is"),
        (name = "projects", description = "Approved research projects"),
        (name = "workspaces", description = "Workspaces inside a project"),
        (name = "airlock", description = "Data in and results out, through independent review"),
        (name = "audit", description = "The hash-chained audit log, for admins"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from the OpenID Provider, or inside a workspace its \
                         projected service-account token (audience `trellis`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "A browser session from /auth/login; unsafe methods also need the \
                 X-CSRF-Token header from GET /api/v1/me.",
            ))),
        );
    }
}

/// The API's routes and the OpenAPI document describing them.
pub fn api_routes() -> (Router<SharedState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(me::routes())
        .merge(projects::routes())
        .merge(workspaces::routes())
        .merge(airlock::routes())
        .merge(audit::routes())
        .split_for_parts()
}

pub fn router(state: SharedState) -> Router {
    let (api, openapi) = api_routes();
    let openapi = Arc::new(openapi);
    let api = api
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(|| async { Problem::not_found("no such API endpoint") })
        .method_not_allowed_fallback(|method: Method| async move {
            Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                format!("{method} is not allowed on this endpoint"),
            )
        })
        .layer(DefaultBodyLimit::max(state.config.limits.json_body_bytes));
    Router::new()
        .merge(auth::routes())
        .merge(crate::gateway::routes())
        .merge(crate::web::routes())
        .merge(ops::routes())
        .merge(api)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::gateway::origin::separate,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Counts and times every request by route (never by raw path, which would explode the series).
async fn observe(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state.metrics.http(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The CSRF token of the browser session that authenticated a request.
#[derive(Clone)]
pub struct SessionCsrf(pub String);

/// The authenticated caller of a request. Extracting it authenticates: a request without valid
/// credentials gets a 401 (and a failed credential an audit record) before the handler runs.
pub struct Caller(pub Principal);

impl FromRequestParts<SharedState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Problem> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    Problem::unauthorized("the Authorization header must be `Bearer <token>`")
                })?;
            return state.authenticate_bearer(token).await.map(Caller);
        }
        let jar = CookieJar::from_headers(&parts.headers);
        if let Some(cookie) = jar.get(SESSION_COOKIE) {
            let session = state
                .sessions
                .get(cookie.value())
                .await?
                .ok_or_else(|| Problem::unauthorized("the session has ended; sign in again"))?;
            if !parts.method.is_safe() {
                let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                if !sent.is_some_and(|t| same_secret(t, &session.csrf_token)) {
                    state
                        .audit_denial(&session.principal, "csrf", parts.uri.path(), None)
                        .await;
                    return Err(Problem::forbidden(format!(
                        "a browser session must send its CSRF token in the {CSRF_HEADER} header"
                    )));
                }
            }
            // `GET /api/v1/me` hands the token to the browser without reading the session again.
            parts.extensions.insert(SessionCsrf(session.csrf_token));
            return Ok(Caller(session.principal));
        }
        Err(Problem::unauthorized(
            "sign in at /auth/login or send a bearer token from the identity provider",
        ))
    }
}

impl AppState {
    async fn authenticate_bearer(&self, token: &str) -> Result<Principal, Problem> {
        let issuer = unverified_issuer(token);
        let principal =
            if looks_like_service_account_token(issuer.as_deref(), &self.bearer.rules().issuer) {
                match self.workspace_tokens.review(&self.cluster, token).await {
                    Ok(identity) => Ok(Principal {
                        subject: identity.owner,
                        name: None,
                        email: None,
                        roles: Default::default(),
                        credential: Credential::Workspace {
                            project: identity.project,
                            workspace: identity.workspace,
                        },
                    }),
                    Err(error) => Err(("workspace-token", error.to_string(), "workspace-token")),
                }
            } else {
                match self.bearer.validate(token).await {
                    Ok(claims) => self
                        .claims
                        .principal(&claims, Credential::Bearer)
                        .map_err(|e| ("bearer", e.to_string(), "claims")),
                    Err(error) => Err(("bearer", error.to_string(), error.reason())),
                }
            };
        match principal {
            Ok(principal) => {
                // Remembered (at most hourly) so that notifications can reach them.
                self.people.touch(&principal).await;
                Ok(principal)
            }
            Err((kind, detail, reason)) => {
                self.metrics.authentication_failed(reason);
                let event = Event {
                    actor: "anonymous".into(),
                    roles: vec![],
                    action: format!("auth.{kind}"),
                    target: "api".into(),
                    project: None,
                    outcome: Outcome::Failure,
                    detail: json!({ "reason": reason }),
                };
                self.record(event).await;
                Err(Problem::unauthorized(detail))
            }
        }
    }

    /// Records an event that changes nothing else; a failure to record is logged, since the
    /// caller is being refused anyway.
    pub async fn record(&self, event: Event) {
        let outcome = event.outcome;
        match self.audit.record(event).await {
            Ok(_) => self.metrics.audited(outcome),
            Err(error) => tracing::error!(%error, "could not write an audit record"),
        }
    }

    pub async fn audit_denial(
        &self,
        who: &Principal,
        action: &str,
        target: &str,
        project: Option<&str>,
    ) {
        self.record(Event {
            actor: who.subject.clone(),
            roles: who.role_names(),
            action: action.to_string(),
            target: target.to_string(),
            project: project.map(String::from),
            outcome: Outcome::Denied,
            detail: json!({ "credential": who.credential }),
        })
        .await;
    }

    /// Asks the policy; a denial is audited and becomes a 403.
    pub async fn authorize(
        &self,
        who: &Principal,
        action: Action,
        target: Target<'_>,
        target_name: &str,
        project: Option<&str>,
    ) -> Result<(), Problem> {
        match policy::decide(who, action, target) {
            Decision::Allow => Ok(()),
            Decision::Deny(why) => {
                self.audit_denial(who, action.name(), target_name, project)
                    .await;
                Err(Problem::forbidden(why))
            }
        }
    }

    /// Makes a change and its audit record together: the record is written in the same
    /// database transaction that was holding the chain while the change was made, with the
    /// change's outcome. If the change fails, the failure is recorded.
    pub async fn audited<T>(
        &self,
        who: &Principal,
        action: Action,
        target: &str,
        project: Option<&str>,
        detail: Value,
        change: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, Problem> {
        let tx = self.audit.begin().await?;
        let result = change.await;
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Success, detail),
            Err(error) => (
                Outcome::Failure,
                json!({ "request": detail, "error": error.to_string() }),
            ),
        };
        let event = Event {
            actor: who.subject.clone(),
            roles: who.role_names(),
            action: action.name().to_string(),
            target: target.to_string(),
            project: project.map(String::from),
            outcome,
            detail,
        };
        match tx.commit(event).await {
            Ok(_) => self.metrics.audited(outcome),
            Err(error) => {
                // The change may have happened without its record. Say so loudly; the caller
                // gets an error and the operator's logs name the change.
                tracing::error!(%error, action = action.name(), target, "audit record lost for a change");
                return Err(error.into());
            }
        }
        result.map_err(Problem::from)
    }
}

/// The `iss` claim of a JWT, read without verifying it: only to choose which verifier to use.
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(String::from)
}

/// A handler's result: a JSON value or a problem.
pub type ApiResult<T> = Result<T, Problem>;

/// `201 Created` with a body.
pub fn created<T: serde::Serialize>(body: T) -> Response {
    (axum::http::StatusCode::CREATED, Json(body)).into_response()
}
