//! A project's DataSHIELD server, reached only through Trellis: `/datashield/<project>/` is the
//! address a DataSHIELD client logs in to (the published clients append Opal's `/ws/…` paths).
//! Each call is authenticated with a personal access token, decided by the policy on the project
//! as the watch cache has it, forwarded to the project's server with the project's proxy secret
//! and the caller's subject, and recorded in the audit log with its call text and outcome.
//!
//! Bodies are buffered both ways: calls are short texts (the server caps them at 64 KiB) and
//! answers are aggregates, small by design; the audit record needs both whole.

pub mod calls;
mod upstream;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::app::SharedState;
use crate::audit::AuditAction;
use crate::identity::Principal;
use crate::problem::Problem;
use crate::resources::names::{DATASHIELD_PROXY_SECRET_HEADER, DATASHIELD_USER_HEADER};
use crate::store::audit::{Event, Outcome};
use crate::tokens::TokenRefusal;
use calls::{Call, Finished};
use upstream::Upstreams;

/// The largest call forwarded; the server refuses more anyway.
const LARGEST_CALL: usize = 64 * 1024;
/// The largest answer relayed: aggregates are small; anything bigger is not an aggregate.
const LARGEST_ANSWER: usize = 16 * 1024 * 1024;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/datashield/{project}/{*rest}", any(forward))
        .layer(Extension(Arc::new(Upstreams::new())))
}

/// Who called, once the token is accepted.
struct Caller {
    principal: Principal,
}

async fn forward(
    State(state): State<SharedState>,
    Extension(upstreams): Extension<Arc<Upstreams>>,
    Path((project, rest)): Path<(String, String)>,
    request: Request,
) -> Response {
    match relay(&state, &upstreams, &project, &rest, request).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn relay(
    state: &SharedState,
    upstreams: &Upstreams,
    project: &str,
    rest: &str,
    request: Request,
) -> Result<Response, Problem> {
    if !rest.starts_with("ws/") {
        return Err(Problem::not_found(format!(
            "DataSHIELD clients use /datashield/{project}/ as the server address; the protocol \
             lives under /datashield/{project}/ws/"
        )));
    }
    // Forwarded as the client wrote it (still percent-encoded), so that nothing decoded here
    // can become a query or another path at the server.
    let path = calls::protocol_path(request.uri().path())
        .ok_or_else(|| Problem::bad_request("the path has `.` or `..` segments"))?
        .to_owned();
    let caller = authenticate(state, project, request.headers()).await?;
    let offered = state
        .cluster
        .project(project)
        .map(|p| crate::policy::datashield_offered(&p));
    if let Some(crate::policy::Decision::Deny(why)) = offered {
        return Err(Problem::not_found(why));
    }
    let (parts, body) = request.into_parts();
    let call_text = match axum::body::to_bytes(body, LARGEST_CALL).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("a DataSHIELD call is at most {LARGEST_CALL} bytes"),
            ));
        }
    };
    let address = upstreams.address(state, project).await?;
    let secret = upstreams.secret(state, project).await?;

    let query = parts.uri.query();
    let target = match query {
        Some(q) => format!("http://{address}/ws{path}?{q}"),
        None => format!("http://{address}/ws{path}"),
    };
    let mut outgoing = axum::http::Request::new(Body::from(call_text.clone()));
    *outgoing.method_mut() = parts.method.clone();
    *outgoing.uri_mut() = target
        .parse()
        .map_err(|_| Problem::bad_request("the request target cannot be forwarded"))?;
    *outgoing.headers_mut() = forwarded_headers(&parts.headers, &secret, &caller.principal)?;

    let answer = match upstreams.send(outgoing).await {
        Ok(answer) => answer,
        Err(error) => {
            upstreams.forget(project);
            tracing::warn!(%error, project, "DataSHIELD server unreachable");
            return Err(Problem::new(
                StatusCode::BAD_GATEWAY,
                "bad-gateway",
                "the project's DataSHIELD server did not answer; try again in a moment",
            ));
        }
    };
    let (answer_parts, answer_body) = answer.into_parts();
    let bytes = collect(answer_body).await?;
    if answer_parts.status == StatusCode::UNAUTHORIZED {
        // The server no longer knows our secret (a new Secret): look it up afresh next time.
        upstreams.forget(project);
    }

    let call = calls::classify(&parts.method, &path);
    record(
        state,
        &caller,
        project,
        &call,
        &Exchange {
            query,
            call_text: &call_text,
            status: answer_parts.status,
            answer: &bytes,
        },
    )
    .await;

    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = answer_parts.status;
    for name in [header::CONTENT_TYPE, header::CONTENT_DISPOSITION] {
        if let Some(value) = answer_parts.headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    if let Some(location) = answer_parts
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        && let Ok(value) = HeaderValue::from_str(&calls::through_proxy(location, project))
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(version) = answer_parts.headers.get("x-opal-version") {
        response
            .headers_mut()
            .insert("x-opal-version", version.clone());
    }
    Ok(response)
}

