//! The start page: for the public, what Trellis is; for each signed-in role, where their work is.

use axum::extract::State;
use maud::html;

use super::layout::{badge, page};
use super::{MaybeViewer, PageResult, Viewer, html};
use crate::app::SharedState;
use crate::identity::PlatformRole;
use crate::policy;

pub async fn page_for(
    state: &SharedState,
    viewer: &Viewer,
) -> Result<maud::Markup, super::PageError> {
    let who = &viewer.who;
    let projects: Vec<_> = state
        .cluster
        .projects()
        .into_iter()
        .filter_map(|p| policy::membership(who, &p).map(|role| (p, role)))
        .collect();
    let reviewer = who.has(PlatformRole::OutputChecker) || who.has(PlatformRole::DataSteward);
    let queue = if reviewer {
        crate::airlock::service::queue(state, who)
            .await
            .map(|q| q.len())
            .ok()
    } else {
        None
    };
    let admin = who.has(PlatformRole::Admin);
    let pending = state
        .cluster
        .projects()
        .iter()
        .filter(|p| p.spec.approval.is_none() && !p.spec.closed)
        .count();
    let roles = who.role_names();
    Ok(html! {
        h1 { "Welcome, " (who.name.as_deref().unwrap_or(&who.subject)) }
        p #roles {
            @if roles.is_empty() { "You have no platform role; your access comes from your project memberships." }
            @else { "Your platform roles: " (roles.join(", ")) "." }
        }
        @if !projects.is_empty() {
            section aria-labelledby="my-projects" {
                h2 #my-projects { "Your projects" }
                ul.cards {
                    @for (project, role) in &projects {
                        @let name = project.metadata.name.clone().unwrap_or_default();
                        li {
                            a href={ "/projects/" (name) } { (project.spec.title) }
                            " " (badge(project.status.as_ref().and_then(|s| s.phase).map_or("Pending", |p| p.as_str())))
                            " — you are " (format!("{role:?}").to_lowercase())
                        }
                    }
                }
            }
        }
        @if let Some(waiting) = queue {
            section aria-labelledby="reviews" {
                h2 #reviews { "Reviews" }
                p { a href="/review" { (waiting) " request(s) await review" } }
            }
        }
        @if admin {
            section aria-labelledby="administration" {
                h2 #administration { "Administration" }
                ul {
                    li { a href="/projects" { "Projects" } " — " (pending) " awaiting approval; create, approve, suspend and close projects" }
                    li { a href="/admin/templates" { "Workspace templates" } }
                    li { a href="/admin/audit" { "Audit log" } " — search and export" }
                }
            }
        }
        @if projects.is_empty() && queue.is_none() && !admin {
            p { "You are not a member of any project yet. A project's owner or an administrator adds members." }
        }
    })
}

pub async fn handler(
    State(state): State<SharedState>,
    MaybeViewer(viewer): MaybeViewer,
) -> PageResult {
    let Some(viewer) = viewer else {
        return html(page_anonymous());
    };
    let body = page_for(&state, &viewer).await?;
    html(page(Some(&viewer), "Home", body))
}

fn page_anonymous() -> maud::Markup {
    page(
        None,
        "Welcome",
        html! {
            h1 { "Trellis" }
            p { "A Trusted Research Environment: approved research projects work on sensitive data in isolated workspaces. Data comes in, and results go out, only after independent review." }
            p { a.button href="/auth/login" { "Sign in" } }
            p { "Anyone can see which projects are approved, and what they are for, on the " a href="/register" { "public register" } "." }
        },
    )
}
