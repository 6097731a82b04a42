//! Airlock pages: a request (its author's view and the reviewer's review screen), a file viewed
//! in the browser, and the review queue.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use futures::StreamExt;
use maud::{Markup, html};

use super::layout::{badge, bytes, form_error, page, segment, when};
use super::preview::{self, Kind};
use super::{PageError, PageResult, Viewer, html};
use crate::airlock::repo::{self, FileRecord};
use crate::airlock::service;
use crate::airlock::state::{Direction, State as AirlockState};
use crate::airlock::view::RequestView;
use crate::app::SharedState;
use crate::audit::AuditAction;
use crate::disclosure::record::{DisclosureRecord, Outcome};
use crate::identity::PlatformRole;
use crate::policy::{self, Decision};

/// A state as the API names it (`in_review`).
pub fn state_name(state: AirlockState) -> String {
    match serde_json::to_value(state) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{state:?}"),
    }
}

pub fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Egress => "egress",
        Direction::Ingress => "ingress",
    }
}

/// What the viewer may do with a request, decided by the same policy the API enforces.
struct Abilities {
    author: bool,
    /// May see the files' contents (reviewers during review; members once released).
    see_contents: bool,
    vote: bool,
    decide: bool,
    revoke: bool,
}

fn abilities(state: &SharedState, viewer: &Viewer, request: &RequestView) -> Abilities {
    let who = &viewer.who;
    let project = state.cluster.project(&request.project);
    let author = request.author == who.subject;
    let see_contents = policy::airlock_download(
        who,
        project.as_deref(),
        &request.project,
        &request.author,
        request.direction,
        request.state,
    ) == Decision::Allow;
    let reviewer = policy::may_review(
        who,
        request.direction,
        &request.author,
        project.as_deref(),
        state.config.airlock.members_may_review,
    );
    let voted_this_round = request
        .votes
        .iter()
        .any(|v| v.round == request.round && v.reviewer == who.subject);
    Abilities {
        author,
        see_contents,
        vote: reviewer && request.state == AirlockState::InReview && !voted_this_round,
        decide: reviewer && request.state == AirlockState::Reviewed && voted_this_round,
        revoke: who.has(PlatformRole::Admin) && request.state == AirlockState::Released,
    }
}

