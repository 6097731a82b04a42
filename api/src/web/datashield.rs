//! The DataSHIELD part of a project's page, for its members and admins: whether the project's
//! server runs, the tables it holds, the address to connect to, and the latest calls (who, what,
//! how it ended) from the audit log.

use maud::{Markup, html};

use super::layout::{badge, when};
use crate::resources::Project;
use crate::store::audit::Record;

/// How many of the latest calls the page lists.
pub const RECENT: i64 = 20;

pub fn section(project: &Project, public_url: &str, recent: &[Record]) -> Markup {
    let name = project.metadata.name.clone().unwrap_or_default();
    let Some(spec) = project.spec.datashield_enabled() else {
        return html! {};
    };
    let status = project.status.as_ref().and_then(|s| s.datashield.as_ref());
    let ready = status.is_some_and(|s| s.ready);
    let address = format!("{}/datashield/{name}", public_url.trim_end_matches('/'));
    html! {
        section aria-labelledby="datashield" #datashield-section {
            h2 #datashield { "DataSHIELD" }
            p { "Non-disclosive analysis: members send DataSHIELD calls and receive only aggregate results that pass the disclosure checks; nobody sees a record." }
            dl.facts {
                dt { "Server" } dd #datashield-state {
                    (badge(if ready { "Ready" } else { "Not ready" }))
                    @if let Some(message) = status.and_then(|s| s.message.as_deref()) { " " (message) }
                }
                dt { "Tables" } dd #datashield-tables {
                    @for table in &spec.tables { code { (name) "." (table.name) } " " }
                }
                dt { "Connect to" } dd { code #datashield-address { (address) } br;
                    small { "with a " a href="/tokens" { "personal access token" } " as the token (X-Opal-Auth) or as the password" } }
            }
            h3 { "Latest calls" }
            @if recent.is_empty() { p { "No calls yet." } }
            @else {
                table.list #datashield-activity {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Call" } th scope="col" { "Outcome" } } }
                    tbody { @for r in recent {
                        tr {
                            td.nowrap { (when(&r.at)) }
                            td { (r.actor) }
                            td { (r.action.trim_start_matches("datashield.")) }
                            td { code { (call_of(r)) } }
                            td { (r.detail["outcome"].as_str().or(r.detail["reason"].as_str()).unwrap_or(r.outcome.as_str())) }
                        }
                    } }
                }
            }
        }
    }
}

/// For an analyst of a project that does not run DataSHIELD (yet).
pub fn not_enabled() -> Markup {
    html! {
        section aria-labelledby="datashield" #datashield-section {
            h2 #datashield { "DataSHIELD" }
            p { "As an analyst you reach this project's data only through its DataSHIELD server, which answers with non-disclosive aggregates. Your DataSHIELD client signs in with a "
                a href="/tokens" { "personal access token" } ". The project does not run a server yet: its administrators enable it once the data is in." }
        }
    }
}

fn call_of(record: &Record) -> String {
    let detail = &record.detail;
    if let Some(call) = detail["call"].as_str() {
        return call.to_owned();
    }
    if let Some(table) = detail["table"].as_str() {
        return format!("{} <- {table}", detail["symbol"].as_str().unwrap_or("?"));
    }
    detail["command"]
        .as_str()
        .map(|c| format!("command {c}"))
        .unwrap_or_default()
}
