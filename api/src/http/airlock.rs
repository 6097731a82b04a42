//! `/api/v1/projects/{project}/airlock`: requests to bring data in or take results out, their
//! files, independent per-file votes, the outcome, release and revocation. Every change runs the
//! state machine in `airlock::state` inside one database transaction with its audit record.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::StrictJson;
use super::projects::cached_project;
use super::{ApiResult, Caller, SharedState, created};
use crate::airlock::checks;
use crate::airlock::repo::{self, FileChecks, FileRecord, HistoryEntry, NewRequest, Stored};
use crate::airlock::scan::Verdict as ScanVerdict;
use crate::airlock::state::{
    self, Actor, Command, Decision, Direction, Refusal, ReviewPolicy, Vote, VoteKind,
};
use crate::airlock::storage::StorageError;
use crate::identity::{PlatformRole, Principal};
use crate::policy::{self, Decision as Verdict};
use crate::problem::Problem;
use crate::resources::Project;
use crate::store::audit::{Event, Outcome};

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
#[serde(rename_all = "camelCase")]
pub struct VoteView {
    pub round: u32,
    pub reviewer: String,
    pub file: String,
    #[schema(value_type = String)]
    pub vote: VoteKind,
    pub comment: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    pub id: String,
    pub project: String,
    #[schema(value_type = String)]
    pub direction: Direction,
    pub title: String,
    pub context: String,
    pub controls: String,
    pub author: String,
    #[schema(value_type = String)]
    pub state: state::State,
    pub round: u32,
    pub reviews_required: u32,
    pub created_at: String,
    pub files: Vec<FileRecord>,
    /// Only the votes the caller may see: reviewers see others' votes once a round is reviewed.
    pub votes: Vec<VoteView>,
    pub history: Vec<HistoryEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct FileStored {
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

fn view(stored: &Stored, history: Vec<HistoryEntry>, viewer: &str) -> RequestView {
    let visible = state::visible_votes(&stored.request, viewer);
    let comment_of = |v: &Vote| {
        stored
            .comments
            .iter()
            .find(|(round, reviewer, file, _)| {
                *round == v.round && reviewer == &v.reviewer && file == &v.file
            })
            .map(|c| c.3.clone())
            .unwrap_or_default()
    };
    RequestView {
        id: stored.id.clone(),
        project: stored.project.clone(),
        direction: stored.request.direction,
        title: stored.title.clone(),
        context: stored.context.clone(),
        controls: stored.controls.clone(),
        author: stored.request.author.clone(),
        state: stored.request.state,
        round: stored.request.round,
        reviews_required: stored.reviews_required,
        created_at: stored.created_at.clone(),
        files: stored.files.clone(),
        votes: visible
            .into_iter()
            .map(|v| VoteView {
                round: v.round,
                reviewer: v.reviewer.clone(),
                file: v.file.clone(),
                vote: v.vote,
                comment: comment_of(v),
            })
            .collect(),
        history,
    }
}

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

fn too_many(detail: String) -> Problem {
    Problem::new(StatusCode::TOO_MANY_REQUESTS, "limit", detail)
}

fn refusal(refused: Refusal) -> Problem {
    match refused {
        Refusal::Forbidden(why) => Problem::forbidden(why),
        Refusal::Conflict(why) => Problem::conflict(why),
        Refusal::Invalid(why) => Problem::unprocessable(why),
    }
}

fn actor(who: &Principal, project: Option<&Project>, direction: Direction) -> Actor {
    Actor {
        subject: who.subject.clone(),
        reviewer_role: policy::reviewer_role(who, direction),
        project_member: project.is_some_and(|p| policy::membership(who, p).is_some()),
        admin: who.project_scope().is_none() && who.has(PlatformRole::Admin),
    }
}

fn target(project: &str, id: &str) -> String {
    format!("airlock/{project}/{id}")
}

impl crate::app::AppState {
    fn review_policy(&self, reviews_required: u32) -> ReviewPolicy {
        ReviewPolicy {
            reviews_required,
            members_may_review: self.config.airlock.members_may_review,
        }
    }

    async fn deny(
        &self,
        who: &Principal,
        action: &str,
        project: &str,
        id: &str,
        why: String,
    ) -> Problem {
        self.audit_denial(who, action, &target(project, id), Some(project))
            .await;
        Problem::forbidden(why)
    }

    /// Loads a request the caller may see, or says why not.
    async fn readable(
        &self,
        who: &Principal,
        project: &str,
        id: &str,
        action: &str,
    ) -> Result<(Stored, Option<Arc<Project>>), Problem> {
        let mut conn = self.store.connection().await?;
        let stored = repo::load(&mut conn, project, id).await?.ok_or_else(|| {
            Problem::not_found(format!("project `{project}` has no airlock request `{id}`"))
        })?;
        let cached = self.cluster.project(project);
        if let Verdict::Deny(why) = policy::airlock_read(
            who,
            cached.as_deref(),
            project,
            &stored.request.author,
            stored.request.direction,
        ) {
            return Err(self.deny(who, action, project, id, why).await);
        }
        Ok((stored, cached))
    }

    /// Runs `command` through the state machine in one transaction with its audit record;
    /// `write` stores what the command adds besides the state (files, votes).
    async fn step(
        &self,
        who: &Principal,
        project: &str,
        id: &str,
        step: Step<'_>,
    ) -> Result<Stored, Problem> {
        let Step {
            command,
            action,
            detail,
            write,
        } = step;
        let cached = self.cluster.project(project);
        let mut tx = self.audit.begin().await?;
        let stored = repo::load(tx.conn(), project, id).await?.ok_or_else(|| {
            Problem::not_found(format!("project `{project}` has no airlock request `{id}`"))
        })?;
        if let Verdict::Deny(why) = policy::airlock_read(
            who,
            cached.as_deref(),
            project,
            &stored.request.author,
            stored.request.direction,
        ) {
            drop(tx);
            return Err(self.deny(who, action, project, id, why).await);
        }
        let acting = actor(who, cached.as_deref(), stored.request.direction);
        let next = match state::apply(
            &stored.request,
            &acting,
            self.review_policy(stored.reviews_required),
            &command,
        ) {
            Ok(next) => next,
            Err(Refusal::Forbidden(why)) => {
                drop(tx);
                return Err(self.deny(who, action, project, id, why).await);
            }
            Err(other) => return Err(refusal(other)),
        };
        match write {
            Write::Nothing => {}
            Write::File { name, sha256, size } => {
                // Again, now that concurrent uploads to the same request are serialised.
                let limits = self.config.airlock.limits;
                let others: Vec<&FileRecord> =
                    stored.files.iter().filter(|f| f.name != name).collect();
                let bytes: u64 = others.iter().map(|f| f.size.max(0) as u64).sum::<u64>() + size;
                if others.len() >= limits.files_per_request as usize
                    || bytes > limits.bytes_per_request
                {
                    return Err(too_many(format!(
                        "a request holds at most {} files and {} bytes",
                        limits.files_per_request, limits.bytes_per_request
                    )));
                }
                repo::put_file(tx.conn(), id, name, sha256, size).await?
            }
            Write::RemoveFile(name) => repo::remove_file(tx.conn(), id, name).await?,
            Write::Votes(votes) => {
                repo::add_votes(tx.conn(), id, stored.request.round, &who.subject, votes).await?
            }
            Write::Disclosure(records) => {
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
                self.review_policy(stored.reviews_required),
                &Command::Release,
            )
            .map_err(refusal)?;
            steps.push((
                "airlock.release",
                next,
                released,
                json!({ "files": stored.files }),
            ));
        }
        for (action, before, after, detail) in &steps {
            repo::record_step(tx.conn(), id, &who.subject, action, before, after, detail).await?;
            tx.append(Event {
                actor: who.subject.clone(),
                roles: who.role_names(),
                action: action.to_string(),
                target: target(project, id),
                project: Some(project.to_string()),
                outcome: Outcome::Success,
                detail: json!({ "from": before.state, "to": after.state, "round": after.round, "detail": detail }),
            })
            .await?;
        }
        tx.finish().await?;
        for _ in &steps {
            self.metrics.audited(Outcome::Success);
        }
        // Only once committed, and in the background: mail never holds up or fails a step.
        let changes = steps.iter().map(|(_, before, after, _)| (before, after));
        self.notifier
            .airlock_changed(&stored, cached.as_deref(), changes);
        let mut conn = self.store.connection().await?;
        repo::load(&mut conn, project, id)
            .await?
            .ok_or_else(|| Problem::internal("the request vanished after its change"))
    }

    async fn answer(&self, stored: &Stored, viewer: &str) -> ApiResult<Json<RequestView>> {
        let mut conn = self.store.connection().await?;
        let history = repo::history(&mut conn, &stored.id).await?;
        Ok(Json(view(stored, history, viewer)))
    }
}

/// One change to a request: the command for the state machine, its audit action and detail, and
/// what to store besides the new state.
struct Step<'a> {
    command: Command,
    action: &'a str,
    detail: Value,
    write: Write<'a>,
}

enum Write<'a> {
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

#[utoipa::path(post, path = "/api/v1/projects/{project}/airlock", tag = "airlock", request_body = CreateBody,
    params(("project" = String, Path, description = "Project name")),
    responses((status = 201, description = "A new request in draft", body = RequestView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "The project is not Active", body = Problem, content_type = "application/problem+json")))]