async fn collect(body: hyper::body::Incoming) -> Result<Bytes, Problem> {
    let limited = http_body_util::Limited::new(body, LARGEST_ANSWER);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            tracing::warn!(%error, "DataSHIELD answer not relayed");
            Err(Problem::new(
                StatusCode::BAD_GATEWAY,
                "bad-gateway",
                "the project's DataSHIELD server's answer was cut short or too large to be an \
                 aggregate",
            ))
        }
    }
}

/// Only what the protocol needs goes on: never the caller's token, cookies or forwarding
/// headers; the server learns who calls from the API alone.
fn forwarded_headers(
    incoming: &HeaderMap,
    secret: &str,
    caller: &Principal,
) -> Result<HeaderMap, Problem> {
    let mut headers = HeaderMap::new();
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(value) = incoming.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    let secret = HeaderValue::from_str(secret)
        .map_err(|_| Problem::unavailable("the project's DataSHIELD secret is malformed"))?;
    let user = HeaderValue::from_str(&caller.subject)
        .map_err(|_| Problem::forbidden("your subject cannot be passed on"))?;
    headers.insert(DATASHIELD_PROXY_SECRET_HEADER, secret);
    headers.insert(DATASHIELD_USER_HEADER, user);
    Ok(headers)
}

/// The caller, from the token the client presents; a refusal is audited.
async fn authenticate(
    state: &SharedState,
    project: &str,
    headers: &HeaderMap,
) -> Result<Caller, Problem> {
    let refuse = |reason: String, problem: Problem| async move {
        state
            .record(
                AuditAction::DataShieldRefused
                    .anonymous(format!("datashield/{project}"))
                    .in_project(Some(project))
                    .with_outcome(Outcome::Denied)
                    .with_detail(json!({ "reason": reason })),
            )
            .await;
        problem
    };
    let Some(token) = calls::presented_token(headers) else {
        let reason = "no access token".to_string();
        return Err(refuse(
            reason,
            Problem::unauthorized(
                "send a Trellis access token (X-Opal-Auth, or as the password of HTTP Basic); \
                 create one on the Tokens page",
            ),
        )
        .await);
    };
    match crate::tokens::authenticate_for_datashield(state, &token, project).await {
        Ok(principal) => Ok(Caller { principal }),
        Err(refusal) => {
            let problem = refusal_problem(&refusal);
            Err(refuse(refusal.to_string(), problem).await)
        }
    }
}

