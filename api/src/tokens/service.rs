//! Personal access tokens: made by a signed-in person for projects where they may use
//! DataSHIELD, listed and revoked by their owner, and checked by the DataSHIELD proxy on every
//! call. The policy decides who may do what ([`policy::access_token_create`],
//! [`policy::access_token_manage`], [`Action::UseDataShield`]); every change is audited.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::repo::{self, NewToken, TokenRecord};
use crate::app::AppState;
use crate::audit::AuditAction;
use crate::identity::session::digest;
use crate::identity::{Credential, Principal};
use crate::policy::{self, Action, Decision, Target};
use crate::problem::Problem;
use crate::resources::Project;
use crate::store::audit::Outcome;
use crate::store::{Store, StoreError, timestamp};

/// A token's use is written at most this often (per token): not one write per DataSHIELD call.
pub const LAST_USED_INTERVAL: chrono::Duration = chrono::Duration::minutes(1);

/// Why a presented token was refused by [`authenticate_for_datashield`]. The text says why, for
/// a problem's `detail` and for the audit log; it never contains the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Not a Trellis token, or no such token.
    #[error("the access token is not valid")]
    Unknown,
    #[error("the access token was revoked")]
    Revoked,
    #[error("the access token expired at the end of {0}")]
    Expired(NaiveDate),
    #[error("the access token is not for project `{0}`")]
    NotForProject(String),
    /// The policy refused the token's owner (no longer a member, the project is not Active…).
    #[error("{0}")]
    NotPermitted(String),
    #[error("there is no project named `{0}`")]
    ProjectUnknown(String),
    /// The database could not be asked: the proxy answers 503.
    #[error("access tokens cannot be checked now (the database is unavailable); try again")]
    Unavailable,
}

impl From<StoreError> for TokenRefusal {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "database failure while checking an access token");
        TokenRefusal::Unavailable
    }
}

/// The check the DataSHIELD proxy calls on every request to `/datashield/<project>/…`, with the
/// token the client presented (the password of its Basic authentication, or `X-Opal-Auth`).
///
/// On success: the token's owner as a [`Principal`] with [`Credential::AccessToken`], no
/// platform roles, and the name and address recorded when the token was made; the token's
/// `last_used_at` is updated (at most once a minute). The project is read from the watch cache
/// and the owner must be allowed [`Action::UseDataShield`] on it now. Refusals are not audited
/// here: the proxy records each call with its outcome, using the refusal's text.
pub async fn authenticate_for_datashield(
    state: &AppState,
    presented: &str,
    project: &str,
) -> Result<Principal, TokenRefusal> {
    let cached = state.cluster.project(project);
    state
        .tokens
        .check(presented, project, cached.as_deref())
        .await
}

/// The tokens' store, with the check itself (what [`authenticate_for_datashield`] runs, given
/// the project as the cache has it).
#[derive(Clone)]
pub struct AccessTokens {
    store: Store,
}

