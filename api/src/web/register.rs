//! The public register: every project that is or was approved, what it is for, which data it
//! uses, its dates and state, how many outputs it has released, and, for projects that analyse
//! data without seeing it, how many DataSHIELD analyses were run. No sign-in; never member
//! names, calls or file contents.

use axum::extract::State;
use maud::html;

use super::layout::{badge, page};
use super::{MaybeViewer, PageResult, html};
use crate::app::SharedState;

pub async fn page_handler(
    State(state): State<SharedState>,
    MaybeViewer(viewer): MaybeViewer,
) -> PageResult {
    let mut conn = state.store.connection().await?;
    let released = crate::airlock::repo::released_egress_counts(&mut conn).await?;
    drop(conn);
    let analyses = state
        .audit
        .counts_by_project(crate::audit::AuditAction::DataShieldAggregate.name())
        .await?;
    let mut projects: Vec<_> = state
        .cluster
        .projects()
        .into_iter()
        .filter(|p| p.spec.approval.is_some())
        .collect();
    projects.sort_by(|a, b| a.spec.start_date.cmp(&b.spec.start_date).reverse());
    let body = html! {
        h1 { "Public register of approved projects" }
        p { "Every research project approved to use data in this Trusted Research Environment, what it is for, how many results it has released after independent review, and how many non-disclosive (DataSHIELD) analyses it has run." }
        @if projects.is_empty() { p { "No project has been approved yet." } }
        @else {
            table.list #register {
                thead { tr {
                    th scope="col" { "Project" } th scope="col" { "Purpose" } th scope="col" { "Datasets" }
                    th scope="col" { "Approved" } th scope="col" { "Dates" } th scope="col" { "State" } th scope="col" { "Released outputs" } th scope="col" { "DataSHIELD analyses" }
                } }
                tbody { @for p in &projects {
                    @let name = p.metadata.name.clone().unwrap_or_default();
                    tr data-project=(name) {
                        th scope="row" { (p.spec.title) br; small { code { (name) } } }
                        td { (p.spec.purpose) }
                        td { @for d in &p.spec.datasets { (d.name) @if let Some(text) = &d.description { " — " (text) } br; } }
                        td.nowrap { @if let Some(a) = &p.spec.approval { (a.approved_at.format("%Y-%m-%d")) br; small { (a.reference) } } }
                        td.nowrap { (p.spec.start_date) br; "to " (p.spec.end_date) }
                        td.state { (badge(&p.status.as_ref().and_then(|s| s.phase).map(|ph| format!("{ph:?}")).unwrap_or_else(|| "Pending".into()))) }
                        td.released { (released.get(&name).copied().unwrap_or(0)) }
                        @let count = analyses.get(&name).copied().unwrap_or(0);
                        @if p.spec.datashield_enabled().is_some() || count > 0 {
                            td.datashield data-datashield-analyses=(count) { (count) }
                        } @else {
                            td.datashield { "—" }
                        }
                    }
                } }
            }
        }
    };
    html(page(viewer.as_ref(), "Public register", body))
}