async fn create_request(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(project_name): Path<String>,
    StrictJson(body): StrictJson<CreateBody>,
) -> ApiResult<Response> {
    let project = cached_project(&state, &project_name)?;
    if let Verdict::Deny(why) = policy::airlock_create(&who, &project, body.direction) {
        return Err(state
            .deny(&who, "airlock.create", &project_name, "new", why)
            .await);
    }
    if body.title.trim().is_empty() || body.title.len() > 200 {
        return Err(Problem::unprocessable("the title is 1–200 characters"));
    }
    if body.context.len() > 20_000 || body.controls.len() > 20_000 {
        return Err(Problem::unprocessable(
            "context and controls are at most 20,000 characters each",
        ));
    }
    let active = project.status.as_ref().and_then(|s| s.phase)
        == Some(crate::resources::ProjectPhase::Active);
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
    let (open, recent) = repo::project_counts(tx.conn(), &project_name, &day_ago).await?;
    if open >= limits.open_requests_per_project {
        return Err(too_many(format!(
            "the project has {open} open airlock requests, its limit; finish or withdraw one first"
        )));
    }
    if recent >= limits.requests_per_day {
        return Err(too_many(format!(
            "the project has made {recent} airlock requests in the last 24 hours, its limit"
        )));
    }
    let new = NewRequest {
        id: &id,
        project: &project_name,
        direction: body.direction,
        title: body.title.trim(),
        context: &body.context,
        controls: &body.controls,
        author: &who.subject,
        reviews_required: project.spec.egress.reviews_required,
    };
    repo::create(tx.conn(), &new).await?;
    tx.commit(Event {
        actor: who.subject.clone(),
        roles: who.role_names(),
        action: "airlock.create".into(),
        target: target(&project_name, &id),
        project: Some(project_name.clone()),
        outcome: Outcome::Success,
        detail: json!({ "direction": body.direction, "title": body.title }),
    })
    .await?;
    state.metrics.audited(Outcome::Success);
    let (stored, _) = state
        .readable(&who, &project_name, &id, "airlock.read")
        .await?;
    let Json(answer) = state.answer(&stored, &who.subject).await?;
    Ok(created(answer))
}

