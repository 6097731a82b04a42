//! One change to an airlock request, the way every operation makes it: read the request under
//! the policy, run the state machine, store what the change adds, and write the audit record, in
//! one database transaction; then tell people. Denials are audited.

use std::sync::Arc;

use serde_json::{Value, json};

use super::repo::{self, FileChecks, FileRecord, RequestRecord};
use super::state::{self, Actor, Command, Direction, Refusal, ReviewPolicy, VoteKind};
use super::view::{RequestView, view};
use crate::app::AppState;
use crate::audit::AuditAction;
use crate::identity::{PlatformRole, Principal};
use crate::policy::{self, Decision as Verdict};
use crate::problem::Problem;
use crate::resources::Project;
use crate::store::audit::Outcome;

pub(super) fn limit_reached(detail: String) -> Problem {
    Problem::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "limit", detail)
}

pub(super) fn refusal(refused: Refusal) -> Problem {
    match refused {
        Refusal::Forbidden(why) => Problem::forbidden(why),
        Refusal::Conflict(why) => Problem::conflict(why),
        Refusal::Invalid(why) => Problem::unprocessable(why),
    }
}

pub(super) fn actor(who: &Principal, project: Option<&Project>, direction: Direction) -> Actor {
    Actor {
        subject: who.subject.clone(),
        reviewer_role: policy::reviewer_role(who, direction),
        project_member: project.is_some_and(|p| policy::membership(who, p).is_some()),
        admin: who.project_scope().is_none() && who.has(PlatformRole::Admin),
    }
}

pub(super) fn target(project: &str, id: &str) -> String {
    format!("airlock/{project}/{id}")
}

pub(super) fn review_policy(state: &AppState, reviews_required: u32) -> ReviewPolicy {
    ReviewPolicy {
        reviews_required,
        members_may_review: state.config.airlock.members_may_review,
    }
}

pub(super) async fn deny(
    state: &AppState,
    who: &Principal,
    action: AuditAction,
    project: &str,
    id: &str,
    why: String,
) -> Problem {
    state
        .audit_denial(who, action, &target(project, id), Some(project))
        .await;
    Problem::forbidden(why)
}

/// Loads a request the caller may see, or says why not.
pub(super) async fn load_readable(
    state: &AppState,
    who: &Principal,
    project: &str,
    id: &str,
    action: AuditAction,
) -> Result<(RequestRecord, Option<Arc<Project>>), Problem> {
    let mut conn = state.store.connection().await?;
    let stored = load(&mut conn, project, id).await?;
    let cached = state.cluster.project(project);
    if let Verdict::Deny(why) = may_read(who, cached.as_deref(), project, &stored) {
        return Err(deny(state, who, action, project, id, why).await);
    }
    Ok((stored, cached))
}

/// The request, or 404.
async fn load(
    conn: &mut sqlx::AnyConnection,
    project: &str,
    id: &str,
) -> Result<RequestRecord, Problem> {
    repo::load(conn, project, id).await?.ok_or_else(|| {
        Problem::not_found(format!("project `{project}` has no airlock request `{id}`"))
    })
}

/// Whether `who` may see the request at all (every operation starts here).
fn may_read(
    who: &Principal,
    cached: Option<&Project>,
    project: &str,
    stored: &RequestRecord,
) -> Verdict {
    policy::airlock_read(
        who,
        cached,
        project,
        &stored.request.author,
        stored.request.direction,
    )
}