pub async fn request(
    State(state): State<SharedState>,
    viewer: Viewer,
    Path((project, id)): Path<(String, String)>,
) -> PageResult {
    let request = match service::get(&state, &viewer.who, &project, &id).await {
        Ok(r) => r,
        Err(problem) => return Err(PageError(problem, Some(Box::new(viewer)))),
    };
    let can = abilities(&state, &viewer, &request);
    let mut files = Vec::new();
    for file in &request.files {
        files.push(file_section(&state, &viewer, &request, file, can.see_contents).await);
    }
    let earlier = if policy::reviewer_role(&viewer.who, request.direction) && !can.author {
        earlier_releases(&state, &viewer, &request).await?
    } else {
        Vec::new()
    };
    let editable =
        can.author && matches!(request.state, AirlockState::Draft | AirlockState::Returned);
    let base = format!(
        "/api/v1/projects/{}/airlock/{}",
        request.project, request.id
    );
    let body = html! {
        p.crumbs { a href={ "/projects/" (request.project) } { "Project " (request.project) } }
        h1 { (request.title) " " (badge(&state_name(request.state))) }
        dl.facts #request-facts {
            dt { "Direction" } dd { (direction_name(request.direction)) }
            dt { "Author" } dd { (request.author) }
            dt { "Opened" } dd { (when(&request.created_at)) }
            dt { "Review round" } dd { (request.round) }
            dt { "Reviews needed" } dd { (request.reviews_required) }
        }
        section aria-labelledby="context" {
            h2 #context { "Context" }
            p.prose { @if request.context.is_empty() { em { "None given." } } @else { (request.context) } }
            h3 { "Disclosure controls applied" }
            p.prose { @if request.controls.is_empty() { em { "None given." } } @else { (request.controls) } }
        }
        section aria-labelledby="files" {
            h2 #files { "Files (" (request.files.len()) ")" }
            @if !can.see_contents && !request.files.is_empty() {
                p.note { "File contents are shown to reviewers during review, and to the project's members once released. The check results are shown to everyone who can see the request." }
            }
            @for section in &files { (section) }
            @if request.files.is_empty() { p { "No files yet." } }
        }
        @if editable { (author_actions(&request, &base)) }
        @if can.author && matches!(request.state, AirlockState::Draft | AirlockState::Returned | AirlockState::Submitted | AirlockState::InReview | AirlockState::Reviewed) {
            form #withdraw data-api="POST" action={ (base) "/withdraw" } data-next="reload" data-confirm="Withdraw this request?" {
                (form_error()) button.secondary type="submit" { "Withdraw request" }
            }
        }
        @if can.vote { (vote_form(&request, &base)) }
        @if can.decide { (outcome_form(&base)) }
        @if can.revoke {
            form #revoke data-api="POST" action={ (base) "/revoke" } data-next="reload" data-confirm="Revoke this release?" {
                (form_error()) button.danger type="submit" { "Revoke release" }
            }
        }
        (votes_section(&request))
        (history_section(&request))
        @if !earlier.is_empty() {
            section aria-labelledby="earlier" {
                h2 #earlier { "Earlier releases from this project" }
                p.note { "Compare with what has already left the project: outputs that differ slightly can disclose by subtraction." }
                ul #earlier-releases {
                    @for (id, title, at, files) in &earlier {
                        li { a href={ "/projects/" (request.project) "/airlock/" (id) } { (title) } " — released " (when(at)) ": "
                             (files.iter().map(|f| f.name.clone()).collect::<Vec<_>>().join(", ")) }
                    }
                }
            }
        }
    };
    html(page(Some(&viewer), &request.title, body))
}

async fn file_section(
    state: &SharedState,
    viewer: &Viewer,
    request: &RequestView,
    file: &FileRecord,
    see_contents: bool,
) -> Markup {
    let record: Option<&DisclosureRecord> = file.disclosure.as_ref().map(|c| &c.disclosure);
    let acro = file.disclosure.as_ref().and_then(|c| c.acro.clone());
    let kind = preview::kind_of(&file.name);
    let view_url = format!(
        "/projects/{}/airlock/{}/files/{}",
        request.project,
        request.id,
        segment(&file.name)
    );
    let content = if see_contents {
        Some(file_preview(state, viewer, request, file, kind, record, &view_url).await)
    } else {
        None
    };
    html! {
        article.file data-file=(file.name) {
            h3 { (file.name) }
            p.meta { (bytes(file.size)) " · SHA-256 " code.hash { (file.sha256) } }
            @if let Some(record) = &record { (checks(record)) }
            @else if request.direction == Direction::Egress { p.note { "Checked when the request is submitted." } }
            @if let Some(acro) = &acro { (acro_results(acro)) }
            @if let Some(content) = content { (content) }
        }
    }
}

async fn file_preview(
    state: &SharedState,
    viewer: &Viewer,
    request: &RequestView,
    file: &FileRecord,
    kind: Kind,
    record: Option<&DisclosureRecord>,
    view_url: &str,
) -> Markup {
    let download = format!(
        "/api/v1/projects/{}/airlock/{}/files/{}",
        request.project,
        request.id,
        segment(&file.name)
    );
    let links = html! {
        p.links {
            @if kind.inline_mime().is_some() { a href=(view_url) target="_blank" rel="noopener" { "Open in a new tab" } " · " }
            a href=(download) download=(file.name) { "Download" }
        }
    };
    let body = match kind {
        Kind::Image { .. } => {
            html! { img.preview src=(view_url) alt={ "Contents of " (file.name) }; }
        }
        Kind::Pdf => html! { p { "A PDF: open it in a new tab to read it." } },
        Kind::Other => html! { p { "No preview for this kind of file." } },
        Kind::Table { delimiter } => match read_start(state, viewer, request, file).await {
            Ok((bytes, complete)) => {
                table_preview(&preview::table(&bytes, delimiter, complete), record)
            }
            Err(problem) => html! { p.problem role="alert" { (problem.detail) } },
        },
        Kind::Text => match read_start(state, viewer, request, file).await {
            Ok((bytes, complete)) => html! {
                pre.text-preview tabindex="0" { (preview::text(&bytes)) }
                @if !complete { p.note { "Only the start of the file is shown." } }
            },
            Err(problem) => html! { p.problem role="alert" { (problem.detail) } },
        },
    };
    html! { div.preview-box { (body) (links) } }
}

