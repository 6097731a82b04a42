//! `/api/v1/projects/{project}/airlock`: requests to bring data in or take results out, their
//! files, independent per-file votes, the outcome, release and revocation. The handlers read the
//! request and call `airlock::service`, which the pages call too.

use crate::problem::responses::{Conflict, Forbidden, NotFound};
use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::StrictJson;
use super::{ApiResult, Caller, SharedState, created};
use crate::airlock::service;
use crate::airlock::state::{Command, Decision, Direction, VoteKind};
use crate::airlock::view::RequestView;
use crate::audit::AuditAction;
use crate::problem::Problem;

pub fn routes() -> OpenApiRouter<SharedState> {
    let (schemas, paths, files) = routes!(put_file, delete_file, get_file);
    OpenApiRouter::new()
        .routes(routes!(list_requests, create_request))
        .routes(routes!(get_request))
        // Files stream through with their own size limit, not the JSON body limit.
        .routes((schemas, paths, files.layer(DefaultBodyLimit::disable())))
        .routes(routes!(submit))
        .routes(routes!(vote))
        .routes(routes!(outcome))
        .routes(routes!(withdraw))
        .routes(routes!(revoke))
        .routes(routes!(queue))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateBody {
    #[schema(value_type = String, example = "egress")]
    pub direction: Direction,
    pub title: String,
    /// What the outputs are and how they were produced, for the reviewers.
    #[serde(default)]
    pub context: String,
    /// The disclosure controls applied (suppression, rounding…).
    #[serde(default)]
    pub controls: String,
}

#[derive(Deserialize, ToSchema)]
pub struct VoteBody {
    pub file: String,
    #[schema(value_type = String, example = "approve")]
    pub vote: VoteKind,
    #[serde(default)]
    pub comment: String,
}

#[derive(Deserialize, ToSchema)]
pub struct VotesBody {
    pub votes: Vec<VoteBody>,
}

#[derive(Deserialize, ToSchema)]
pub struct OutcomeBody {
    #[schema(value_type = String, example = "approve")]
    pub outcome: Decision,
    #[serde(default)]
    pub comment: String,
}

#[derive(Serialize, ToSchema)]
pub struct FileStored {
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/airlock", tag = "airlock", request_body = CreateBody,
    params(("project" = String, Path, description = "Project name")),
    responses((status = 201, description = "A new request in draft", body = RequestView),
              Forbidden,
              NotFound,
              (status = 409, description = "The project is not Active", body = Problem, content_type = "application/problem+json")))]
async fn create_request(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(project_name): Path<String>,
    StrictJson(body): StrictJson<CreateBody>,
) -> ApiResult<Response> {
    let fields = service::NewRequestFields {
        direction: body.direction,
        title: &body.title,
        context: &body.context,
        controls: &body.controls,
    };
    Ok(created(
        service::create(&state, &who, &project_name, fields).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/projects/{project}/airlock", tag = "airlock",
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, description = "The project's requests the caller may see", body = [RequestView]),
              Forbidden))]
async fn list_requests(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(project_name): Path<String>,
) -> ApiResult<Json<Vec<RequestView>>> {
    Ok(Json(service::list(&state, &who, &project_name).await?))
}

#[utoipa::path(get, path = "/api/v1/projects/{project}/airlock/{id}", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id")),
    responses((status = 200, body = RequestView),
              Forbidden,
              NotFound))]
async fn get_request(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(service::get(&state, &who, &project, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/projects/{project}/airlock/{id}/files/{name}", tag = "airlock",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes"),
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id"), ("name" = String, Path, description = "File name")),
    responses((status = 201, description = "Stored, content-addressed", body = FileStored),
              Forbidden,
              (status = 409, description = "The request is not draft or returned", body = Problem, content_type = "application/problem+json"),
              (status = 413, description = "Larger than the limit", body = Problem, content_type = "application/problem+json")))]
async fn put_file(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id, name)): Path<(String, String, String)>,
    body: Body,
) -> ApiResult<Response> {
    let blob =
        service::put_file(&state, &who, &project, &id, &name, body.into_data_stream()).await?;
    Ok(created(FileStored {
        name,
        sha256: blob.sha256,
        size: blob.size,
    }))
}

