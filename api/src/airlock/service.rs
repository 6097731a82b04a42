//! The airlock's service: every operation on a request, for the JSON API and the pages alike.
//! Each change runs the state machine in `airlock::state` inside one database transaction with
//! its audit record; reads go through the same policy and are audited when refused.

use futures::StreamExt;
use serde_json::{Value, json};

use super::checks;
use super::repo::{self, FileRecord, NewRequest};
use super::scan::Verdict as ScanVerdict;
use super::state::{self, Command, Decision, Direction, Refusal, VoteKind};
use super::step::{
    Step, StepData, actor, deny, limit_reached, load_readable, refusal, review_policy, run_step,
    target, view_with_history,
};
use super::storage::{StorageError, StoredBlob};
use super::view::{RequestView, view};
use crate::app::AppState;
use crate::audit::AuditAction;
use crate::identity::Principal;
use crate::policy::{self, Decision as Verdict};
use crate::problem::Problem;
use crate::resources::ProjectPhase;
use crate::store::audit::Outcome;

/// A file name a person would recognise and no file system would misread.
pub fn check_file_name(name: &str) -> Result<(), Problem> {
    let bad = name.is_empty()
        || name.len() > 200
        || name == "."
        || name == ".."
        || name.starts_with(' ')
        || name.ends_with(' ')
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\');
    if bad {
        return Err(Problem::unprocessable(
            "a file name is 1–200 characters, without slashes, control characters, leading or trailing spaces, and not . or ..",
        ));
    }
    Ok(())
}

/// A stored file's bytes, as they are read.
pub type FileStream =
    futures::stream::BoxStream<'static, Result<bytes::Bytes, object_store::Error>>;

/// A file's verified bytes for someone the download policy allows (reviewers during review,
/// members once released, workspaces for released ingress), audited under `action` whether
/// served or refused. A file that no longer matches its hash is never served.
pub async fn open_file(
    state: &AppState,
    who: &Principal,
    project: &str,
    id: &str,
    name: &str,
    action: AuditAction,
) -> Result<(FileRecord, FileStream), Problem> {
    let (stored, cached) = load_readable(state, who, project, id, action).await?;
    if let Verdict::Deny(why) = policy::airlock_download(
        who,
        cached.as_deref(),
        project,
        &stored.request.author,
        stored.request.direction,
        stored.request.state,
    ) {
        return Err(deny(state, who, action, project, id, why).await);
    }
    let file = stored
        .files
        .iter()
        .find(|f| f.name == name)
        .cloned()
        .ok_or_else(|| Problem::not_found(format!("the request has no file `{name}`")))?;
    let verified = state.blobs.verify_version(&file.sha256).await;
    let outcome = if verified.is_ok() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    state
        .record(
            action
                .by(who, target(project, id))
                .in_project(Some(project))
                .with_outcome(outcome)
                .with_detail(json!({ "file": name, "sha256": file.sha256 })),
        )
        .await;
    let verified = match verified {
        Ok(verified) => verified,
        Err(error) => {
            tracing::error!(%error, file = %name, "an airlock file failed verification");
            return Err(Problem::internal(format!(
                "`{name}` does not match its recorded hash; it is not served"
            )));
        }
    };
    // Exactly the version just checked: a file swapped in between is refused, not served.
    let stream = state
        .blobs
        .open_verified(&file.sha256, &verified)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, file = %name, "an airlock file changed after verification");
            Problem::internal(format!(
                "`{name}` changed after it was verified; it is not served"
            ))
        })?
        .boxed();
    Ok((file, stream))
}

/// What a new request says about itself.
pub struct NewRequestFields<'a> {
    pub direction: Direction,
    pub title: &'a str,
    pub context: &'a str,
    pub controls: &'a str,
}