impl AccessTokens {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Checks `presented` for `project_name` (`project`: the cached project, `None` if there is
    /// none), in this order: shape and existence, revocation, expiry, the token's projects, the
    /// project's existence, then the policy.
    pub async fn check(
        &self,
        presented: &str,
        project_name: &str,
        project: Option<&Project>,
    ) -> Result<Principal, TokenRefusal> {
        if !super::well_formed(presented) {
            return Err(TokenRefusal::Unknown);
        }
        let mut conn = self.store.connection().await?;
        let token = repo::by_hash(&mut conn, &digest(presented))
            .await?
            .ok_or(TokenRefusal::Unknown)?;
        if token.revoked_at.is_some() {
            return Err(TokenRefusal::Revoked);
        }
        let now = Utc::now();
        if now.date_naive() > token.expires_on {
            return Err(TokenRefusal::Expired(token.expires_on));
        }
        if !token.projects.iter().any(|p| p == project_name) {
            return Err(TokenRefusal::NotForProject(project_name.to_string()));
        }
        let project =
            project.ok_or_else(|| TokenRefusal::ProjectUnknown(project_name.to_string()))?;
        let principal = Principal {
            subject: token.owner.clone(),
            name: token.owner_name.clone(),
            email: token.owner_email.clone(),
            roles: Default::default(),
            credential: Credential::AccessToken {
                id: token.id.clone(),
            },
        };
        if let Decision::Deny(why) =
            policy::decide(&principal, Action::UseDataShield, Target::Project(project))
        {
            return Err(TokenRefusal::NotPermitted(why));
        }
        let since = timestamp(now - LAST_USED_INTERVAL);
        if token
            .last_used_at
            .as_deref()
            .is_none_or(|at| at < since.as_str())
        {
            // A lost write only makes "last used" older; it must not refuse the call.
            if let Err(error) = repo::touch(&mut conn, &token.id, &timestamp(now), &since).await {
                tracing::warn!(%error, token = %token.id, "could not record an access token's use");
            }
        }
        Ok(principal)
    }
}

/// A token as its owner sees it in the list (never the token itself).
#[derive(Serialize, ToSchema, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The projects whose DataSHIELD server accepts it.
    pub projects: Vec<String>,
    pub created_at: String,
    /// The last day it works (UTC).
    pub expires_at: NaiveDate,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Whether it is revoked.
    pub revoked: bool,
    /// Whether it is past its last day.
    pub expired: bool,
}

impl TokenView {
    fn of(record: TokenRecord, today: NaiveDate) -> Self {
        Self {
            revoked: record.revoked_at.is_some(),
            expired: today > record.expires_on,
            id: record.id,
            name: record.name,
            projects: record.projects,
            created_at: record.created_at,
            expires_at: record.expires_on,
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
        }
    }
}

/// A new token's details.
#[derive(Deserialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct NewTokenBody {
    /// What the token is for, to recognise it in the list: 1–100 characters.
    pub name: String,
    /// Projects whose DataSHIELD server will accept it (at least one; each one where the
    /// caller may use DataSHIELD now).
    #[serde(default)]
    pub projects: Vec<String>,
    /// The last day it works (UTC): not in the past, and not after the end date of any of its
    /// projects. (`expires_at` is accepted too: issue 17 spelt it so, and clients were written
    /// against that spelling.)
    #[serde(alias = "expires_at")]
    pub expires_at: NaiveDate,
}

/// A token just made: the only time the token itself is shown.
#[derive(Serialize, ToSchema, Debug)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    /// The token (`trellis_pat_…`). It is not stored and will not be shown again.
    pub token: String,
    pub projects: Vec<String>,
    pub expires_at: NaiveDate,
}

async fn refused(
    state: &AppState,
    who: &Principal,
    action: AuditAction,
    target: &str,
    why: String,
) -> Problem {
    state.audit_denial(who, action, target, None).await;
    Problem::forbidden(why)
}

/// The projects where `who` may use DataSHIELD now (what a new token may name).
pub fn datashield_projects(state: &AppState, who: &Principal) -> Vec<Arc<Project>> {
    state
        .cluster
        .projects()
        .into_iter()
        .filter(|p| policy::decide(who, Action::UseDataShield, Target::Project(p)).allowed())
        .collect()
}