#[utoipa::path(delete, path = "/api/v1/projects/{project}/airlock/{id}/files/{name}", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id"), ("name" = String, Path, description = "File name")),
    responses((status = 200, body = RequestView),
              Forbidden,
              Conflict))]
async fn delete_file(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id, name)): Path<(String, String, String)>,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(
        service::delete_file(&state, &who, &project, &id, &name).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/projects/{project}/airlock/{id}/files/{name}", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id"), ("name" = String, Path, description = "File name")),
    responses((status = 200, description = "The file's bytes, verified against their hash", content_type = "application/octet-stream"),
              Forbidden,
              NotFound,
              (status = 500, description = "The stored file no longer matches its hash", body = Problem, content_type = "application/problem+json")))]
async fn get_file(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let (file, stream) = service::open_file(
        &state,
        &who,
        &project,
        &id,
        &name,
        AuditAction::AirlockFileDownload,
    )
    .await?;
    let disposition = format!("attachment; filename=\"{}\"", name.replace('"', "_"));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::HeaderName::from_static("x-content-sha256"),
                file.sha256,
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/airlock/{id}/submit", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "In review (or blocked)", body = RequestView),
              Forbidden,
              Conflict,
              (status = 422, description = "No files", body = Problem, content_type = "application/problem+json")))]
async fn submit(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(service::submit(&state, &who, &project, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/airlock/{id}/votes", tag = "airlock", request_body = VotesBody,
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id")),
    responses((status = 200, body = RequestView),
              (status = 403, description = "Not an eligible reviewer", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not in review, or already voted", body = Problem, content_type = "application/problem+json")))]
async fn vote(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id)): Path<(String, String)>,
    StrictJson(body): StrictJson<VotesBody>,
) -> ApiResult<Json<RequestView>> {
    let votes = body
        .votes
        .into_iter()
        .map(|v| (v.file, v.vote, v.comment))
        .collect();
    Ok(Json(
        service::vote(&state, &who, &project, &id, votes).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/airlock/{id}/outcome", tag = "airlock", request_body = OutcomeBody,
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "Released, returned or rejected", body = RequestView),
              Forbidden,
              (status = 409, description = "Not reviewed, or the outcome disagrees with the votes, or a file failed verification", body = Problem, content_type = "application/problem+json")))]
async fn outcome(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id)): Path<(String, String)>,
    StrictJson(body): StrictJson<OutcomeBody>,
) -> ApiResult<Json<RequestView>> {
    Ok(Json(
        service::outcome(&state, &who, &project, &id, body.outcome, &body.comment).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/airlock/{id}/withdraw", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id")),
    responses((status = 200, body = RequestView),
              Forbidden,
              Conflict))]
async fn withdraw(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<RequestView>> {
    let view = service::transition(
        &state,
        &who,
        &project,
        &id,
        Command::Withdraw,
        AuditAction::AirlockWithdraw,
        json!({}),
    )
    .await?;
    Ok(Json(view))
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/airlock/{id}/revoke", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id")),
    responses((status = 200, body = RequestView),
              Forbidden,
              Conflict))]
async fn revoke(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<RequestView>> {
    let view = service::transition(
        &state,
        &who,
        &project,
        &id,
        Command::Revoke,
        AuditAction::AirlockRevoke,
        json!({}),
    )
    .await?;
    Ok(Json(view))
}

#[derive(Serialize, ToSchema)]
pub struct QueueItem {
    pub project: String,
    pub id: String,
}

#[utoipa::path(get, path = "/api/v1/airlock/queue", tag = "airlock",
    responses((status = 200, description = "Requests awaiting the caller's review: egress for output checkers, ingress for data stewards; never their own or their projects'", body = [QueueItem]),
              Forbidden))]
async fn queue(
    State(state): State<SharedState>,
    Caller(who): Caller,
) -> ApiResult<Json<Vec<QueueItem>>> {
    let items = service::queue(&state, &who).await?;
    Ok(Json(
        items
            .into_iter()
            .map(|(project, id)| QueueItem { project, id })
            .collect(),
    ))
}