/// Opens a request in draft, within the project's limits.
pub async fn create(
    state: &AppState,
    who: &Principal,
    project_name: &str,
    fields: NewRequestFields<'_>,
) -> Result<RequestView, Problem> {
    let project = crate::projects::cached(state, project_name)?;
    if let Verdict::Deny(why) = policy::airlock_create(who, &project, fields.direction) {
        return Err(deny(
            state,
            who,
            AuditAction::AirlockCreate,
            project_name,
            "new",
            why,
        )
        .await);
    }
    if fields.title.trim().is_empty() || fields.title.len() > 200 {
        return Err(Problem::unprocessable("the title is 1–200 characters"));
    }
    if fields.context.len() > 20_000 || fields.controls.len() > 20_000 {
        return Err(Problem::unprocessable(
            "context and controls are at most 20,000 characters each",
        ));
    }
    let active = project.status.as_ref().and_then(|s| s.phase) == Some(ProjectPhase::Active);
    if !active {
        return Err(Problem::conflict(
            "airlock requests are made while the project is Active",
        ));
    }
    let id = crate::identity::session::random_token()[..22]
        .to_lowercase()
        .replace(['-', '_'], "x");
    let mut tx = state.audit.begin().await?;
    // Counted inside the transaction that holds the audit head, so two requests at once cannot
    // both slip under a limit.
    let limits = state.config.airlock.limits;
    let day_ago = crate::store::timestamp(chrono::Utc::now() - chrono::Duration::hours(24));
    let (open, recent) = repo::project_counts(tx.conn(), project_name, &day_ago).await?;
    if open >= limits.open_requests_per_project {
        return Err(limit_reached(format!(
            "the project has {open} open airlock requests, its limit; finish or withdraw one first"
        )));
    }
    if recent >= limits.requests_per_day {
        return Err(limit_reached(format!(
            "the project has made {recent} airlock requests in the last 24 hours, its limit"
        )));
    }
    let new = NewRequest {
        id: &id,
        project: project_name,
        direction: fields.direction,
        title: fields.title.trim(),
        context: fields.context,
        controls: fields.controls,
        author: &who.subject,
        reviews_required: project.spec.egress.reviews_required,
    };
    repo::create(tx.conn(), &new).await?;
    tx.commit(
        AuditAction::AirlockCreate
            .by(who, target(project_name, &id))
            .in_project(Some(project_name))
            .with_detail(json!({ "direction": fields.direction, "title": fields.title })),
    )
    .await?;
    state.metrics.audited(Outcome::Success);
    let (stored, _) =
        load_readable(state, who, project_name, &id, AuditAction::AirlockRead).await?;
    view_with_history(state, &stored, &who.subject).await
}

/// The project's requests the caller may see.
pub async fn list(
    state: &AppState,
    who: &Principal,
    project_name: &str,
) -> Result<Vec<RequestView>, Problem> {
    let project = state.cluster.project(project_name);
    if let Verdict::Deny(why) = policy::airlock_list(who, project.as_deref(), project_name) {
        return Err(deny(state, who, AuditAction::AirlockList, project_name, "*", why).await);
    }
    let mut conn = state.store.connection().await?;
    let loaded = repo::load_project(&mut conn, project_name).await?;
    Ok(loaded
        .into_iter()
        .map(|(stored, history)| view(&stored, history, &who.subject))
        .collect())
}

/// One request, if the caller may see it.
pub async fn get(
    state: &AppState,
    who: &Principal,
    project: &str,
    id: &str,
) -> Result<RequestView, Problem> {
    let (stored, _) = load_readable(state, who, project, id, AuditAction::AirlockRead).await?;
    view_with_history(state, &stored, &who.subject).await
}

