//! The audit log over HTTP, for admins: filtered pages (newest first) and a JSON Lines export.

use crate::problem::responses::BadRequest;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, Caller, SharedState};
use crate::audit::AuditAction;
use crate::audit::{self, AuditQuery, MAX_PAGE};
use crate::problem::Problem;
use crate::store::audit::{Filter, Record};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(export))
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "Matching records, newest first", body = [Record]),
              BadRequest,
              (status = 403, description = "Not a platform admin", body = Problem, content_type = "application/problem+json")))]
async fn search(
    State(state): State<SharedState>,
    Caller(who): Caller,
    uri: axum::http::Uri,
) -> ApiResult<Json<Vec<Record>>> {
    let (_, records) = audit::search(&state, &who, uri.query()).await?;
    Ok(Json(records))
}

#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "Every matching record as JSON Lines, newest first", content_type = "application/jsonl"),
              BadRequest,
              (status = 403, description = "Not a platform admin", body = Problem, content_type = "application/problem+json")))]
async fn export(
    State(state): State<SharedState>,
    Caller(who): Caller,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    audit::authorize(&state, &who, AuditAction::AuditExport).await?;
    let filter = AuditQuery::parse(uri.query())?.filter()?;
    state
        .record(AuditAction::AuditExport.by(&who, "audit").with_detail(
            serde_json::json!({ "actor": filter.actor, "action": filter.action,
                "project": filter.project, "outcome": filter.outcome }),
        ))
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