/// The first `PREVIEW_BYTES` of a file, verified and audited as a view; and whether that is all.
async fn read_start(
    state: &SharedState,
    viewer: &Viewer,
    request: &RequestView,
    file: &FileRecord,
) -> Result<(Vec<u8>, bool), crate::problem::Problem> {
    let (_, mut stream) = service::open_file(
        state,
        &viewer.who,
        &request.project,
        &request.id,
        &file.name,
        AuditAction::AirlockFileView,
    )
    .await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| crate::problem::Problem::internal(e.to_string()))?;
        let room = preview::PREVIEW_BYTES - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() == preview::PREVIEW_BYTES {
            return Ok((bytes, file.size as usize <= preview::PREVIEW_BYTES));
        }
    }
    Ok((bytes, true))
}

fn table_preview(table: &preview::Table, record: Option<&DisclosureRecord>) -> Markup {
    let flags = record.map(preview::cell_flags).unwrap_or_default();
    let columns = table.rows.iter().map(Vec::len).max().unwrap_or(0);
    html! {
        div.table-scroll tabindex="0" role="region" aria-label="File contents" {
            table.data {
                @if let Some(header) = table.rows.first() {
                    thead { tr { th scope="col" { "Row" } @for (c, cell) in header.iter().enumerate() { (cell_markup(cell, 1, c as u64 + 1, &flags, true)) } } }
                }
                tbody {
                    @for (r, row) in table.rows.iter().enumerate().skip(1) {
                        tr { th scope="row" { (r + 1) }
                            @for c in 0..columns { (cell_markup(row.get(c).map_or("", String::as_str), r as u64 + 1, c as u64 + 1, &flags, false)) } }
                    }
                }
            }
        }
        @if table.truncated { p.note { "Only the first rows are shown; the checks read the whole file." } }
        @if !flags.is_empty() { p.legend { span.flag-fail { "Highlighted" } " cells failed a check; " span.flag-warn { "outlined" } " cells have a warning. Hover or focus a cell for the rule." } }
    }
}

fn cell_markup(
    text: &str,
    row: u64,
    column: u64,
    flags: &std::collections::BTreeMap<(u64, u64), Vec<preview::Flag>>,
    header: bool,
) -> Markup {
    match flags.get(&(row, column)) {
        Some(found) => {
            let class = match preview::worst(found) {
                Outcome::Fail => "flag-fail",
                _ => "flag-warn",
            };
            let note = found
                .iter()
                .map(|f| format!("{}: {}", f.rule, f.note))
                .collect::<Vec<_>>()
                .join("; ");
            html! { td class=(class) title=(note) tabindex="0" data-row=(row) data-column=(column) aria-label={ (text) " — " (note) } { (text) } }
        }
        None if header => html! { th scope="col" { (text) } },
        None => html! { td { (text) } },
    }
}