/// Stores a file (streamed, content-addressed) in a request its author is still editing.
pub async fn put_file<S, E>(
    state: &AppState,
    who: &Principal,
    project: &str,
    id: &str,
    name: &str,
    body: S,
) -> Result<StoredBlob, Problem>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send,
    E: std::fmt::Display,
{
    check_file_name(name)?;
    // Check before receiving the bytes (and again in the transaction): only the author, only
    // while the request is editable.
    let (stored, cached) =
        load_readable(state, who, project, id, AuditAction::AirlockFilePut).await?;
    let acting = actor(who, cached.as_deref(), stored.request.direction);
    if let Err(refused) = state::apply(
        &stored.request,
        &acting,
        review_policy(state, stored.reviews_required),
        &Command::PutFile(name.to_owned()),
    ) {
        if let Refusal::Forbidden(why) = refused {
            return Err(deny(state, who, AuditAction::AirlockFilePut, project, id, why).await);
        }
        return Err(refusal(refused));
    }
    let limits = state.config.airlock.limits;
    let replacing = stored.files.iter().find(|f| f.name == name);
    if replacing.is_none() && stored.files.len() >= limits.files_per_request as usize {
        return Err(limit_reached(format!(
            "a request holds at most {} files",
            limits.files_per_request
        )));
    }
    let others: u64 = stored
        .files
        .iter()
        .filter(|f| f.name != name)
        .map(|f| f.size.max(0) as u64)
        .sum();
    let room = limits.bytes_per_request.saturating_sub(others);
    let mut limit = state.config.airlock.max_file_bytes.min(room);
    if stored.request.direction == Direction::Egress
        && let Some(policy_limit) = state.egress_policy.max_upload_size(name)
    {
        limit = limit.min(policy_limit);
    }
    let blob = state
        .blobs
        .put(body.map(|chunk| chunk.map_err(|e| e.to_string())), limit)
        .await
        .map_err(|error| match error {
            StorageError::TooLarge { limit } => Problem::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the file is larger than the {limit}-byte limit; nothing was stored"),
            ),
            StorageError::Interrupted(why) => Problem::bad_request(format!(
                "the upload was interrupted ({why}); nothing was stored"
            )),
            other => {
                tracing::error!(error = %other, "storing an airlock file failed");
                Problem::unavailable("the file store is unavailable; nothing was stored")
            }
        })?;
    let detail = json!({ "file": name, "sha256": blob.sha256, "size": blob.size });
    let data = StepData::File {
        name,
        sha256: &blob.sha256,
        size: blob.size,
    };
    run_step(
        state,
        who,
        project,
        id,
        Step {
            command: Command::PutFile(name.to_owned()),
            action: AuditAction::AirlockFilePut,
            detail,
            data,
        },
    )
    .await?;
    Ok(blob)
}

/// Removes a file from a request its author is still editing.
pub async fn delete_file(
    state: &AppState,
    who: &Principal,
    project: &str,
    id: &str,
    name: &str,
) -> Result<RequestView, Problem> {
    let step = Step {
        command: Command::RemoveFile(name.to_owned()),
        action: AuditAction::AirlockFileRemove,
        detail: json!({ "file": name }),
        data: StepData::RemoveFile(name),
    };
    let stored = run_step(state, who, project, id, step).await?;
    view_with_history(state, &stored, &who.subject).await
}

/// Submits a request for review: egress files get the disclosure checks (a failure of a
/// blocking rule blocks the request), and every file goes past the malware scanner when one is
/// configured.
pub async fn submit(
    state: &AppState,
    who: &Principal,
    project: &str,
    id: &str,
) -> Result<RequestView, Problem> {
    let (stored, _) = load_readable(state, who, project, id, AuditAction::AirlockSubmit).await?;
    let mut records = Vec::new();
    if stored.request.direction == Direction::Egress
        && stored.request.author == who.subject
        && stored.request.state.editable()
    {
        for file in &stored.files {
            let checks =
                checks::check_file(&state.blobs, &state.egress_policy, file, &stored.files).await?;
            records.push((file.name.clone(), file.sha256.clone(), checks));
        }
    }
    let mut infected = Vec::new();
    if let Some(scanner) = &state.scanner
        && stored.request.author == who.subject
        && stored.request.state.editable()
    {
        for file in &stored.files {
            let bytes = state
                .blobs
                .open(&file.sha256)
                .await
                .map_err(|e| Problem::internal(e.to_string()))?
                .map(|chunk| chunk.map_err(std::io::Error::other));
            match scanner.scan(bytes).await {
                Ok(ScanVerdict::Clean) => {}
                Ok(ScanVerdict::Infected(signature)) => {
                    infected.push(json!({ "file": file.name, "signature": signature }));
                }
                Err(error) => {
                    tracing::error!(%error, "malware scan failed; the request stays as it was");
                    return Err(Problem::unavailable(format!(
                        "{error}; nothing was submitted"
                    )));
                }
            }
        }
    }
    let blocking: Vec<String> = records
        .iter()
        .filter(|(_, _, checks)| checks.disclosure.blocked)
        .map(|(name, _, _)| name.clone())
        .collect();
    let blocked = !blocking.is_empty() || !infected.is_empty();
    let step = Step {
        command: Command::Submit { blocked },
        action: AuditAction::AirlockSubmit,
        detail: json!({ "blocked": blocked, "blockedFiles": blocking, "infected": infected }),
        data: StepData::Disclosure(&records),
    };
    let stored = run_step(state, who, project, id, step).await?;
    view_with_history(state, &stored, &who.subject).await
}