/// 401 for a token that is no good at all, 403 for one that is good but not here or no longer
/// permitted, 503 when it could not be checked.
fn refusal_problem(refusal: &TokenRefusal) -> Problem {
    let detail = refusal.to_string();
    match refusal {
        TokenRefusal::Unknown | TokenRefusal::Revoked | TokenRefusal::Expired(_) => {
            Problem::unauthorized(detail)
        }
        TokenRefusal::NotForProject(_) | TokenRefusal::NotPermitted(_) => {
            Problem::forbidden(detail)
        }
        TokenRefusal::ProjectUnknown(_) => Problem::not_found(detail),
        TokenRefusal::Unavailable => Problem::unavailable(detail),
    }
}

/// A forwarded call and the server's answer.
struct Exchange<'a> {
    query: Option<&'a str>,
    call_text: &'a [u8],
    status: StatusCode,
    answer: &'a [u8],
}

impl Exchange<'_> {
    fn outcome(&self) -> (Outcome, Value) {
        if self.status.is_success() {
            (Outcome::Success, json!("returned"))
        } else {
            (
                Outcome::Failure,
                json!(format!("refused: {}", calls::refusal(self.answer))),
            )
        }
    }
}

/// The audit record of a call, if it is one the log keeps.
async fn record(
    state: &SharedState,
    caller: &Caller,
    project: &str,
    call: &Call<'_>,
    exchange: &Exchange<'_>,
) {
    if let Some(event) = event(caller, project, call, exchange) {
        state.record(event).await;
    }
}

fn event(
    caller: &Caller,
    project: &str,
    call: &Call<'_>,
    exchange: &Exchange<'_>,
) -> Option<Event> {
    let (outcome, said) = exchange.outcome();
    let text = || calls::kept(&String::from_utf8_lossy(exchange.call_text));
    let asynchronous = calls::asynchronous(exchange.query);
    // An asynchronous call accepted is only submitted: its outcome is recorded when the client
    // learns it (`datashield.result`).
    let said = if asynchronous && exchange.status.is_success() {
        json!(format!(
            "submitted as command {}",
            String::from_utf8_lossy(exchange.answer).trim()
        ))
    } else {
        said
    };
    let (action, detail) = match call {
        Call::OpenSession => {
            let session: Value = serde_json::from_slice(exchange.answer).unwrap_or(Value::Null);
            (
                AuditAction::DataShieldSessionOpen,
                json!({ "session": session["id"], "outcome": said }),
            )
        }
        Call::CloseSession { session } => (
            AuditAction::DataShieldSessionClose,
            json!({ "session": session, "outcome": said }),
        ),
        Call::AssignTable {
            session,
            symbol,
            table,
        } => (
            AuditAction::DataShieldAssign,
            json!({ "session": session, "symbol": symbol, "table": table, "outcome": said }),
        ),
        Call::AssignExpression { session, symbol } => (
            AuditAction::DataShieldAssign,
            json!({ "session": session, "symbol": symbol, "call": text(), "outcome": said }),
        ),
        Call::Aggregate { session } => (
            AuditAction::DataShieldAggregate,
            json!({ "session": session, "call": text(), "outcome": said }),
        ),
        Call::CommandStatus { session, command } => {
            // Polls are not recorded; a status that says the call failed is (the client may
            // never ask for the result then).
            let dto: Value = serde_json::from_slice(exchange.answer).ok()?;
            let Some(Finished::Failed(why)) = calls::finished(&dto) else {
                return None;
            };
            return Some(
                AuditAction::DataShieldResult
                    .by(&caller.principal, format!("datashield/{project}"))
                    .in_project(Some(project))
                    .with_outcome(Outcome::Failure)
                    .with_detail(json!({
                        "session": session, "command": command,
                        "outcome": format!("refused: {why}"),
                    })),
            );
        }
        Call::CommandResult { session, command } => (
            AuditAction::DataShieldResult,
            json!({ "session": session, "command": command, "outcome": said }),
        ),
        Call::Other => return None,
    };
    Some(
        action
            .by(&caller.principal, format!("datashield/{project}"))
            .in_project(Some(project))
            .with_outcome(outcome)
            .with_detail(detail),
    )
}
