//! Administration pages: the workspace templates and the audit log (search and export). Project
//! administration lives on the project pages.

use axum::extract::State;
use axum::http::Uri;
use kube::Api;
use kube::api::ListParams;
use maud::html;

use super::layout::{badge, page, when};
use super::{PageError, PageResult, Viewer, html};
use crate::app::SharedState;
use crate::audit::AuditAction;
use crate::identity::PlatformRole;
use crate::problem::Problem;
use crate::resources::WorkspaceTemplate;

async fn admin_only(state: &SharedState, viewer: &Viewer, page: &str) -> Result<(), Problem> {
    if viewer.who.has(PlatformRole::Admin) && viewer.who.project_scope().is_none() {
        Ok(())
    } else {
        state
            .audit_denial(&viewer.who, AuditAction::WebAdmin, page, None)
            .await;
        Err(Problem::forbidden("only platform admins see this page"))
    }
}

pub async fn templates(State(state): State<SharedState>, viewer: Viewer) -> PageResult {
    if let Err(problem) = admin_only(&state, &viewer, "templates").await {
        return Err(PageError(problem, Some(Box::new(viewer))));
    }
    let templates = Api::<WorkspaceTemplate>::all(state.cluster.client())
        .list(&ListParams::default())
        .await
        .map_err(|e| {
            PageError(
                Problem::unavailable(format!("the cluster did not list templates: {e}")),
                None,
            )
        })?;
    let body = html! {
        h1 { "Workspace templates" }
        p { "Templates are installed with the Helm chart (" code { "workspaceTemplates" } " in its values); projects list the ones they may use." }
        table.list #templates {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Display name" } th scope="col" { "Image" } th scope="col" { "Port" } th scope="col" { "Default / max resources" } th scope="col" { "Blocked paths" } } }
            tbody { @for t in &templates.items {
                tr {
                    td { code { (t.metadata.name.as_deref().unwrap_or("")) } }
                    td { (t.spec.display_name) @if let Some(d) = &t.spec.description { br; small { (d) } } }
                    td { code { (t.spec.image) } }
                    td { (t.spec.port) }
                    td { (t.spec.resources.default.cpu.0) " CPU, " (t.spec.resources.default.memory.0) " / " (t.spec.resources.max.cpu.0) " CPU, " (t.spec.resources.max.memory.0) }
                    td { (t.spec.gateway.blocked_paths.iter().map(|p| p.0.clone()).collect::<Vec<_>>().join(", ")) }
                }
            } }
        }
    };
    html(page(Some(&viewer), "Workspace templates", body))
}

pub async fn audit(State(state): State<SharedState>, viewer: Viewer, uri: Uri) -> PageResult {
    let (query, records) = match crate::audit::search(&state, &viewer.who, uri.query()).await {
        Ok(found) => found,
        Err(problem) => return Err(PageError(problem, Some(Box::new(viewer)))),
    };
    let export = format!("/api/v1/audit/export?{}", uri.query().unwrap_or(""));
    let older = records.last().map(|r| {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("actor", &query.actor),
            ("action", &query.action),
            ("project", &query.project),
            ("outcome", &query.outcome),
            ("limit", &query.limit),
        ] {
            if !value.is_empty() {
                next.append_pair(key, value);
            }
        }
        next.append_pair("before", &r.seq.to_string());
        format!("/admin/audit?{}", next.finish())
    });
    let body = html! {
        h1 { "Audit log" }
        p { "Every change, denial and file access, newest first. Each record carries the hash of the one before it; "
            code { "trellis-api audit verify" } " checks the whole chain." }
        form.filters #audit-filter method="get" action="/admin/audit" {
            div.row {
                div.field { label for="f-actor" { "Actor" } input #f-actor name="actor" value=(query.actor); }
                div.field { label for="f-action" { "Action (or prefix, e.g. airlock)" } input #f-action name="action" value=(query.action); }
                div.field { label for="f-project" { "Project" } input #f-project name="project" value=(query.project); }
                div.field { label for="f-outcome" { "Outcome" }
                    select #f-outcome name="outcome" {
                        @for (value, label) in [("", "Any"), ("success", "Success"), ("denied", "Denied"), ("failure", "Failure")] {
                            option value=(value) selected[query.outcome == value] { (label) }
                        }
                    } }
            }
            button type="submit" { "Filter" }
            " "
            a.button.secondary #audit-export href=(export) download="trellis-audit.jsonl" { "Export as JSON Lines" }
        }
        @if records.is_empty() { p { "No records match." } }
        @else {
            table.list #audit-records {
                thead { tr { th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Actor" } th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Project" } th scope="col" { "Outcome" } th scope="col" { "Detail" } } }
                tbody { @for r in &records {
                    tr {
                        td { (r.seq) }
                        td { (when(&r.at)) }
                        td { (r.actor) }
                        td { code { (r.action) } }
                        td { (r.target) }
                        td { (r.project.as_deref().unwrap_or("")) }
                        td { (badge(r.outcome.as_str())) }
                        td { code.detail { (r.detail.to_string()) } }
                    }
                } }
            }
            @if let Some(older) = older { p { a href=(older) { "Older records" } } }
        }
    };
    html(page(Some(&viewer), "Audit log", body))
}