/// A reviewer's votes, one per file, with comments (`(file, vote, comment)`).
pub async fn vote(
    state: &AppState,
    who: &Principal,
    project: &str,
    id: &str,
    votes: Vec<(String, VoteKind, String)>,
) -> Result<RequestView, Problem> {
    if votes.iter().any(|(_, _, comment)| comment.len() > 5_000) {
        return Err(Problem::unprocessable(
            "a comment is at most 5,000 characters",
        ));
    }
    let command = Command::Vote(votes.iter().map(|(f, v, _)| (f.clone(), *v)).collect());
    let detail = json!({ "votes": votes.iter().map(|(f, v, _)| json!({"file": f, "vote": v})).collect::<Vec<_>>() });
    let step = Step {
        command,
        action: AuditAction::AirlockVote,
        detail,
        data: StepData::Votes(&votes),
    };
    let stored = run_step(state, who, project, id, step).await?;
    view_with_history(state, &stored, &who.subject).await
}

/// The outcome of a reviewed request. An approval releases the files, which must still be
/// exactly what was reviewed.
pub async fn outcome(
    state: &AppState,
    who: &Principal,
    project: &str,
    id: &str,
    decision: Decision,
    comment: &str,
) -> Result<RequestView, Problem> {
    if decision == Decision::Approve {
        let (stored, _) =
            load_readable(state, who, project, id, AuditAction::AirlockOutcome).await?;
        for file in &stored.files {
            if let Err(error) = state.blobs.verify(&file.sha256).await {
                tracing::error!(%error, file = %file.name, "release refused: a file failed verification");
                state
                    .record(
                        AuditAction::AirlockRelease
                            .by(who, target(project, id))
                            .in_project(Some(project))
                            .with_outcome(Outcome::Failure)
                            .with_detail(json!({ "file": file.name, "sha256": file.sha256, "error": error.to_string() })),
                    )
                    .await;
                return Err(Problem::conflict(format!(
                    "`{}` no longer matches the hash it was reviewed with; nothing was released",
                    file.name
                )));
            }
        }
    }
    let detail = json!({ "outcome": decision, "comment": comment });
    transition(
        state,
        who,
        project,
        id,
        Command::Decide(decision),
        AuditAction::AirlockOutcome,
        detail,
    )
    .await
}

/// A change of state that stores nothing else (withdraw, revoke, an outcome).
pub async fn transition(
    state: &AppState,
    who: &Principal,
    project: &str,
    id: &str,
    command: Command,
    action: AuditAction,
    detail: Value,
) -> Result<RequestView, Problem> {
    let step = Step {
        command,
        action,
        detail,
        data: StepData::Nothing,
    };
    let stored = run_step(state, who, project, id, step).await?;
    view_with_history(state, &stored, &who.subject).await
}

/// Requests awaiting the caller's review, as `(project, id)`: egress for output checkers,
/// ingress for data stewards; never their own, nor (unless allowed) their projects'.
pub async fn queue(state: &AppState, who: &Principal) -> Result<Vec<(String, String)>, Problem> {
    let directions: Vec<Direction> = [Direction::Egress, Direction::Ingress]
        .into_iter()
        .filter(|d| policy::reviewer_role(who, *d))
        .collect();
    if directions.is_empty() {
        return Err(deny(
            state,
            who,
            AuditAction::AirlockQueue,
            "-",
            "queue",
            "the review queue is for output checkers and data stewards".into(),
        )
        .await);
    }
    let mut conn = state.store.connection().await?;
    let mut items = Vec::new();
    for direction in directions {
        for (id, project, author) in repo::in_states(
            &mut conn,
            direction,
            &[state::State::InReview, state::State::Reviewed],
        )
        .await?
        {
            let cached = state.cluster.project(&project);
            if policy::may_review(
                who,
                direction,
                &author,
                cached.as_deref(),
                state.config.airlock.members_may_review,
            ) {
                items.push((project, id));
            }
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain() {
        for good in ["table.csv", "Figure 1.png", "résumé.txt", ".hidden"] {
            assert!(check_file_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "..\\x",
            "a\nb",
            " lead",
            "trail ",
            &"x".repeat(201),
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