#[utoipa::path(get, path = "/api/v1/projects/{project}/airlock", tag = "airlock",
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, description = "The project's requests the caller may see", body = [RequestView]),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list_requests(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path(project_name): Path<String>,
) -> ApiResult<Json<Vec<RequestView>>> {
    let project = state.cluster.project(&project_name);
    if let Verdict::Deny(why) = policy::airlock_list(&who, project.as_deref(), &project_name) {
        return Err(state
            .deny(&who, "airlock.list", &project_name, "*", why)
            .await);
    }
    let mut conn = state.store.connection().await?;
    let mut views = Vec::new();
    for id in repo::in_project(&mut conn, &project_name).await? {
        if let Some(stored) = repo::load(&mut conn, &project_name, &id).await? {
            let history = repo::history(&mut conn, &id).await?;
            views.push(view(&stored, history, &who.subject));
        }
    }
    Ok(Json(views))
}

#[utoipa::path(get, path = "/api/v1/projects/{project}/airlock/{id}", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id")),
    responses((status = 200, body = RequestView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get_request(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<RequestView>> {
    let (stored, _) = state.readable(&who, &project, &id, "airlock.read").await?;
    state.answer(&stored, &who.subject).await
}

#[utoipa::path(put, path = "/api/v1/projects/{project}/airlock/{id}/files/{name}", tag = "airlock",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes"),
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id"), ("name" = String, Path, description = "File name")),
    responses((status = 201, description = "Stored, content-addressed", body = FileStored),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "The request is not draft or returned", body = Problem, content_type = "application/problem+json"),
              (status = 413, description = "Larger than the limit", body = Problem, content_type = "application/problem+json")))]
