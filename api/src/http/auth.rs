//! Browser sign-in and sign-out (the pages themselves are in `crate::web`).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;
use serde_json::json;

use crate::app::SharedState;
use crate::audit::AuditAction;
use crate::identity::Credential;
use crate::identity::session::{LOGIN_COOKIE, SESSION_COOKIE, safe_return_path, same_secret};
use crate::problem::Problem;
use crate::store::audit::Outcome;
use crate::web::sign_in::SignInFailure;

pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
}

fn cookie(
    state: &SharedState,
    name: &'static str,
    value: String,
    path: &'static str,
    max_age: std::time::Duration,
) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .secure(state.config.session.secure_cookie)
        .same_site(SameSite::Lax)
        .path(path)
        .max_age(cookie::time::Duration::seconds(max_age.as_secs() as i64))
        .build()
}

fn removal(name: &'static str, path: &'static str) -> Cookie<'static> {
    Cookie::build((name, ""))
        .path(path)
        .max_age(cookie::time::Duration::ZERO)
        .build()
}

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

/// Starts the authorization-code flow: remembers PKCE verifier and nonce under the state, binds
/// the state to this browser with a cookie, and sends the browser to the provider.
async fn login(
    State(state): State<SharedState>,
    Query(query): Query<LoginQuery>,
    jar: CookieJar,
) -> Result<Response, Problem> {
    let (url, csrf_state, attempt) = state
        .provider
        .start(safe_return_path(query.return_to.as_deref()));
    state.sessions.start_login(&csrf_state, &attempt).await?;
    let jar = jar.add(cookie(
        &state,
        LOGIN_COOKIE,
        csrf_state,
        "/auth",
        std::time::Duration::from_secs(600),
    ));
    Ok((jar, Redirect::to(url.as_str())).into_response())
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A person's browser asks for pages; a program asks for JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

async fn callback(
    State(state): State<SharedState>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Response {
    let provider_error = query.error.clone();
    let provider_description = query.error_description.clone();
    match finish_sign_in(&state, query, &jar).await {
        Ok((session_id, return_to)) => {
            let jar = jar.remove(removal(LOGIN_COOKIE, "/auth")).add(cookie(
                &state,
                SESSION_COOKIE,
                session_id,
                "/",
                state.sessions.ttl(),
            ));
            (jar, Redirect::to(&return_to)).into_response()
        }
        Err((reason, problem)) => {
            state.metrics.authentication_failed(reason);
            state
                .record(
                    AuditAction::AuthLogin
                        .anonymous("session")
                        .with_outcome(Outcome::Failure)
                        .with_detail(json!({ "reason": reason, "detail": problem.detail })),
                )
                .await;
            let jar = jar.remove(removal(LOGIN_COOKIE, "/auth"));
            if !wants_html(&headers) {
                return (jar, problem).into_response();
            }
            let redirect_uri = state
                .config
                .public_url
                .join("auth/callback")
                .map(String::from)
                .unwrap_or_default();
            let page = crate::web::sign_in::failure_page(&SignInFailure {
                reason,
                problem: &problem,
                provider_error: provider_error.as_deref(),
                provider_description: provider_description.as_deref(),
                issuer: state.provider.issuer(),
                client_id: state.provider.client_id(),
                redirect_uri: &redirect_uri,
                scopes: state.provider.scopes(),
            });
            (jar, page).into_response()
        }
    }
}

type Failure = (&'static str, Problem);

async fn finish_sign_in(
    state: &SharedState,
    query: CallbackQuery,
    jar: &CookieJar,
) -> Result<(String, String), Failure> {
    if let Some(error) = query.error {
        let description = query.error_description.unwrap_or_default();
        return Err((
            "provider-error",
            Problem::unauthorized(format!(
                "the identity provider refused the sign-in: {error} {description}"
            )),
        ));
    }
    let (Some(code), Some(returned_state)) = (query.code, query.state) else {
        return Err((
            "bad-callback",
            Problem::bad_request("the sign-in callback needs `code` and `state`"),
        ));
    };
    // The state must be the one this browser was given (login CSRF), and must be unused.
    let bound = jar
        .get(LOGIN_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if !same_secret(&bound, &returned_state) {
        return Err((
            "state-mismatch",
            Problem::bad_request(
                "this sign-in was not started in this browser; start again at /auth/login",
            ),
        ));
    }
    let attempt = state
        .sessions
        .finish_login(&returned_state)
        .await
        .map_err(|e| ("database", Problem::from(e)))?
        .ok_or((
            "state-unknown",
            Problem::bad_request(
                "this sign-in expired or was already used; start again at /auth/login",
            ),
        ))?;
    let claims = state
        .provider
        .finish(code, &attempt)
        .await
        .map_err(|e| ("code-exchange", Problem::unauthorized(e.to_string())))?;
    let principal = state
        .claims
        .principal(&claims, Credential::Session)
        .map_err(|e| ("claims", Problem::unauthorized(e.to_string())))?;
    let mut tx = state
        .audit
        .begin()
        .await
        .map_err(|e| ("database", Problem::from(e)))?;
    let (session_id, _csrf) = state
        .sessions
        .create(tx.conn(), &principal)
        .await
        .map_err(|e| ("database", Problem::from(e)))?;
    state
        .people
        .seen(tx.conn(), &principal)
        .await
        .map_err(|e| ("database", Problem::from(e)))?;
    tx.commit(
        AuditAction::AuthLogin
            .by(&principal, "session")
            .with_detail(json!({ "name": principal.name, "email": principal.email })),
    )
    .await
    .map_err(|e| ("database", Problem::from(e)))?;
    state.metrics.audited(Outcome::Success);
    Ok((session_id, attempt.return_to))
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

/// Ends the session. A form post, so it needs the session's CSRF token.
async fn logout(
    State(state): State<SharedState>,
    jar: CookieJar,
    Form(form): Form<LogoutForm>,
) -> Result<Response, Problem> {
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Ok(Redirect::to("/").into_response());
    };
    let session_id = cookie.value().to_string();
    let Some(session) = state.sessions.get(&session_id).await? else {
        return Ok((jar.remove(removal(SESSION_COOKIE, "/")), Redirect::to("/")).into_response());
    };
    if !same_secret(&form.csrf, &session.csrf_token) {
        state
            .audit_denial(&session.principal, AuditAction::AuthLogout, "session", None)
            .await;
        return Err(Problem::forbidden(
            "the sign-out form's CSRF token does not match the session",
        ));
    }
    let mut tx = state.audit.begin().await?;
    state.sessions.delete(tx.conn(), &session_id).await?;
    tx.commit(
        AuditAction::AuthLogout
            .by(&session.principal, "session")
            .with_detail(json!({})),
    )
    .await?;
    state.metrics.audited(Outcome::Success);
    Ok((jar.remove(removal(SESSION_COOKIE, "/")), Redirect::to("/")).into_response())
}
