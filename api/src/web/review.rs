//! The review queue: the requests awaiting the viewer's review, and for data stewards the form
//! that opens an ingress request.

use axum::extract::State;
use maud::html;

use super::airlock::{direction_name, state_name};
use super::layout::{badge, form_error, page, when};
use super::{PageError, PageResult, Viewer, html};
use crate::airlock::service;
use crate::app::SharedState;
use crate::identity::PlatformRole;
use crate::resources::ProjectPhase;

pub async fn queue(State(state): State<SharedState>, viewer: Viewer) -> PageResult {
    let items = match service::queue(&state, &viewer.who).await {
        Ok(items) => items,
        Err(problem) => return Err(PageError(problem, Some(Box::new(viewer)))),
    };
    let mut rows = Vec::new();
    for (project, id) in &items {
        if let Ok(request) = service::get(&state, &viewer.who, project, id).await {
            rows.push(request);
        }
    }
    let steward = viewer.who.has(PlatformRole::DataSteward);
    let projects: Vec<String> = state
        .cluster
        .projects()
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase) == Some(ProjectPhase::Active))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let body = html! {
        h1 { "Review queue" }
        @if rows.is_empty() { p #queue-empty { "Nothing awaits your review." } }
        @else {
            table.list #queue {
                thead { tr { th scope="col" { "Request" } th scope="col" { "Project" } th scope="col" { "Direction" } th scope="col" { "State" } th scope="col" { "Files" } th scope="col" { "Round" } th scope="col" { "Opened" } } }
                tbody { @for r in &rows {
                    tr data-request=(r.id) {
                        td { a href={ "/projects/" (r.project) "/airlock/" (r.id) } { (r.title) } }
                        td { (r.project) }
                        td { (direction_name(r.direction)) }
                        td { (badge(&state_name(r.state))) }
                        td { (r.files.len()) }
                        td { (r.round) }
                        td { (when(&r.created_at)) }
                    }
                } }
            }
        }
        @if steward {
            section aria-labelledby="bring-in" {
                h2 #bring-in { "Bring data in" }
                p { "Open an ingress request for a project, then upload the files on its page. Another data steward reviews it." }
                form #new-ingress data-api="POST" data-project-field="project" action="/api/v1/projects/{project}/airlock" data-next="/projects/{project}/airlock/{id}" {
                    input type="hidden" name="direction" value="ingress";
                    div.field { label for="in-project" { "Project" }
                        select #in-project name="project" data-path-only required { @for p in &projects { option value=(p) { (p) } } } }
                    div.field { label for="in-title" { "Title" } input #in-title name="title" required maxlength="200"; }
                    div.field { label for="in-context" { "What the data is and where it comes from" } textarea #in-context name="context" rows="3" {} }
                    (form_error())
                    button type="submit" { "Open ingress request" }
                }
            }
        }
    };
    html(page(Some(&viewer), "Review queue", body))
}
