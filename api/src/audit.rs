//! The audit log for admins: searching it page by page, with the filters an HTML form sends.
//! (The hash-chained log itself is `store::audit`.)

use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::AppState;
use crate::identity::Principal;
use crate::policy::{self, Decision};
use crate::problem::Problem;
use crate::store::audit::{Event, Filter, Outcome, Record};

/// Everything the audit log records, by the name it is recorded under (what auditors filter on;
/// the names are a contract: never rename one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    /// A project or workspace action, as the policy decides it.
    Decided(policy::Action),
    AirlockCreate,
    AirlockRead,
    AirlockList,
    AirlockQueue,
    AirlockFilePut,
    AirlockFileRemove,
    AirlockFileView,
    AirlockFileDownload,
    AirlockSubmit,
    AirlockVote,
    AirlockOutcome,
    AirlockWithdraw,
    AirlockRevoke,
    AirlockRelease,
    AuthLogin,
    AuthLogout,
    /// A workspace origin's sign-in (the gateway's own session).
    AuthWorkspace,
    /// A bearer token refused.
    AuthBearer,
    /// A workspace's service-account token refused.
    AuthWorkspaceToken,
    /// A state-changing form without a valid CSRF token.
    Csrf,
    AuditRead,
    AuditExport,
    /// The admin pages.
    WebAdmin,
    WorkspaceGateway,
    WorkspaceGatewayBlocked,
    /// A personal access token made (never the token itself: its id, name and projects).
    TokenCreate,
    /// A personal access token listing refused.
    TokenList,
    TokenRevoke,
    /// A DataSHIELD session opened or closed through `/datashield/<project>/`.
    DataShieldSessionOpen,
    DataShieldSessionClose,
    /// A table or an expression assigned to a symbol in a DataSHIELD session (the call text kept).
    DataShieldAssign,
    /// An aggregate call (the call text kept): what returns data to the analyst.
    DataShieldAggregate,
    /// The outcome of an asynchronous call, when the analyst's client learns it.
    DataShieldResult,
    /// A DataSHIELD call refused before it reached the project's server (token, membership,
    /// project state).
    DataShieldRefused,
}

impl AuditAction {
    pub fn name(self) -> &'static str {
        match self {
            AuditAction::Decided(action) => action.name(),
            AuditAction::AirlockCreate => "airlock.create",
            AuditAction::AirlockRead => "airlock.read",
            AuditAction::AirlockList => "airlock.list",
            AuditAction::AirlockQueue => "airlock.queue",
            AuditAction::AirlockFilePut => "airlock.file.put",
            AuditAction::AirlockFileRemove => "airlock.file.remove",
            AuditAction::AirlockFileView => "airlock.file.view",
            AuditAction::AirlockFileDownload => "airlock.file.download",
            AuditAction::AirlockSubmit => "airlock.submit",
            AuditAction::AirlockVote => "airlock.vote",
            AuditAction::AirlockOutcome => "airlock.outcome",
            AuditAction::AirlockWithdraw => "airlock.withdraw",
            AuditAction::AirlockRevoke => "airlock.revoke",
            AuditAction::AirlockRelease => "airlock.release",
            AuditAction::AuthLogin => "auth.login",
            AuditAction::AuthLogout => "auth.logout",
            AuditAction::AuthWorkspace => "auth.workspace",
            AuditAction::AuthBearer => "auth.bearer",
            AuditAction::AuthWorkspaceToken => "auth.workspace-token",
            AuditAction::Csrf => "csrf",
            AuditAction::AuditRead => "audit.read",
            AuditAction::AuditExport => "audit.export",
            AuditAction::WebAdmin => "web.admin",
            AuditAction::WorkspaceGateway => "workspace.gateway",
            AuditAction::WorkspaceGatewayBlocked => "workspace.gateway.blocked",
            AuditAction::TokenCreate => "token.create",
            AuditAction::TokenList => "token.list",
            AuditAction::TokenRevoke => "token.revoke",
            AuditAction::DataShieldSessionOpen => "datashield.session.open",
            AuditAction::DataShieldSessionClose => "datashield.session.close",
            AuditAction::DataShieldAssign => "datashield.assign",
            AuditAction::DataShieldAggregate => "datashield.aggregate",
            AuditAction::DataShieldResult => "datashield.result",
            AuditAction::DataShieldRefused => "datashield.refused",
        }
    }
}

impl AuditAction {
    /// This action by `who` on `target`: a success outside any project with no detail, until the
    /// event's builders say otherwise.
    pub fn by(self, who: &Principal, target: impl Into<String>) -> Event {
        Event {
            actor: who.subject.clone(),
            roles: who.role_names(),
            ..self.anonymous(target)
        }
    }

