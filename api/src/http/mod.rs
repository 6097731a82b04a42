//! The JSON API's edge: its routes and OpenAPI document, strict JSON bodies, sign-in, and the
//! health endpoints. Handlers call the services; `server.rs` composes this with the other edges.

pub mod airlock;
pub mod audit;
pub mod auth;
pub mod json;
pub mod me;
pub mod projects;
pub mod tokens;
pub mod workspaces;

use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use crate::app::SharedState;
use crate::identity::extract::{Caller, SessionCsrf};
use crate::identity::session::SESSION_COOKIE;
use crate::problem::Problem;

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
        (name = "tokens", description = "Personal access tokens for DataSHIELD clients"),
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
        .merge(tokens::routes())
        .split_for_parts()
}

/// A handler's result: a JSON value or a problem.
pub type ApiResult<T> = Result<T, Problem>;

/// `201 Created` with a body.
pub fn created<T: serde::Serialize>(body: T) -> Response {
    (axum::http::StatusCode::CREATED, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    /// The OpenAPI document renders and names the endpoints. With `TRELLIS_OPENAPI_OUT` set it is
    /// also written there, so that a change meant to leave the HTTP contract alone can be checked
    /// by diffing the document before and after.
    #[test]
    fn openapi_document_renders() {
        let (_, document) = super::api_routes();
        let text = serde_json::to_string_pretty(&document).expect("the document serializes");
        assert!(text.contains("\"/api/v1/me\""));
        assert!(text.contains("\"/api/v1/cli-login\""));
        assert!(text.contains("\"/api/v1/projects/{project}/airlock\""));
        assert!(text.contains("\"/api/v1/tokens\""));
        assert!(text.contains("\"/api/v1/tokens/{id}\""));
        assert!(text.contains("\"CreatedToken\""));
        if let Ok(path) = std::env::var("TRELLIS_OPENAPI_OUT") {
            std::fs::write(path, text).expect("writing the document");
        }
    }
}