fn checks(record: &DisclosureRecord) -> Markup {
    let outcome = |o: Outcome| match o {
        Outcome::Pass => "pass",
        Outcome::Warn => "warn",
        Outcome::Fail => "fail",
    };
    html! {
        details.checks open[record.outcome != Outcome::Pass] {
            summary { "Automated checks: " span class={ "outcome " (outcome(record.outcome)) } { (outcome(record.outcome)) }
                @if record.blocked { " — blocking" } }
            @if let Some(table) = &record.table {
                p { (table.data_rows) " data rows × " (table.columns) " columns"
                    @if !table.count_columns.is_empty() { "; counts in " (table.count_columns.join(", ")) } }
            }
            table.list.rules {
                thead { tr { th scope="col" { "Rule" } th scope="col" { "Result" } th scope="col" { "Policy" } th scope="col" { "Finding" } } }
                tbody {
                    @for rule in &record.rules {
                        tr data-rule=(rule.rule.name()) {
                            td { (rule.rule.name()) }
                            td { span class={ "outcome " (outcome(rule.outcome)) } { (outcome(rule.outcome)) } }
                            td { (format!("{:?}", rule.action).to_lowercase()) }
                            td { (rule.message)
                                @if rule.findings_total > 0 { " (" (rule.findings_total) " finding(s))" } }
                        }
                    }
                }
            }
        }
    }
}

