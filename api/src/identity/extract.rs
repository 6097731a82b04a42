//! Who is calling, as axum extractors: [`Caller`] for the JSON API (a bearer token or a browser
//! session with its CSRF token), [`Viewer`] and [`MaybeViewer`] for pages. One reader of the
//! session cookie serves them all.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum_extra::extract::CookieJar;
use serde_json::{Value, json};

use super::session::{CSRF_HEADER, SESSION_COOKIE, Session, same_secret};
use super::workspace_token::{PodIdentity, looks_like_service_account_token};
use super::{Credential, Principal};
use crate::app::{AppState, SharedState};
use crate::audit::AuditAction;
use crate::problem::Problem;
use crate::store::StoreError;
use crate::store::audit::Outcome;

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(SESSION_COOKIE)
        .map(|cookie| cookie.value().to_owned())
}

/// The browser session named by the request's session cookie, if there is one and it is live.
pub async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, StoreError> {
    match session_cookie(headers) {
        Some(id) => state.sessions.get(&id).await,
        None => Ok(None),
    }
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
            if token.starts_with(crate::tokens::TOKEN_PREFIX) {
                return Err(Problem::unauthorized(ACCESS_TOKEN_ELSEWHERE));
            }
            return authenticate_bearer(state, token).await.map(Caller);
        }
        if let Some(id) = session_cookie(&parts.headers) {
            let session = state
                .sessions
                .get(&id)
                .await?
                .ok_or_else(|| Problem::unauthorized("the session has ended; sign in again"))?;
            if !accepted_here(&session.principal) {
                return Err(Problem::unauthorized(ACCESS_TOKEN_ELSEWHERE));
            }
            if !parts.method.is_safe() {
                let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                if !sent.is_some_and(|t| same_secret(t, &session.csrf_token)) {
                    state
                        .audit_denial(
                            &session.principal,
                            AuditAction::Csrf,
                            parts.uri.path(),
                            None,
                        )
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

const ACCESS_TOKEN_ELSEWHERE: &str = "a personal access token is accepted only by a project's \
     DataSHIELD server (/datashield/<project>/); sign in or send the identity provider's token";

/// Whether a principal may use the API's endpoints and pages: anyone but the holder of a
/// personal access token, which is good only on the DataSHIELD path.
fn accepted_here(principal: &Principal) -> bool {
    !matches!(principal.credential, Credential::AccessToken { .. })
}

/// A bearer token's principal: a workspace's service-account token (by TokenReview) or an access
/// token from the identity provider. A failure is counted and audited.
async fn authenticate_bearer(state: &AppState, token: &str) -> Result<Principal, Problem> {
    let issuer = unverified_issuer(token);
    let principal =
        if looks_like_service_account_token(issuer.as_deref(), &state.bearer.rules().issuer) {
            match state.workspace_tokens.review(&state.cluster, token).await {
                Ok(PodIdentity::Workspace {
                    project,
                    workspace,
                    owner,
                }) => Ok(Principal {
                    subject: owner,
                    name: None,
                    email: None,
                    roles: Default::default(),
                    credential: Credential::Workspace { project, workspace },
                }),
                // Named so that it can never be a member's subject (subjects have no spaces).
                Ok(PodIdentity::DataShield { project }) => Ok(Principal {
                    subject: format!("DataSHIELD server of {project}"),
                    name: None,
                    email: None,
                    roles: Default::default(),
                    credential: Credential::DataShield { project },
                }),
                Err(error) => Err((
                    AuditAction::AuthWorkspaceToken,
                    error.to_string(),
                    "workspace-token",
                )),
            }
        } else {
            match state.bearer.validate(token).await {
                Ok(claims) => state
                    .claims
                    .principal(&claims, Credential::Bearer)
                    .map_err(|e| (AuditAction::AuthBearer, e.to_string(), "claims")),
                Err(error) => Err((AuditAction::AuthBearer, error.to_string(), error.reason())),
            }
        };
    match principal {
        Ok(principal) if !accepted_here(&principal) => {
            Err(Problem::unauthorized(ACCESS_TOKEN_ELSEWHERE))
        }
        Ok(principal) => {
            // Remembered (at most hourly) so that notifications can reach them.
            state.people.touch(&principal).await;
            Ok(principal)
        }
        Err((kind, detail, reason)) => {
            state.metrics.authentication_failed(reason);
            let event = kind
                .anonymous("api")
                .with_outcome(Outcome::Failure)
                .with_detail(json!({ "reason": reason }));
            state.record(event).await;
            Err(Problem::unauthorized(detail))
        }
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

/// A signed-in browser user. Pages that need one send everyone else to sign in and come back.
pub struct Viewer {
    pub who: Principal,
    pub csrf: String,
}

/// The signed-in browser user, if any (the home page and the register work without one).
pub struct MaybeViewer(pub Option<Viewer>);

/// Why a page could not find out who is viewing it. The web edge renders it: a redirect to sign
/// in (and back to `return_to`), or the page of a database failure.
pub enum ViewerRejection {
    SignIn { return_to: String },
    Store(StoreError),
}

impl FromRequestParts<SharedState> for MaybeViewer {
    type Rejection = ViewerRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, ViewerRejection> {
        let session = session_of(state, &parts.headers)
            .await
            .map_err(ViewerRejection::Store)?;
        Ok(MaybeViewer(
            session
                .filter(|s| accepted_here(&s.principal))
                .map(|s| Viewer {
                    who: s.principal,
                    csrf: s.csrf_token,
                }),
        ))
    }
}

impl FromRequestParts<SharedState> for Viewer {
    type Rejection = ViewerRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, ViewerRejection> {
        match MaybeViewer::from_request_parts(parts, state).await?.0 {
            Some(viewer) => Ok(viewer),
            None => Err(ViewerRejection::SignIn {
                return_to: parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string(),
            }),
        }
    }
}
