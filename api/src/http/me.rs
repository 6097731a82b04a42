//! `GET /api/v1/me`: who the caller is, their roles, and their projects; and
//! `GET /api/v1/cli-login`: where the command line signs in.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, Caller, SessionCsrf, SharedState};
use crate::identity::{Credential, PlatformRole};
use crate::policy;
use crate::projects::MemberBody;

pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(cli_login))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeView {
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub roles: BTreeSet<PlatformRole>,
    pub credential: Credential,
    /// The caller's role in each project they belong to.
    pub projects: Vec<MembershipView>,
    /// For browser sessions: the value unsafe requests send in `X-CSRF-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MembershipView {
    pub project: String,
    #[serde(flatten)]
    pub member: MemberBody,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "identity",
    responses((status = 200, body = MeView),
              (status = 401, description = "Not signed in", body = crate::problem::Problem, content_type = "application/problem+json")))]
async fn me(
    State(state): State<SharedState>,
    Caller(who): Caller,
    csrf: Option<Extension<SessionCsrf>>,
) -> ApiResult<Json<MeView>> {
    let csrf_token = csrf.map(|Extension(SessionCsrf(token))| token);
    let projects = state
        .cluster
        .projects()
        .iter()
        .filter(|p| {
            who.project_scope()
                .is_none_or(|scope| p.metadata.name.as_deref() == Some(scope))
        })
        .filter_map(|p| {
            policy::membership(&who, p).map(|role| MembershipView {
                project: p.metadata.name.clone().unwrap_or_default(),
                member: MemberBody {
                    subject: who.subject.clone(),
                    role,
                },
            })
        })
        .collect();
    Ok(Json(MeView {
        subject: who.subject.clone(),
        name: who.name.clone(),
        email: who.email.clone(),
        roles: who.roles.clone(),
        credential: who.credential.clone(),
        projects,
        csrf_token,
    }))
}

/// What `trellis login` needs to sign in with the provider the API trusts.
#[derive(Serialize, ToSchema)]
pub struct CliLoginView {
    /// The OpenID Connect issuer; its discovery document names the device authorization endpoint.
    pub issuer: String,
    /// A public client (no secret) for the device authorization grant.
    pub client_id: String,
    /// The scopes to ask for: those browser sign-in asks for (what the provider offers).
    pub scopes: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/cli-login", tag = "identity",
    responses((status = 200, description = "The provider and client for the command line's device sign-in; needs no credentials", body = CliLoginView)))]
async fn cli_login(State(state): State<SharedState>) -> Json<CliLoginView> {
    let oidc = &state.config.oidc;
    Json(CliLoginView {
        issuer: oidc.issuer.as_str().trim_end_matches('/').to_string(),
        client_id: oidc
            .cli_client_id
            .clone()
            .unwrap_or_else(|| oidc.client_id.clone()),
        scopes: state.provider.scopes().to_vec(),
    })
}