fn acro_results(acro: &serde_json::Value) -> Markup {
    html! {
        details.acro open {
            summary { "ACRO results supplied by the author" }
            @if let Some(error) = acro.get("error").and_then(|e| e.as_str()) { p.problem { (error) } }
            @if let Some(outputs) = acro.get("outputs").and_then(|o| o.as_array()) {
                table.list {
                    thead { tr { th scope="col" { "Output" } th scope="col" { "ACRO status" } th scope="col" { "Type" } th scope="col" { "Summary" } th scope="col" { "Exception requested" } } }
                    tbody {
                        @for o in outputs {
                            tr {
                                td { (o["uid"].as_str().unwrap_or("")) }
                                td { (badge(o["status"].as_str().unwrap_or(""))) }
                                td { (o["outputType"].as_str().unwrap_or("")) }
                                td { (o["summary"].as_str().unwrap_or("")) }
                                td { (o.get("exception").and_then(|e| e.as_str()).unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn author_actions(request: &RequestView, base: &str) -> Markup {
    html! {
        section aria-labelledby="edit" {
            h2 #edit { "Files and submission" }
            @if !request.files.is_empty() {
                ul.file-actions {
                    @for f in &request.files {
                        li { (f.name) " "
                            form.inline data-api="DELETE" action={ (base) "/files/" (segment(&f.name)) } data-next="reload" {
                                button.link type="submit" aria-label={ "Remove " (f.name) } { "Remove" } (form_error()) } }
                    }
                }
            }
            form #upload data-upload action={ (base) "/files/" } {
                div.field { label for="upload-files" { "Add files" } input #upload-files type="file" name="files" multiple required; }
                progress #upload-progress max="100" value="0" hidden {}
                p #upload-status aria-live="polite" {}
                (form_error())
                button type="submit" { "Upload" }
            }
            form #submit data-api="POST" action={ (base) "/submit" } data-next="reload" {
                p { "Submitting runs the automated checks and freezes the files for review." }
                (form_error())
                button type="submit" { "Submit for review" }
            }
        }
    }
}

fn vote_form(request: &RequestView, base: &str) -> Markup {
    html! {
        section aria-labelledby="your-review" {
            h2 #your-review { "Your review (round " (request.round) ")" }
            p { "Your votes stay hidden from other reviewers until " (request.reviews_required) " reviewers have voted." }
            form #votes data-api="POST" data-kind="votes" action={ (base) "/votes" } data-next="reload" {
                @for (i, f) in request.files.iter().enumerate() {
                    fieldset.vote data-file=(f.name) {
                        legend { (f.name) }
                        @for (value, label) in [("approve", "Approve"), ("changes_requested", "Changes requested"), ("reject", "Reject")] {
                            label.choice { input type="radio" name={ "vote-" (i) } value=(value) required; " " (label) }
                        }
                        div.field { label for={ "comment-" (i) } { "Comment" } textarea id={ "comment-" (i) } name={ "comment-" (i) } rows="2" {} }
                    }
                }
                (form_error())
                button type="submit" { "Record my votes" }
            }
        }
    }
}

fn outcome_form(base: &str) -> Markup {
    html! {
        section aria-labelledby="outcome" {
            h2 #outcome { "Outcome" }
            p { "Enough reviewers have voted. The outcome must agree with the votes: approve only when every file has enough approvals." }
            form #decide data-api="POST" action={ (base) "/outcome" } data-next="reload" {
                div.field { label for="outcome-choice" { "Outcome" }
                    select #outcome-choice name="outcome" {
                        option value="approve" { "Approve and release" }
                        option value="return" { "Return to the author for changes" }
                        option value="reject" { "Reject" }
                    } }
                div.field { label for="outcome-comment" { "Comment to the author" } textarea #outcome-comment name="comment" rows="2" {} }
                (form_error())
                button type="submit" { "Record outcome" }
            }
        }
    }
}

fn votes_section(request: &RequestView) -> Markup {
    html! {
        @if !request.votes.is_empty() {
            section aria-labelledby="votes-heading" {
                h2 #votes-heading { "Votes" }
                table.list #vote-table {
                    thead { tr { th scope="col" { "Round" } th scope="col" { "Reviewer" } th scope="col" { "File" } th scope="col" { "Vote" } th scope="col" { "Comment" } } }
                    tbody { @for v in &request.votes {
                        tr { td { (v.round) } td { (v.reviewer) } td { (v.file) } td { (format!("{:?}", v.vote)) } td { (v.comment) } }
                    } }
                }
            }
        }
    }
}

fn history_section(request: &RequestView) -> Markup {
    html! {
        section aria-labelledby="history" {
            h2 #history { "History" }
            ol.history {
                @for h in &request.history {
                    li { (when(&h.at)) " — " (h.actor) ": " (h.action) " (" (state_name(h.from_state)) " → " (state_name(h.to_state)) ", round " (h.round) ")"
                        @if let Some(comment) = h.detail.get("comment").and_then(|c| c.as_str()).filter(|c| !c.is_empty()) { " — “" (comment) "”" } }
                }
            }
        }
    }
}

/// The project's released requests of the same direction that the viewer may read.
async fn earlier_releases(
    state: &SharedState,
    viewer: &Viewer,
    request: &RequestView,
) -> Result<Vec<(String, String, String, Vec<FileRecord>)>, PageError> {
    let mut conn = state.store.connection().await?;
    let project = state.cluster.project(&request.project);
    let mut found = Vec::new();
    for (stored, history) in repo::load_project(&mut conn, &request.project).await? {
        if stored.id == request.id {
            continue;
        }
        let readable = policy::airlock_read(
            &viewer.who,
            project.as_deref(),
            &request.project,
            &stored.request.author,
            stored.request.direction,
        ) == Decision::Allow;
        if readable
            && stored.request.direction == request.direction
            && stored.request.state == AirlockState::Released
        {
            let at = history
                .iter()
                .rev()
                .find(|h| h.to_state == AirlockState::Released)
                .map(|h| h.at.clone())
                .unwrap_or_default();
            found.push((
                stored.id.clone(),
                stored.title.clone(),
                at,
                stored.files.clone(),
            ));
        }
    }
    Ok(found)
}

/// A file shown in the browser (an image on the review screen, a PDF or text in a tab): the same
/// authorization and verification as a download, audited as a view.
pub async fn view_file(
    State(state): State<SharedState>,
    viewer: Viewer,
    Path((project, id, name)): Path<(String, String, String)>,
) -> PageResult {
    let Some(mime) = preview::kind_of(&name).inline_mime() else {
        return Err(PageError(
            crate::problem::Problem::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "no-preview",
                format!("`{name}` cannot be shown in the browser; download it instead"),
            ),
            Some(Box::new(viewer)),
        ));
    };
    let (_, stream) = match service::open_file(
        &state,
        &viewer.who,
        &project,
        &id,
        &name,
        AuditAction::AirlockFileView,
    )
    .await
    {
        Ok(found) => found,
        Err(problem) => return Err(PageError(problem, Some(Box::new(viewer)))),
    };
    let disposition = format!("inline; filename=\"{}\"", name.replace('"', "_"));
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            // Whatever the file holds, it runs nothing here.
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
                    .to_string(),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
