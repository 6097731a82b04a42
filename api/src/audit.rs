//! The audit log for admins: searching it page by page, with the filters an HTML form sends.
//! (The hash-chained log itself is `store::audit`.)

use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::AppState;
use crate::identity::Principal;
use crate::policy::{self, Decision};
use crate::problem::Problem;
use crate::store::audit::{Filter, Outcome, Record};

/// The most records one page returns.
pub const MAX_PAGE: i64 = 500;

/// Filters, as an HTML form sends them: empty fields mean "any".
#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Exactly this actor (subject).
    #[serde(default)]
    pub actor: String,
    /// This action and those under it (`airlock` matches `airlock.vote`).
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub project: String,
    /// `success`, `denied` or `failure`.
    #[serde(default)]
    pub outcome: String,
    /// Only records with a lower sequence number (the next page back).
    #[serde(default)]
    pub before: String,
    /// At most this many records (default 100, at most 500).
    #[serde(default)]
    pub limit: String,
}

impl AuditQuery {
    pub fn parse(raw: Option<&str>) -> Result<Self, Problem> {
        serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| Problem::bad_request(format!("the audit query is not valid: {e}")))
    }

    pub fn filter(&self) -> Result<Filter, Problem> {
        let outcome = match self.outcome.trim() {
            "" => None,
            "success" => Some(Outcome::Success),
            "denied" => Some(Outcome::Denied),
            "failure" => Some(Outcome::Failure),
            other => {
                return Err(Problem::bad_request(format!(
                    "`outcome` is `success`, `denied` or `failure`, not `{other}`"
                )));
            }
        };
        let before = match self.before.trim() {
            "" => None,
            text => Some(text.parse::<i64>().map_err(|_| {
                Problem::bad_request(format!("`before` is a record number, not `{text}`"))
            })?),
        };
        Ok(Filter {
            actor: self.actor.trim().to_string(),
            action: self.action.trim().to_string(),
            project: self.project.trim().to_string(),
            outcome,
            before,
        })
    }

    pub fn limit(&self) -> Result<i64, Problem> {
        match self.limit.trim() {
            "" => Ok(100),
            text => text
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    Problem::bad_request(format!(
                        "`limit` must be a number from 1 to {MAX_PAGE}, not `{text}`"
                    ))
                }),
        }
    }
}

/// Only those the policy lets read the log; a refusal is audited under `action`.
pub async fn authorize(state: &AppState, who: &Principal, action: &str) -> Result<(), Problem> {
    match policy::audit_read(who) {
        Decision::Allow => Ok(()),
        Decision::Deny(why) => {
            state.audit_denial(who, action, "audit", None).await;
            Err(Problem::forbidden(why))
        }
    }
}

/// One page of the records matching the query, newest first, with the query as parsed.
pub async fn search(
    state: &AppState,
    who: &Principal,
    raw_query: Option<&str>,
) -> Result<(AuditQuery, Vec<Record>), Problem> {
    authorize(state, who, "audit.read").await?;
    let query = AuditQuery::parse(raw_query)?;
    let (filter, limit) = (query.filter()?, query.limit()?);
    let records = state.audit.search(&filter, limit).await?;
    Ok((query, records))
}
