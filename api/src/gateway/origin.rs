//! Workspaces on an origin of their own (`gateway.public_url`).
//!
//! On Trellis's origin, a browser's session can call the API; anything a workspace shows in that
//! browser (a notebook's HTML output, say) would run with it. With a separate workspace origin,
//! Trellis's session cookie is never sent to workspace pages and their scripts cannot call the API
//! (cross-origin, no CORS). Signing in there is a hop: the workspace origin sends the browser to
//! `/auth/workspace` on Trellis's origin, which (signed in) issues a one-time ticket and sends it
//! back to `/w/_auth` on the workspace origin, which trades it for a gateway session cookie that
//! opens workspaces and nothing else, for as long as the Trellis session it came from lives.

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;
use url::Url;

use crate::app::SharedState;
use crate::audit::AuditAction;
use crate::identity::Principal;
use crate::identity::session::{SESSION_COOKIE, digest, random_token, safe_return_path};
use crate::problem::Problem;
use crate::store::audit::Outcome;
use crate::store::{StoreError, timestamp};

/// The gateway session's cookie on the workspace origin.
pub const GATEWAY_COOKIE: &str = "trellis_workspace";
/// Where the workspace origin redeems a ticket (`_` is never in a project name).
pub const REDEEM_PATH: &str = "/w/_auth";
/// Where Trellis's origin issues a ticket.
pub const ISSUE_PATH: &str = "/auth/workspace";
/// How long a ticket may wait to be redeemed: one redirect.
const TICKET_TTL: chrono::Duration = chrono::Duration::seconds(60);

/// Which origin a request is for, and what may be served there.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Trellis's own origin (or no workspace origin configured): everything but workspaces.
    Main,
    /// Trellis's origin asked for a workspace: it lives on the workspace origin.
    ToWorkspaceOrigin(String),
    /// The workspace origin, for a workspace path (or the ticket redemption).
    Workspace,
    /// The workspace origin serves nothing but workspaces.
    NotHere,
}

/// Decides by the `Host` the browser sent. Pure, for the tests.
pub fn route(origin: Option<&Url>, host: Option<&str>, uri: &Uri) -> Route {
    let Some(origin) = origin else {
        return Route::Main;
    };
    let path = uri.path();
    let workspace_path = path.starts_with("/w/");
    if host.is_some_and(|host| same_authority(origin, host)) {
        // The style sheet is for the gateway's own pages (a workspace that is starting).
        if workspace_path || path == "/static/trellis.css" {
            Route::Workspace
        } else {
            Route::NotHere
        }
    } else if workspace_path {
        let target = uri.path_and_query().map_or(path, |p| p.as_str());
        Route::ToWorkspaceOrigin(format!(
            "{}{}",
            origin.as_str().trim_end_matches('/'),
            target
        ))
    } else {
        Route::Main
    }
}