async fn put_file(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id, name)): Path<(String, String, String)>,
    body: Body,
) -> ApiResult<Response> {
    check_file_name(&name)?;
    // Check before receiving the bytes (and again in the transaction): only the author, only
    // while the request is editable.
    let (stored, cached) = state
        .readable(&who, &project, &id, "airlock.file.put")
        .await?;
    let acting = actor(&who, cached.as_deref(), stored.request.direction);
    if let Err(refused) = state::apply(
        &stored.request,
        &acting,
        state.review_policy(stored.reviews_required),
        &Command::PutFile(name.clone()),
    ) {
        if let Refusal::Forbidden(why) = refused {
            return Err(state
                .deny(&who, "airlock.file.put", &project, &id, why)
                .await);
        }
        return Err(refusal(refused));
    }
    let limits = state.config.airlock.limits;
    let replacing = stored.files.iter().find(|f| f.name == name);
    if replacing.is_none() && stored.files.len() >= limits.files_per_request as usize {
        return Err(too_many(format!(
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
        && let Some(policy_limit) = state.egress_policy.max_upload_size(&name)
    {
        limit = limit.min(policy_limit);
    }
    let blob = state
        .blobs
        .put(
            body.into_data_stream()
                .map(|chunk| chunk.map_err(|e| e.to_string())),
            limit,
        )
        .await
        .map_err(|error| match error {
            StorageError::TooLarge { limit } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
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
    let write = Write::File {
        name: &name,
        sha256: &blob.sha256,
        size: blob.size,
    };
    state
        .step(
            &who,
            &project,
            &id,
            Step {
                command: Command::PutFile(name.clone()),
                action: "airlock.file.put",
                detail,
                write,
            },
        )
        .await?;
    Ok(created(FileStored {
        name,
        sha256: blob.sha256,
        size: blob.size,
    }))
}

#[utoipa::path(delete, path = "/api/v1/projects/{project}/airlock/{id}/files/{name}", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id"), ("name" = String, Path, description = "File name")),
    responses((status = 200, body = RequestView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn delete_file(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id, name)): Path<(String, String, String)>,
) -> ApiResult<Json<RequestView>> {
    let detail = json!({ "file": name });
    let stored = state
        .step(
            &who,
            &project,
            &id,
            Step {
                command: Command::RemoveFile(name.clone()),
                action: "airlock.file.remove",
                detail,
                write: Write::RemoveFile(&name),
            },
        )
        .await?;
    state.answer(&stored, &who.subject).await
}

#[utoipa::path(get, path = "/api/v1/projects/{project}/airlock/{id}/files/{name}", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id"), ("name" = String, Path, description = "File name")),
    responses((status = 200, description = "The file's bytes, verified against their hash", content_type = "application/octet-stream"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 500, description = "The stored file no longer matches its hash", body = Problem, content_type = "application/problem+json")))]
async fn get_file(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id, name)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let (file, stream) = state
        .open_file(&who, &project, &id, &name, "airlock.file.download")
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

/// A stored file's bytes, as they are read.
pub(crate) type FileStream =
    futures::stream::BoxStream<'static, Result<bytes::Bytes, object_store::Error>>;

impl crate::app::AppState {
    /// A file's verified bytes for someone the download policy allows (reviewers during review,
    /// members once released, workspaces for released ingress), audited under `action` whether
    /// served or refused. A file that no longer matches its hash is never served.
    pub(crate) async fn open_file(
        &self,
        who: &Principal,
        project: &str,
        id: &str,
        name: &str,
        action: &str,
    ) -> Result<(FileRecord, FileStream), Problem> {
        let (stored, cached) = self.readable(who, project, id, action).await?;
        if let Verdict::Deny(why) = policy::airlock_download(
            who,
            cached.as_deref(),
            project,
            &stored.request.author,
            stored.request.direction,
            stored.request.state,
        ) {
            return Err(self.deny(who, action, project, id, why).await);
        }
        let file = stored
            .files
            .iter()
            .find(|f| f.name == name)
            .cloned()
            .ok_or_else(|| Problem::not_found(format!("the request has no file `{name}`")))?;
        let verified = self.blobs.verify_version(&file.sha256).await;
        let outcome = if verified.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        self.record(Event {
            actor: who.subject.clone(),
            roles: who.role_names(),
            action: action.into(),
            target: target(project, id),
            project: Some(project.to_string()),
            outcome,
            detail: json!({ "file": name, "sha256": file.sha256 }),
        })
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
        let stream = self
            .blobs
            .open_verified(&file.sha256, &verified)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, file = %name, "an airlock file changed after verification");
                Problem::internal(format!("`{name}` changed after it was verified; it is not served"))
            })?
            .boxed();
        Ok((file, stream))
    }
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/airlock/{id}/submit", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "In review (or blocked)", body = RequestView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "No files", body = Problem, content_type = "application/problem+json")))]
async fn submit(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<RequestView>> {
    let (stored, _) = state
        .readable(&who, &project, &id, "airlock.submit")
        .await?;
    // Egress files get the disclosure checks; a failure of a blocking rule blocks the request.
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
    // Every file, either way, goes past the malware scanner when one is configured.
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
        action: "airlock.submit",
        detail: json!({ "blocked": blocked, "blockedFiles": blocking, "infected": infected }),
        write: Write::Disclosure(&records),
    };
    let stored = state.step(&who, &project, &id, step).await?;
    state.answer(&stored, &who.subject).await
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
    if body.votes.iter().any(|v| v.comment.len() > 5_000) {
        return Err(Problem::unprocessable(
            "a comment is at most 5,000 characters",
        ));
    }
    let votes: Vec<(String, VoteKind, String)> = body
        .votes
        .into_iter()
        .map(|v| (v.file, v.vote, v.comment))
        .collect();
    let command = Command::Vote(votes.iter().map(|(f, v, _)| (f.clone(), *v)).collect());
    let detail = json!({ "votes": votes.iter().map(|(f, v, _)| json!({"file": f, "vote": v})).collect::<Vec<_>>() });
    let stored = state
        .step(
            &who,
            &project,
            &id,
            Step {
                command,
                action: "airlock.vote",
                detail,
                write: Write::Votes(&votes),
            },
        )
        .await?;
    state.answer(&stored, &who.subject).await
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/airlock/{id}/outcome", tag = "airlock", request_body = OutcomeBody,
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "Released, returned or rejected", body = RequestView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not reviewed, or the outcome disagrees with the votes, or a file failed verification", body = Problem, content_type = "application/problem+json")))]
async fn outcome(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id)): Path<(String, String)>,
    StrictJson(body): StrictJson<OutcomeBody>,
) -> ApiResult<Json<RequestView>> {
    let detail = json!({ "outcome": body.outcome, "comment": body.comment });
    if body.outcome != Decision::Approve {
        let stored = state
            .step(
                &who,
                &project,
                &id,
                Step {
                    command: Command::Decide(body.outcome),
                    action: "airlock.outcome",
                    detail,
                    write: Write::Nothing,
                },
            )
            .await?;
        return state.answer(&stored, &who.subject).await;
    }
    // Before anything is released, every file must still be exactly what was reviewed.
    let (stored, _) = state
        .readable(&who, &project, &id, "airlock.outcome")
        .await?;
    for file in &stored.files {
        if let Err(error) = state.blobs.verify(&file.sha256).await {
            tracing::error!(%error, file = %file.name, "release refused: a file failed verification");
            state
                .record(Event {
                    actor: who.subject.clone(),
                    roles: who.role_names(),
                    action: "airlock.release".into(),
                    target: target(&project, &id),
                    project: Some(project.clone()),
                    outcome: Outcome::Failure,
                    detail: json!({ "file": file.name, "sha256": file.sha256, "error": error.to_string() }),
                })
                .await;
            return Err(Problem::conflict(format!(
                "`{}` no longer matches the hash it was reviewed with; nothing was released",
                file.name
            )));
        }
    }
    let stored = state
        .step(
            &who,
            &project,
            &id,
            Step {
                command: Command::Decide(Decision::Approve),
                action: "airlock.outcome",
                detail,
                write: Write::Nothing,
            },
        )
        .await?;
    state.answer(&stored, &who.subject).await
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/airlock/{id}/withdraw", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id")),
    responses((status = 200, body = RequestView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn withdraw(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<RequestView>> {
    let stored = state
        .step(
            &who,
            &project,
            &id,
            Step {
                command: Command::Withdraw,
                action: "airlock.withdraw",
                detail: json!({}),
                write: Write::Nothing,
            },
        )
        .await?;
    state.answer(&stored, &who.subject).await
}

#[utoipa::path(post, path = "/api/v1/projects/{project}/airlock/{id}/revoke", tag = "airlock",
    params(("project" = String, Path, description = "Project name"), ("id" = String, Path, description = "Request id")),
    responses((status = 200, body = RequestView),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn revoke(
    State(state): State<SharedState>,
    Caller(who): Caller,
    Path((project, id)): Path<(String, String)>,
) -> ApiResult<Json<RequestView>> {
    let stored = state
        .step(
            &who,
            &project,
            &id,
            Step {
                command: Command::Revoke,
                action: "airlock.revoke",
                detail: json!({}),
                write: Write::Nothing,
            },
        )
        .await?;
    state.answer(&stored, &who.subject).await
}

#[derive(Serialize, ToSchema)]
pub struct QueueItem {
    pub project: String,
    pub id: String,
}

#[utoipa::path(get, path = "/api/v1/airlock/queue", tag = "airlock",
    responses((status = 200, description = "Requests awaiting the caller's review: egress for output checkers, ingress for data stewards; never their own or their projects'", body = [QueueItem]),
              (status = 403, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn queue(
    State(state): State<SharedState>,
    Caller(who): Caller,
) -> ApiResult<Json<Vec<QueueItem>>> {
    let directions: Vec<Direction> = [Direction::Egress, Direction::Ingress]
        .into_iter()
        .filter(|d| policy::reviewer_role(&who, *d))
        .collect();
    if directions.is_empty() {
        return Err(state
            .deny(
                &who,
                "airlock.queue",
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
            let member = cached
                .as_deref()
                .is_some_and(|p| policy::membership(&who, p).is_some());
            if author != who.subject && (!member || state.config.airlock.members_may_review) {
                items.push(QueueItem { project, id });
            }
        }
    }
    Ok(Json(items))
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