/// Makes a token for `who`: checks the body, stores the token's digest and audits the creation
/// in one transaction, and returns the token (once).
pub async fn create(
    state: &AppState,
    who: &Principal,
    body: NewTokenBody,
) -> Result<CreatedToken, Problem> {
    if let Decision::Deny(why) = policy::access_token_create(who) {
        return Err(refused(state, who, AuditAction::TokenCreate, "token/new", why).await);
    }
    let name = body.name.trim();
    let length = name.chars().count();
    if length == 0 || length > 100 {
        return Err(Problem::unprocessable(
            "a token's name is 1–100 characters (not only spaces)",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Problem::unprocessable(
            "a token's name has no control characters",
        ));
    }
    let mut projects = body.projects.clone();
    projects.sort();
    projects.dedup();
    if projects.is_empty() {
        return Err(Problem::unprocessable(
            "choose at least one project the token is for",
        ));
    }
    let today = Utc::now().date_naive();
    if body.expires_at < today {
        return Err(Problem::unprocessable(format!(
            "the expiry date {} is in the past (today is {today}, UTC)",
            body.expires_at
        )));
    }
    for name in &projects {
        let Some(project) = state.cluster.project(name) else {
            return Err(Problem::unprocessable(format!(
                "there is no project named `{name}`"
            )));
        };
        if let Decision::Deny(why) =
            policy::decide(who, Action::UseDataShield, Target::Project(&project))
        {
            return Err(Problem::unprocessable(format!(
                "you may not use DataSHIELD in project `{name}`: {why}"
            )));
        }
        if body.expires_at > project.spec.end_date {
            return Err(Problem::unprocessable(format!(
                "the expiry date {} is after project `{name}` ends ({}); choose {} or earlier",
                body.expires_at, project.spec.end_date, project.spec.end_date
            )));
        }
    }
    let token = super::generate();
    let id = crate::identity::session::random_token()[..16]
        .to_lowercase()
        .replace(['-', '_'], "x");
    let created_at = timestamp(Utc::now());
    let mut tx = state.audit.begin().await?;
    repo::insert(
        tx.conn(),
        &NewToken {
            id: &id,
            token_hash: &digest(&token),
            owner: &who.subject,
            owner_name: who.name.as_deref(),
            owner_email: who.email.as_deref(),
            name,
            projects: &projects,
            created_at: &created_at,
            expires_on: body.expires_at,
        },
    )
    .await?;
    tx.commit(
        AuditAction::TokenCreate
            .by(who, format!("token/{id}"))
            .with_detail(json!({
                "name": name,
                "projects": projects,
                "expiresAt": body.expires_at,
                "credential": who.credential,
            })),
    )
    .await?;
    state.metrics.audited(Outcome::Success);
    Ok(CreatedToken {
        id,
        name: name.to_string(),
        token,
        projects,
        expires_at: body.expires_at,
    })
}

/// The caller's own tokens, newest first.
pub async fn list(state: &AppState, who: &Principal) -> Result<Vec<TokenView>, Problem> {
    if let Decision::Deny(why) = policy::access_token_manage(who, &who.subject) {
        return Err(refused(state, who, AuditAction::TokenList, "tokens", why).await);
    }
    let mut conn = state.store.connection().await?;
    let today = Utc::now().date_naive();
    Ok(repo::by_owner(&mut conn, &who.subject)
        .await?
        .into_iter()
        .map(|r| TokenView::of(r, today))
        .collect())
}

/// Revokes one of the caller's tokens. Only a person signed in as themselves revokes (403
/// otherwise); someone else's token is as unknown as a missing one (404, and the refusal is
/// audited); revoking a revoked token changes nothing.
pub async fn revoke(state: &AppState, who: &Principal, id: &str) -> Result<(), Problem> {
    let target = format!("token/{id}");
    if let Decision::Deny(why) = policy::access_token_create(who) {
        return Err(refused(state, who, AuditAction::TokenRevoke, &target, why).await);
    }
    let not_found = || Problem::not_found(format!("you have no access token `{id}`"));
    let mut tx = state.audit.begin().await?;
    let Some(token) = repo::get(tx.conn(), id).await? else {
        return Err(not_found());
    };
    if let Decision::Deny(why) = policy::access_token_manage(who, &token.owner) {
        drop(tx);
        state
            .record(
                AuditAction::TokenRevoke
                    .by(who, &target)
                    .with_outcome(Outcome::Denied)
                    .with_detail(json!({ "credential": who.credential, "reason": why })),
            )
            .await;
        return Err(not_found());
    }
    if !repo::revoke(tx.conn(), id, &timestamp(Utc::now())).await? {
        return Ok(());
    }
    tx.commit(
        AuditAction::TokenRevoke
            .by(who, &target)
            .with_detail(json!({ "name": token.name, "projects": token.projects })),
    )
    .await?;
    state.metrics.audited(Outcome::Success);
    Ok(())
}