fn same_authority(origin: &Url, host: &str) -> bool {
    let (Some(origin_host), Ok(authority)) = (
        origin.host_str(),
        host.parse::<axum::http::uri::Authority>(),
    ) else {
        return false;
    };
    authority.host().eq_ignore_ascii_case(origin_host)
        && authority
            .port_u16()
            .or_else(|| default_port(origin.scheme()))
            == origin.port_or_known_default()
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// Keeps each origin to its own: workspaces only on the workspace origin, nothing else there.
pub async fn separate(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match route(
        state.config.gateway.public_url.as_ref(),
        host.as_deref(),
        request.uri(),
    ) {
        Route::Main | Route::Workspace => next.run(request).await,
        Route::ToWorkspaceOrigin(target) => Redirect::temporary(&target).into_response(),
        Route::NotHere => Problem::not_found(
            "this origin serves workspaces only (/w/<project>/<workspace>/); Trellis is elsewhere",
        )
        .into_response(),
    }
}

/// The person a gateway session cookie names, if it is live.
pub async fn signed_in(
    state: &SharedState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, StoreError> {
    let jar = CookieJar::from_headers(headers);
    let Some(cookie) = jar.get(GATEWAY_COOKIE) else {
        return Ok(None);
    };
    // Only while the Trellis session it came from lives: signing out of Trellis closes workspaces.
    let row = sqlx::query(
        "SELECT g.principal FROM gateway_sessions g JOIN sessions s ON s.id_hash = g.parent_hash \
         WHERE g.id_hash = $1 AND g.expires_at > $2 AND s.expires_at > $2",
    )
    .bind(digest(cookie.value()))
    .bind(timestamp(chrono::Utc::now()))
    .fetch_optional(state.store.pool())
    .await?;
    row.map(|row| {
        let principal: String = row.try_get("principal")?;
        serde_json::from_str(&principal).map_err(|e| StoreError::Corrupt(format!("session: {e}")))
    })
    .transpose()
}

/// Where a browser without a gateway session goes: Trellis's origin, to fetch a ticket.
pub fn sign_in_url(state: &SharedState, wanted: &Uri) -> String {
    let back = safe_return_path(Some(wanted.path_and_query().map_or("/", |p| p.as_str())));
    let encoded: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    format!(
        "{}{ISSUE_PATH}?return_to={encoded}",
        state.config.public_url.as_str().trim_end_matches('/')
    )
}

#[derive(Deserialize)]
pub struct IssueQuery {
    return_to: Option<String>,
}

/// On Trellis's origin: a signed-in browser gets a one-time ticket for the workspace origin.
pub async fn issue(
    State(state): State<SharedState>,
    Query(query): Query<IssueQuery>,
    jar: CookieJar,
) -> Result<Response, Problem> {
    let Some(origin) = state.config.gateway.public_url.clone() else {
        return Err(Problem::not_found("workspaces are served on this origin"));
    };
    let return_to = safe_return_path(query.return_to.as_deref());
    if !return_to.starts_with("/w/") {
        return Err(Problem::bad_request(
            "`return_to` must be a workspace path (/w/<project>/<workspace>/…)",
        ));
    }
    let session = match jar.get(SESSION_COOKIE) {
        Some(cookie) => state
            .sessions
            .get(cookie.value())
            .await?
            .map(|session| (session, digest(cookie.value()))),
        None => None,
    };
    let Some((session, parent_hash)) = session else {
        let here = format!(
            "{ISSUE_PATH}?return_to={}",
            url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
        );
        let encoded: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        return Ok(Redirect::to(&format!("/auth/login?return_to={encoded}")).into_response());
    };
    let ticket = random_token();
    let mut tx = state.audit.begin().await?;
    sqlx::query(
        "INSERT INTO workspace_tickets (ticket_hash, principal, parent_hash, return_to, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(digest(&ticket))
    .bind(serde_json::to_string(&session.principal).map_err(|e| Problem::internal(e.to_string()))?)
    .bind(&parent_hash)
    .bind(&return_to)
    .bind(timestamp(chrono::Utc::now() + TICKET_TTL))
    .execute(tx.conn())
    .await
    .map_err(StoreError::from)?;
    tx.commit(
        AuditAction::AuthWorkspace
            .by(&session.principal, "session")
            .with_detail(json!({ "return_to": return_to })),
    )
    .await?;
    state.metrics.audited(Outcome::Success);
    Ok(Redirect::to(&format!(
        "{}{REDEEM_PATH}?ticket={ticket}",
        origin.as_str().trim_end_matches('/')
    ))
    .into_response())
}

#[derive(Deserialize)]
pub struct RedeemQuery {
    ticket: Option<String>,
}

/// On the workspace origin: a ticket, once, becomes a gateway session cookie.
pub async fn redeem(
    State(state): State<SharedState>,
    Query(query): Query<RedeemQuery>,
    jar: CookieJar,
) -> Result<Response, Problem> {
    if state.config.gateway.public_url.is_none() {
        return Err(Problem::not_found(
            "workspaces are served on Trellis's origin",
        ));
    }
    let ticket = query
        .ticket
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Problem::bad_request("the sign-in hop needs its `ticket`"))?;
    let row = sqlx::query(
        "DELETE FROM workspace_tickets WHERE ticket_hash = $1 AND expires_at > $2 \
         RETURNING principal, parent_hash, return_to",
    )
    .bind(digest(&ticket))
    .bind(timestamp(chrono::Utc::now()))
    .fetch_optional(state.store.pool())
    .await
    .map_err(StoreError::from)?;
    let Some(row) = row else {
        state
            .record(
                AuditAction::AuthWorkspace
                    .anonymous("session")
                    .with_outcome(Outcome::Failure)
                    .with_detail(json!({ "reason": "unknown, used or expired ticket" })),
            )
            .await;
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this sign-in ticket is unknown, used or expired; open the workspace again from Trellis",
        ));
    };
    let principal: String = row.try_get("principal").map_err(StoreError::from)?;
    let return_to: String = row.try_get("return_to").map_err(StoreError::from)?;
    let parent_hash: String = row.try_get("parent_hash").map_err(StoreError::from)?;
    let id = random_token();
    let now = chrono::Utc::now();
    let ttl = state.sessions.ttl();
    sqlx::query(
        "INSERT INTO gateway_sessions (id_hash, principal, parent_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(digest(&id))
    .bind(&principal)
    .bind(&parent_hash)
    .bind(timestamp(now))
    .bind(timestamp(
        now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(8)),
    ))
    .execute(state.store.pool())
    .await
    .map_err(StoreError::from)?;
    let cookie = Cookie::build((GATEWAY_COOKIE, id))
        .http_only(true)
        .secure(state.config.session.secure_cookie)
        .same_site(SameSite::Lax)
        .path("/w/")
        .max_age(cookie::time::Duration::seconds(ttl.as_secs() as i64))
        .build();
    Ok((jar.add(cookie), Redirect::to(&return_to)).into_response())
}

