//! Projects: the list (with the admin's create form) and a project's page: its details and
//! governance, its workspaces with live status, and its airlock requests.

use axum::extract::{Path, State};
use maud::{Markup, html};

use super::layout::{badge, form_error, page, segment, when};
use super::{PageError, PageResult, Viewer, html};
use crate::airlock::view::RequestView;
use crate::app::SharedState;
use crate::identity::PlatformRole;
use crate::projects::ProjectView;
use crate::resources::{MemberRole, ProjectPhase};
use crate::workspaces::WorkspaceView;

pub async fn list(State(state): State<SharedState>, viewer: Viewer) -> PageResult {
    let projects: Vec<ProjectView> = crate::projects::visible(&state, &viewer.who)
        .await
        .map_err(|p| PageError(p, None))?
        .iter()
        .map(|p| crate::projects::view(p))
        .collect();
    let admin = viewer.who.has(PlatformRole::Admin);
    let body = html! {
        h1 { "Projects" }
        @if projects.is_empty() {
            p { "You are not a member of any project." }
        } @else {
            table.list #projects {
                caption.visually-hidden { "Projects you can see" }
                thead { tr { th scope="col" { "Project" } th scope="col" { "Title" } th scope="col" { "State" } th scope="col" { "Ends" } } }
                tbody {
                    @for p in &projects {
                        tr data-project=(p.name) {
                            td { a href={ "/projects/" (p.name) } { (p.name) } }
                            td { (p.title) }
                            td { (badge(p.phase.as_deref().unwrap_or("Pending"))) }
                            td { (p.end_date) }
                        }
                    }
                }
            }
        }
        @if admin { (create_form()) }
    };
    html(page(Some(&viewer), "Projects", body))
}

