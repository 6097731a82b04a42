//! `/api/v1/tokens`: a person's personal access tokens for DataSHIELD clients. Made, listed and
//! revoked by their owner, signed in as themselves (a browser session or the identity
//! provider's token; never a workspace's credential or another access token).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::StrictJson;
use super::{ApiResult, Caller, SharedState, created};
use crate::problem::Problem;
use crate::problem::responses::{BadRequest, Forbidden, NotFound, Unprocessable};
use crate::tokens::service::{self, CreatedToken, NewTokenBody, TokenView};

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, description = "The caller's own tokens, newest first (never the tokens themselves)", body = [TokenView]),
              (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
              Forbidden))]
async fn list_tokens(
    State(state): State<SharedState>,
    Caller(who): Caller,
) -> ApiResult<Json<Vec<TokenView>>> {
    Ok(Json(service::list(&state, &who).await?))
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewTokenBody,
    responses((status = 201, description = "Made: the token is in this answer and nowhere else; it is not shown again", body = CreatedToken),
              (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
              BadRequest,
              Forbidden,
              Unprocessable))]
async fn create_token(
    State(state): State<SharedState>,
    Caller(who): Caller,
    StrictJson(body): StrictJson<NewTokenBody>,
) -> ApiResult<Response> {
    Ok(created(service::create(&state, &who, body).await?))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "The token's id (from the list)")),
    responses((status = 204, description = "Revoked (or already was): DataSHIELD refuses it from now on"),
              (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
              Forbidden,
              NotFound))]
async fn revoke_token(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    service::revoke(&state, &who, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