/// Runs `command` through the state machine in one transaction with its audit record;
/// `data` stores what the command adds besides the state (files, votes).
pub(super) async fn run_step(
    state: &AppState,
    who: &Principal,
    project: &str,
    id: &str,
    step: Step<'_>,
) -> Result<RequestRecord, Problem> {
    let Step {
        command,
        action,
        detail,
        data,
    } = step;
    let cached = state.cluster.project(project);
    let mut tx = state.audit.begin().await?;
    let stored = load(tx.conn(), project, id).await?;
    if let Verdict::Deny(why) = may_read(who, cached.as_deref(), project, &stored) {
        // The denial's record needs the audit chain this transaction holds.
        drop(tx);
        return Err(deny(state, who, action, project, id, why).await);
    }
    let acting = actor(who, cached.as_deref(), stored.request.direction);
    let next = match state::apply(
        &stored.request,
        &acting,
        review_policy(state, stored.reviews_required),
        &command,
    ) {
        Ok(next) => next,
        Err(Refusal::Forbidden(why)) => {
            drop(tx);
            return Err(deny(state, who, action, project, id, why).await);
        }
        Err(other) => return Err(refusal(other)),
    };
    match data {
        StepData::Nothing => {}
        StepData::File { name, sha256, size } => {
            // Again, now that concurrent uploads to the same request are serialised.
            let limits = state.config.airlock.limits;
            let others: Vec<&FileRecord> = stored.files.iter().filter(|f| f.name != name).collect();
            let bytes: u64 = others.iter().map(|f| f.size.max(0) as u64).sum::<u64>() + size;
            if others.len() >= limits.files_per_request as usize || bytes > limits.bytes_per_request
            {
                return Err(limit_reached(format!(
                    "a request holds at most {} files and {} bytes",
                    limits.files_per_request, limits.bytes_per_request
                )));
            }
            repo::put_file(tx.conn(), id, name, sha256, size).await?
        }
        StepData::RemoveFile(name) => repo::remove_file(tx.conn(), id, name).await?,
        StepData::Votes(votes) => {
            repo::add_votes(tx.conn(), id, stored.request.round, &who.subject, votes).await?
        }
        StepData::Disclosure(records) => {
            // The files must be the ones that were checked.
            let checked: Vec<(&str, &str)> = records
                .iter()
                .map(|(n, sha, _)| (n.as_str(), sha.as_str()))
                .collect();
            let current: Vec<(&str, &str)> = stored
                .files
                .iter()
                .map(|f| (f.name.as_str(), f.sha256.as_str()))
                .collect();
            if !records.is_empty() && checked != current {
                return Err(Problem::conflict(
                    "the files changed while they were being checked; submit again",
                ));
            }
            for (name, _, record) in records {
                repo::set_disclosure(tx.conn(), id, name, record).await?;
            }
        }
    }
    // An approval is released in the same transaction (its files were verified just before),
    // so a request never stays approved without being released.
    let mut steps = vec![(action, stored.request.clone(), next.clone(), detail)];
    if next.state == state::State::Approved {
        let released = state::apply(
            &next,
            &acting,
            review_policy(state, stored.reviews_required),
            &Command::Release,
        )
        .map_err(refusal)?;
        steps.push((
            AuditAction::AirlockRelease,
            next,
            released,
            json!({ "files": stored.files }),
        ));
    }
    for (action, before, after, detail) in &steps {
        repo::record_step(
            tx.conn(),
            id,
            &who.subject,
            action.name(),
            before,
            after,
            detail,
        )
        .await?;
        tx.append(
            action
                .by(who, target(project, id))
                .in_project(Some(project))
                .with_detail(json!({ "from": before.state, "to": after.state, "round": after.round, "detail": detail })),
        )
        .await?;
    }
    tx.finish().await?;
    for _ in &steps {
        state.metrics.audited(Outcome::Success);
    }
    // Only once committed, and in the background: mail never holds up or fails a step.
    let changes = steps.iter().map(|(_, before, after, _)| (before, after));
    state
        .notifier
        .airlock_changed(&stored, cached.as_deref(), changes);
    let mut conn = state.store.connection().await?;
    repo::load(&mut conn, project, id)
        .await?
        .ok_or_else(|| Problem::internal("the request vanished after its change"))
}

/// The request as `viewer` may see it, with its history.
pub(super) async fn view_with_history(
    state: &AppState,
    stored: &RequestRecord,
    viewer: &str,
) -> Result<RequestView, Problem> {
    let mut conn = state.store.connection().await?;
    let history = repo::history(&mut conn, &stored.id).await?;
    Ok(view(stored, history, viewer))
}

/// One change to a request: the command for the state machine, its audit action and detail, and
/// what to store besides the new state.
pub(super) struct Step<'a> {
    pub command: Command,
    pub action: AuditAction,
    pub detail: Value,
    pub data: StepData<'a>,
}

/// What a step stores besides the request's new state.
pub(super) enum StepData<'a> {
    Nothing,
    File {
        name: &'a str,
        sha256: &'a str,
        size: u64,
    },
    RemoveFile(&'a str),
    Votes(&'a [(String, VoteKind, String)]),
    /// Each file's disclosure record, with the hash it was computed from.
    Disclosure(&'a [(String, String, FileChecks)]),
}
