//! The audit log over HTTP, for admins: filtered pages (newest first) and a JSON Lines export.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, Caller, SharedState};
use crate::identity::Principal;
use crate::policy::{self, Decision};
use crate::problem::Problem;
use crate::store::audit::{Filter, Outcome, Record};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(export))
}

/// The most records one page returns.
pub const MAX_PAGE: i64 = 500;

/// Filters, as an HTML form sends them: empty fields mean "any".
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Exactly this actor (subject).
    #[serde(default)]
    pub actor: String,
    /// This action and those under it (`airlock` matches `airlock.vote`).
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub project: String,
    /// `success`, `denied` or `failure`.
    #[serde(default)]
    pub outcome: String,
    /// Only records with a lower sequence number (the next page back).
    #[serde(default)]
    pub before: String,
    /// At most this many records (default 100, at most 500).
    #[serde(default)]
    pub limit: String,
}

impl AuditQuery {
    pub fn parse(raw: Option<&str>) -> Result<Self, Problem> {
        serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| Problem::bad_request(format!("the audit query is not valid: {e}")))
    }

    pub fn filter(&self) -> Result<Filter, Problem> {
        let outcome = match self.outcome.trim() {
            "" => None,
            "success" => Some(Outcome::Success),
            "denied" => Some(Outcome::Denied),
            "failure" => Some(Outcome::Failure),
            other => {
                return Err(Problem::bad_request(format!(
                    "`outcome` is `success`, `denied` or `failure`, not `{other}`"
                )));
            }
        };
        let before = match self.before.trim() {
            "" => None,
            text => Some(text.parse::<i64>().map_err(|_| {
                Problem::bad_request(format!("`before` is a record number, not `{text}`"))
            })?),
        };
        Ok(Filter {
            actor: self.actor.trim().to_string(),
            action: self.action.trim().to_string(),
            project: self.project.trim().to_string(),
            outcome,
            before,
        })
    }

    pub fn limit(&self) -> Result<i64, Problem> {
        match self.limit.trim() {
            "" => Ok(100),
            text => text
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    Problem::bad_request(format!(
                        "`limit` must be a number from 1 to {MAX_PAGE}, not `{text}`"
                    ))
                }),
        }
    }
}

async fn authorize(state: &SharedState, who: &Principal, action: &str) -> Result<(), Problem> {
    match policy::audit_read(who) {
        Decision::Allow => Ok(()),
        Decision::Deny(why) => {
            state.audit_denial(who, action, "audit", None).await;
            Err(Problem::forbidden(why))
        }
    }
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "Matching records, newest first", body = [Record]),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a platform admin", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn search(
    State(state): State<SharedState>,
    Caller(who): Caller,
    uri: axum::http::Uri,
) -> ApiResult<Json<Vec<Record>>> {
    authorize(&state, &who, "audit.read").await?;
    let query = AuditQuery::parse(uri.query())?;
    let (filter, limit) = (query.filter()?, query.limit()?);
    Ok(Json(state.audit.search(&filter, limit).await?))
}

#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "Every matching record as JSON Lines, newest first", content_type = "application/jsonl"),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a platform admin", body = Problem, content_type = "application/problem+json")))]
async fn export(
    State(state): State<SharedState>,
    Caller(who): Caller,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    authorize(&state, &who, "audit.export").await?;
    let filter = AuditQuery::parse(uri.query())?.filter()?;
    state
        .record(crate::store::audit::Event {
            actor: who.subject.clone(),
            roles: who.role_names(),
            action: "audit.export".into(),
            target: "audit".into(),
            project: None,
            outcome: Outcome::Success,
            detail: serde_json::json!({ "actor": filter.actor, "action": filter.action,
                "project": filter.project, "outcome": filter.outcome }),
        })
        .await;
    // Page by page, so a long log streams in constant memory.
    let pages = futures::stream::unfold(Some(filter), move |filter| {
        let state = state.clone();
        async move {
            let filter = filter?;
            match state.audit.search(&filter, MAX_PAGE).await {
                Ok(records) if records.is_empty() => None,
                Ok(records) => {
                    let next = Filter {
                        before: records.last().map(|r| r.seq),
                        ..filter
                    };
                    let mut chunk = Vec::new();
                    for record in &records {
                        // A record always serialises: its fields are strings, numbers and JSON.
                        serde_json::to_writer(&mut chunk, record).unwrap_or_default();
                        chunk.push(b'\n');
                    }
                    Some((Ok::<_, std::io::Error>(chunk), Some(next)))
                }
                Err(error) => Some((Err(std::io::Error::other(error.to_string())), None)),
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/jsonl"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"trellis-audit.jsonl\"",
            ),
        ],
        Body::from_stream(pages.boxed()),
    )
        .into_response())
}
