//! Personal access tokens (`/tokens`): the viewer's tokens, a form that makes one for the
//! projects where they may use DataSHIELD, the new token shown once, and revoke buttons. The
//! form and the buttons call the JSON API (`/api/v1/tokens`) like every other page's actions.

use axum::extract::State;
use chrono::{Duration, Utc};
use maud::html;

use super::layout::{badge, form_error, page, when};
use super::{PageError, PageResult, Viewer, html};
use crate::app::SharedState;
use crate::tokens::service;

/// How long a new token lasts unless the person chooses otherwise (or a project ends sooner).
const DEFAULT_DAYS: i64 = 90;

pub async fn page_handler(State(state): State<SharedState>, viewer: Viewer) -> PageResult {
    let tokens = match service::list(&state, &viewer.who).await {
        Ok(tokens) => tokens,
        Err(problem) => return Err(PageError(problem, Some(Box::new(viewer)))),
    };
    let projects = service::datashield_projects(&state, &viewer.who);
    let today = Utc::now().date_naive();
    let latest_end = projects.iter().map(|p| p.spec.end_date).max();
    let earliest_end = projects.iter().map(|p| p.spec.end_date).min();
    let suggested = earliest_end.map(|end| end.min(today + Duration::days(DEFAULT_DAYS)));
    let login_url = state
        .config
        .public_url
        .join("datashield/")
        .map(|u| u.to_string())
        .unwrap_or_default();
    let body = html! {
        h1 { "Personal access tokens" }
        p.lead { "A DataSHIELD client signs in to a project's DataSHIELD server with a personal access token: give your username and the token as the password, or send the token in the "
            code { "X-Opal-Auth" } " header. The server's address is " code { (login_url) "<project>/" } "." }
        p.note { "A token works only for the projects you choose, until the end of its expiry date, and only while you may use DataSHIELD in the project. Trellis keeps only a digest of it." }
        section #new-token-shown hidden aria-live="polite" aria-labelledby="new-token-title" {
            h2 #new-token-title { "Your new token" }
            p { code #new-token-value {} }
            p.problem role="note" { "Copy it now: it will not be shown again. Trellis keeps only a digest, so a lost token cannot be recovered; revoke it and make another." }
            p { a.button href="/tokens" { "Done" } }
        }
        section aria-labelledby="your-tokens" {
            h2 #your-tokens { "Your tokens" }
            @if tokens.is_empty() { p #no-tokens { "You have no personal access tokens." } }
            @else {
                table.list #tokens {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Projects" } th scope="col" { "Created" } th scope="col" { "Expires (end of)" } th scope="col" { "Last used" } th scope="col" { "State" } th scope="col" { "Actions" } } }
                    tbody {
                        @for t in &tokens {
                            tr data-token=(t.id) {
                                td { (t.name) }
                                td { (t.projects.join(", ")) }
                                td { (when(&t.created_at)) }
                                td { (t.expires_at) }
                                td { @if let Some(at) = &t.last_used_at { (when(at)) } @else { "never" } }
                                td { (badge(if t.revoked { "revoked" } else if t.expired { "expired" } else { "active" })) }
                                td.actions {
                                    @if !t.revoked {
                                        form data-api="DELETE" action={ "/api/v1/tokens/" (t.id) } data-next="reload" data-confirm={ "Revoke token “" (t.name) "”? DataSHIELD clients using it are refused from now on." } {
                                            button.danger type="submit" { "Revoke" } (form_error())
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="create-token" {
            h2 #create-token { "Create a token" }
            @if projects.is_empty() {
                p #no-datashield-projects { "You may not use DataSHIELD in any project now: tokens are for members of Active projects." }
            } @else {
                form #new-token data-api="POST" action="/api/v1/tokens" data-show="new-token-shown" {
                    div.field { label for="token-name" { "Name (what it is for, e.g. the machine it is on)" } input #token-name name="name" required maxlength="100"; }
                    fieldset {
                        legend { "Projects it may be used for" }
                        @for p in &projects {
                            @let name = p.metadata.name.clone().unwrap_or_default();
                            label.choice {
                                input type="checkbox" name="projects" value=(name) data-kind="checklist" checked[projects.len() == 1];
                                " " (name) " — " (p.spec.title) " (ends " (p.spec.end_date) ")"
                            }
                        }
                    }
                    div.field { label for="token-expires" { "Expires at the end of (UTC; at the latest the day the first of its projects ends)" }
                        input #token-expires name="expiresAt" type="date" required min=(today) max=[latest_end] value=[suggested]; }
                    (form_error())
                    button type="submit" { "Create token" }
                }
            }
        }
    };
    html(page(Some(&viewer), "Personal access tokens", body))
}