    /// This action by nobody signed in (a refused sign-in, a refused token).
    pub fn anonymous(self, target: impl Into<String>) -> Event {
        Event {
            actor: "anonymous".into(),
            roles: Vec::new(),
            action: self.name().into(),
            target: target.into(),
            project: None,
            outcome: Outcome::Success,
            detail: serde_json::Value::Null,
        }
    }
}

impl From<policy::Action> for AuditAction {
    fn from(action: policy::Action) -> AuditAction {
        AuditAction::Decided(action)
    }
}

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
pub async fn authorize(
    state: &AppState,
    who: &Principal,
    action: AuditAction,
) -> Result<(), Problem> {
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
    authorize(state, who, AuditAction::AuditRead).await?;
    let query = AuditQuery::parse(raw_query)?;
    let (filter, limit) = (query.filter()?, query.limit()?);
    let records = state.audit.search(&filter, limit).await?;
    Ok((query, records))
}

#[cfg(test)]
mod tests {
    use super::AuditAction::{self, *};
    use crate::identity::{Credential, PlatformRole, Principal};
    use crate::policy::Action;
    use crate::store::audit::Outcome;

    #[test]
    fn an_event_names_who_did_what_to_what_and_builds_from_there() {
        let who = Principal {
            subject: "alice".into(),
            name: None,
            email: None,
            roles: [PlatformRole::Admin].into(),
            credential: Credential::Bearer,
        };
        let event = AirlockVote.by(&who, "demo/r1");
        assert_eq!(
            (event.actor.as_str(), event.roles.clone()),
            ("alice", vec!["admin".to_string()])
        );
        assert_eq!(
            (event.action.as_str(), event.target.as_str()),
            ("airlock.vote", "demo/r1")
        );
        assert_eq!(
            (event.project.clone(), event.outcome, event.detail.clone()),
            (None, Outcome::Success, serde_json::Value::Null)
        );
        let event = event
            .in_project(Some("demo"))
            .with_outcome(Outcome::Denied)
            .with_detail(serde_json::json!({"why": "x"}));
        assert_eq!(
            (event.project.as_deref(), event.outcome),
            (Some("demo"), Outcome::Denied)
        );
        assert_eq!(event.detail["why"], "x");
        let anonymous = AuthBearer.anonymous("api");
        assert_eq!(
            (anonymous.actor.as_str(), anonymous.roles.len()),
            ("anonymous", 0)
        );
    }

    #[test]
    fn every_recorded_action_has_a_name_of_its_own_under_its_family() {
        let others = [
            AirlockCreate,
            AirlockRead,
            AirlockList,
            AirlockQueue,
            AirlockFilePut,
            AirlockFileRemove,
            AirlockFileView,
            AirlockFileDownload,
            AirlockSubmit,
            AirlockVote,
            AirlockOutcome,
            AirlockWithdraw,
            AirlockRevoke,
            AirlockRelease,
            AuthLogin,
            AuthLogout,
            AuthWorkspace,
            AuthBearer,
            AuthWorkspaceToken,
            Csrf,
            AuditRead,
            AuditExport,
            WebAdmin,
            WorkspaceGateway,
            WorkspaceGatewayBlocked,
            TokenCreate,
            TokenList,
            TokenRevoke,
            DataShieldSessionOpen,
            DataShieldSessionClose,
            DataShieldAssign,
            DataShieldAggregate,
            DataShieldResult,
            DataShieldRefused,
        ];
        let all: Vec<AuditAction> = Action::ALL
            .iter()
            .map(|&a| AuditAction::from(a))
            .chain(others)
            .collect();
        let mut names: Vec<&str> = all.iter().map(|a| a.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "two actions share a name");
        // Auditors filter by family (`airlock` matches `airlock.vote`); names stay what they were.
        assert_eq!(AirlockFileDownload.name(), "airlock.file.download");
        assert_eq!(AuthWorkspaceToken.name(), "auth.workspace-token");
        assert_eq!(TokenCreate.name(), "token.create");
        assert_eq!(TokenRevoke.name(), "token.revoke");
        assert_eq!(
            AuditAction::from(Action::UseDataShield).name(),
            "datashield.use"
        );
        assert_eq!(
            AuditAction::from(Action::CloseProject).name(),
            "project.close"
        );
        assert!(
            names.iter().all(|n| *n == "csrf" || n.contains('.')),
            "{names:?}"
        );
    }
}