fn create_form() -> Markup {
    html! {
        section aria-labelledby="new-project" {
            h2 #new-project { "Create a project" }
            p { "A new project stays Pending until an administrator records its approval." }
            form #create-project data-api="POST" action="/api/v1/projects" data-next="/projects/{name}" {
                div.field { label for="p-name" { "Project id" } input #p-name name="name" required pattern="[a-z0-9]([a-z0-9\\-]*[a-z0-9])?" maxlength="54" aria-describedby="p-name-help"; small #p-name-help { "Lower-case letters, digits and dashes." } }
                div.field { label for="p-title" { "Title" } input #p-title name="title" required; }
                div.field { label for="p-purpose" { "Purpose (public)" } textarea #p-purpose name="purpose" required rows="3" {} }
                div.row {
                    div.field { label for="p-start" { "Start date" } input #p-start name="startDate" type="date" required; }
                    div.field { label for="p-end" { "End date" } input #p-end name="endDate" type="date" required; }
                }
                div.field { label for="p-members" { "Members, one per line: subject and role (owner, researcher or analyst)" } textarea #p-members name="members" data-kind="members" rows="3" placeholder="alice owner" {} }
                div.field { label for="p-datasets" { "Datasets, one per line: name, then optionally a colon and a description" } textarea #p-datasets name="datasets" data-kind="datasets" rows="2" {} }
                div.row {
                    div.field { label for="p-cpu" { "CPU" } input #p-cpu name="resources.cpu" value="8" required; }
                    div.field { label for="p-memory" { "Memory" } input #p-memory name="resources.memory" value="32Gi" required; }
                    div.field { label for="p-storage" { "Storage" } input #p-storage name="resources.storage" value="100Gi" required; }
                    div.field { label for="p-max" { "Workspaces at most" } input #p-max name="resources.maxWorkspaces" type="number" min="0" value="5" data-kind="number" required; }
                }
                div.field { label for="p-templates" { "Workspace templates (comma-separated)" } input #p-templates name="templates" data-kind="list" value="jupyter"; }
                div.field { label for="p-reviews" { "Output checkers needed per egress request" } input #p-reviews name="reviewsRequired" type="number" min="1" max="5" value="2" data-kind="number"; }
                (form_error())
                button type="submit" { "Create project" }
            }
        }
    }
}

pub async fn detail(
    State(state): State<SharedState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> PageResult {
    let project = match crate::projects::get(&state, &viewer.who, &name).await {
        Ok(p) => crate::projects::view(&p),
        Err(problem) => return Err(PageError(problem, Some(Box::new(viewer)))),
    };
    let workspaces = crate::workspaces::list(&state, &viewer.who, &name)
        .await
        .unwrap_or_default();
    // Members and admins list requests; the policy decides, the page shows what it allows.
    let requests = crate::airlock::service::list(&state, &viewer.who, &name)
        .await
        .ok();
    let admin = viewer.who.has(PlatformRole::Admin);
    let member_role = project
        .members
        .iter()
        .find(|m| m.subject == viewer.who.subject)
        .map(|m| m.role);
    // Analysts use DataSHIELD only: no workspaces, no airlock.
    let works_with_files = matches!(
        member_role,
        Some(MemberRole::Owner | MemberRole::Researcher)
    );
    let cached = state.cluster.project(&name);
    let teardown = cached
        .as_ref()
        .and_then(|p| p.status.as_ref().and_then(|s| s.teardown.clone()));
    let datashield = match &cached {
        Some(cached) if cached.spec.datashield_enabled().is_some() => {
            let filter = crate::store::audit::Filter {
                action: "datashield".into(),
                project: name.clone(),
                ..Default::default()
            };
            let recent = state
                .audit
                .search(&filter, super::datashield::RECENT)
                .await?;
            super::datashield::section(cached, state.config.public_url.as_str(), &recent)
        }
        // Analysts have nothing else here: say why there is nothing to use yet.
        _ if member_role == Some(MemberRole::Analyst) => super::datashield::not_enabled(),
        _ => html! {},
    };
    let body = html! {
        h1 { (project.title) " " (badge(project.phase.as_deref().unwrap_or("Pending"))) }
        p.lead #purpose { (project.purpose) }
        dl.facts {
            dt { "Project id" } dd { (project.name) }
            dt { "Dates" } dd { (project.start_date) " to " (project.end_date) }
            dt { "Approval" } dd {
                @if let Some(a) = &project.approval { (a.reference) " — by " (a.approved_by) ", " (a.approved_at.format("%Y-%m-%d")) }
                @else { "Awaiting approval" }
            }
            dt { "Datasets" } dd {
                @if project.datasets.is_empty() { "None listed" }
                @for d in &project.datasets { (d.name) @if let Some(text) = &d.description { " — " (text) } br; }
            }
            dt { "Templates" } dd { (project.templates.join(", ")) }
            dt { "Egress reviews" } dd { (project.reviews_required) " output checker(s) per request" }
            @if let Some(role) = member_role { dt { "Your role" } dd { (format!("{role:?}").to_lowercase()) } }
        }
        section aria-labelledby="members" {
            h2 #members { "Members" }
            ul #member-list { @for m in &project.members { li { (m.subject) " (" (format!("{:?}", m.role).to_lowercase()) ")" } } }
            @if admin { (members_form(&project)) }
        }
        @if admin { (governance(&project)) }
        @if let Some(record) = teardown {
            section aria-labelledby="teardown" {
                h2 #teardown { "Teardown record" }
                p { "Started " (record.started_at.format("%Y-%m-%d %H:%M UTC"))
                    @if let Some(done) = record.completed_at { ", completed " (done.format("%Y-%m-%d %H:%M UTC")) }
                    ". Namespace " code { (record.namespace) } " and everything in it deleted." }
                @if !record.deleted.is_empty() { ul { @for item in &record.deleted { li { code { (item) } } } } }
            }
        }
        @if works_with_files || admin { (workspaces_section(&project, &workspaces, &viewer, works_with_files)) }
        @if member_role.is_some() || admin { (datashield) }
        @if let Some(requests) = requests { (requests_section(&project, &requests, works_with_files)) }
    };
    html(page(Some(&viewer), &project.title, body))
}

fn members_form(project: &ProjectView) -> Markup {
    let lines: Vec<String> = project
        .members
        .iter()
        .map(|m| format!("{} {}", m.subject, format!("{:?}", m.role).to_lowercase()))
        .collect();
    html! {
        form #edit-members data-api="PUT" action={ "/api/v1/projects/" (project.name) "/members" } data-next="reload" {
            div.field { label for="members-text" { "Members, one per line: subject and role (owner, researcher or analyst)" }
                textarea #members-text name="members" data-kind="members" rows=(lines.len() + 2) { (lines.join("\n")) } }
            (form_error())
            button type="submit" { "Save members" }
        }
    }
}

fn governance(project: &ProjectView) -> Markup {
    let base = format!("/api/v1/projects/{}", project.name);
    html! {
        section aria-labelledby="governance" {
            h2 #governance { "Governance" }
            @if project.approval.is_none() && !project.closed {
                form #approve data-api="POST" action={ (base) "/approve" } data-next="reload" {
                    div.field { label for="approval-ref" { "Approval reference (e.g. the data access committee's decision)" } input #approval-ref name="reference" required; }
                    (form_error())
                    button type="submit" { "Record approval" }
                }
            }
            @if !project.closed {
                @if project.suspended {
                    form data-api="POST" action={ (base) "/resume" } data-next="reload" { (form_error()) button #resume type="submit" { "Resume project" } }
                } @else {
                    form data-api="POST" action={ (base) "/suspend" } data-next="reload" { (form_error()) button #suspend type="submit" { "Suspend project" } }
                }
                form #close-project data-api="POST" action={ (base) "/close" } data-next="reload" data-confirm="Close this project? Its workspaces stop and its namespace, with every volume in it, is deleted." {
                    (form_error())
                    button.danger type="submit" { "Close project" }
                }
            } @else {
                p { "This project is closed." }
            }
        }
    }
}

fn workspaces_section(
    project: &ProjectView,
    workspaces: &[WorkspaceView],
    viewer: &Viewer,
    member: bool,
) -> Markup {
    html! {
        section aria-labelledby="workspaces" {
            h2 #workspaces { "Workspaces" }
            @if workspaces.is_empty() { p { "No workspaces yet." } }
            @else {
                table.list #workspace-table data-poll={ "/api/v1/projects/" (project.name) "/workspaces" } {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Owner" } th scope="col" { "Template" } th scope="col" { "Status" } th scope="col" { "Last activity" } th scope="col" { "Actions" } } }
                    tbody {
                        @for w in workspaces {
                            @let own = w.owner == viewer.who.subject;
                            @let base = format!("/api/v1/projects/{}/workspaces/{}", project.name, w.name);
                            tr data-workspace=(w.name) {
                                td { (w.name) }
                                td { (w.owner) }
                                td { (w.template) }
                                td.phase aria-live="polite" { (badge(w.phase.as_deref().unwrap_or("Pending"))) }
                                td { @if let Some(t) = w.last_activity { (t.format("%Y-%m-%d %H:%M UTC")) } @else { "—" } }
                                td.actions {
                                    @if own {
                                        a.button.open href={ "/w/" (project.name) "/" (w.name) "/" } hidden[w.phase.as_deref() != Some("Running")] { "Open" }
                                        @if !w.running {
                                            form data-api="POST" action={ (base) "/start" } data-next="reload" { button type="submit" { "Start" } (form_error()) }
                                        }
                                    }
                                    @if w.running {
                                        form data-api="POST" action={ (base) "/stop" } data-next="reload" { button type="submit" { "Stop" } (form_error()) }
                                    }
                                    form data-api="DELETE" action=(base) data-next="reload" data-confirm={ "Delete workspace " (w.name) " and its home volume?" } { button.danger type="submit" { "Delete" } (form_error()) }
                                }
                            }
                        }
                    }
                }
            }
            @if member && project.phase.as_deref() == Some(ProjectPhase::Active.as_str()) {
                form #new-workspace data-api="POST" action={ "/api/v1/projects/" (project.name) "/workspaces" } data-next="reload" {
                    h3 { "Request a workspace" }
                    div.row {
                        div.field { label for="ws-name" { "Name" } input #ws-name name="name" required pattern="[a-z0-9]([a-z0-9\\-]*[a-z0-9])?" maxlength="52"; }
                        div.field { label for="ws-template" { "Template" }
                            select #ws-template name="template" required { @for t in &project.templates { option value=(t) { (t) } } } }
                    }
                    (form_error())
                    button type="submit" { "Request workspace" }
                }
            }
        }
    }
}

fn requests_section(project: &ProjectView, requests: &[RequestView], member: bool) -> Markup {
    html! {
        section aria-labelledby="airlock" {
            h2 #airlock { "Airlock requests" }
            @if requests.is_empty() { p { "No requests yet." } }
            @else {
                table.list #request-table {
                    thead { tr { th scope="col" { "Title" } th scope="col" { "Direction" } th scope="col" { "State" } th scope="col" { "Author" } th scope="col" { "Created" } } }
                    tbody {
                        @for r in requests {
                            tr data-request=(r.id) {
                                td { a href={ "/projects/" (project.name) "/airlock/" (r.id) } { (r.title) } }
                                td { (format!("{:?}", r.direction).to_lowercase()) }
                                td { (badge(&crate::web::airlock::state_name(r.state))) }
                                td { (r.author) }
                                td { (when(&r.created_at)) }
                            }
                        }
                    }
                }
            }
            @let released: Vec<_> = requests.iter().filter(|r| r.state == crate::airlock::state::State::Released && r.direction == crate::airlock::state::Direction::Egress).collect();
            @if member && !released.is_empty() {
                h3 { "Released outputs" }
                ul #released-files {
                    @for r in released {
                        @for f in &r.files {
                            li { a download=(f.name) href={ "/api/v1/projects/" (project.name) "/airlock/" (r.id) "/files/" (segment(&f.name)) } { (f.name) } " — from “" (r.title) "”" }
                        }
                    }
                }
            }
            @if member && project.phase.as_deref() == Some(ProjectPhase::Active.as_str()) {
                (new_request_form(&project.name, true))
            }
        }
    }
}

/// Opening a request; egress is normally opened from inside a workspace with the CLI, but a
/// member may start one here and add the files from the workspace.
pub fn new_request_form(project: &str, allow_egress: bool) -> Markup {
    html! {
        form #new-request data-api="POST" action={ "/api/v1/projects/" (project) "/airlock" } data-next={ "/projects/" (project) "/airlock/{id}" } {
            h3 { "Open an airlock request" }
            div.field { label for="rq-direction" { "Direction" }
                select #rq-direction name="direction" {
                    @if allow_egress { option value="egress" { "Egress: results out" } }
                    option value="ingress" { "Ingress: data in" }
                } }
            div.field { label for="rq-title" { "Title" } input #rq-title name="title" required maxlength="200"; }
            div.field { label for="rq-context" { "Context for the reviewers" } textarea #rq-context name="context" rows="3" {} }
            div.field { label for="rq-controls" { "Disclosure controls applied" } textarea #rq-controls name="controls" rows="2" {} }
            (form_error())
            button type="submit" { "Open request" }
        }
    }
}