/// Deletes expired tickets, and gateway sessions that expired or whose Trellis session ended.
pub async fn purge_expired(state: &crate::store::Store) -> Result<u64, StoreError> {
    let now = timestamp(chrono::Utc::now());
    let mut purged = 0;
    for statement in [
        "DELETE FROM workspace_tickets WHERE expires_at <= $1",
        "DELETE FROM gateway_sessions WHERE expires_at <= $1 \
         OR parent_hash NOT IN (SELECT id_hash FROM sessions)",
    ] {
        purged += sqlx::query(statement)
            .bind(&now)
            .execute(state.pool())
            .await?
            .rows_affected();
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().expect("a URI")
    }

    #[test]
    fn without_a_workspace_origin_everything_is_trellis() {
        assert_eq!(route(None, Some("anything"), &uri("/w/p/w/")), Route::Main);
    }

    #[test]
    fn each_origin_serves_its_own() {
        let origin = Url::parse("http://localhost:8080").expect("a URL");
        let o = Some(&origin);
        assert_eq!(
            route(o, Some("localhost:8080"), &uri("/w/p/nb/lab")),
            Route::Workspace
        );
        assert_eq!(
            route(o, Some("LOCALHOST:8080"), &uri("/w/_auth?ticket=x")),
            Route::Workspace
        );
        assert_eq!(
            route(o, Some("localhost:8080"), &uri("/api/v1/me")),
            Route::NotHere
        );
        assert_eq!(route(o, Some("localhost:8080"), &uri("/")), Route::NotHere);
        assert_eq!(
            route(o, Some("localhost:8080"), &uri("/auth/login")),
            Route::NotHere
        );
        assert_eq!(
            route(o, Some("127.0.0.1:8080"), &uri("/api/v1/me")),
            Route::Main
        );
        assert_eq!(
            route(o, Some("127.0.0.1:8080"), &uri("/w/p/nb/lab?reset")),
            Route::ToWorkspaceOrigin("http://localhost:8080/w/p/nb/lab?reset".into())
        );
        // Another port of the workspace host is not the workspace origin.
        assert_eq!(
            route(o, Some("localhost:9090"), &uri("/api/v1/me")),
            Route::Main
        );
    }

    #[test]
    fn default_ports_match_an_origin_without_one() {
        let origin = Url::parse("https://workspaces.example").expect("a URL");
        let o = Some(&origin);
        assert_eq!(
            route(o, Some("workspaces.example"), &uri("/w/a/b/")),
            Route::Workspace
        );
        assert_eq!(
            route(o, Some("workspaces.example:443"), &uri("/")),
            Route::NotHere
        );
        assert_eq!(
            route(o, Some("workspaces.example:8443"), &uri("/")),
            Route::Main
        );
    }
}
