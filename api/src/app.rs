//! The API's shared state, built once at start (`server::build`), and the audit and
//! authorization helpers every service uses: ask the policy, record a denial, make a change
//! together with its audit record.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::audit::AuditAction;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::identity::bearer::BearerValidator;
use crate::identity::oidc::Provider;
use crate::identity::session::Sessions;
use crate::identity::workspace_token::WorkspaceTokens;
use crate::identity::{ClaimMapping, Principal};
use crate::metrics::Metrics;
use crate::policy::{self, Action, Decision, Target};
use crate::problem::Problem;
use crate::store::Store;
use crate::store::audit::{Audit, Event, Outcome};

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub audit: Audit,
    pub sessions: Sessions,
    pub cluster: Cluster,
    pub blobs: crate::airlock::storage::BlobStore,
    pub egress_policy: crate::disclosure::Policy,
    pub scanner: Option<crate::airlock::scan::Scanner>,
    pub bearer: BearerValidator,
    pub provider: Provider,
    pub workspace_tokens: WorkspaceTokens,
    pub claims: ClaimMapping,
    pub metrics: Metrics,
    pub people: crate::notify::People,
    pub notifier: crate::notify::Notifier,
    pub tokens: crate::tokens::AccessTokens,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    /// Records an event that changes nothing else; a failure to record is logged, since the
    /// caller is being refused anyway.
    pub async fn record(&self, event: Event) {
        let outcome = event.outcome;
        match self.audit.record(event).await {
            Ok(_) => self.metrics.audited(outcome),
            Err(error) => tracing::error!(%error, "could not write an audit record"),
        }
    }

    pub async fn audit_denial(
        &self,
        who: &Principal,
        action: AuditAction,
        target: &str,
        project: Option<&str>,
    ) {
        self.record(
            action
                .by(who, target)
                .in_project(project)
                .with_outcome(Outcome::Denied)
                .with_detail(json!({ "credential": who.credential })),
        )
        .await;
    }

    /// Asks the policy; a denial is audited and becomes a 403.
    pub async fn authorize(
        &self,
        who: &Principal,
        action: Action,
        target: Target<'_>,
        target_name: &str,
        project: Option<&str>,
    ) -> Result<(), Problem> {
        match policy::decide(who, action, target) {
            Decision::Allow => Ok(()),
            Decision::Deny(why) => {
                self.audit_denial(who, action.into(), target_name, project)
                    .await;
                Err(Problem::forbidden(why))
            }
        }
    }

    /// Makes a change and its audit record together: the record is written in the same
    /// database transaction that was holding the chain while the change was made, with the
    /// change's outcome. If the change fails, the failure is recorded.
    pub async fn audited<T>(
        &self,
        who: &Principal,
        action: Action,
        target: &str,
        project: Option<&str>,
        detail: Value,
        change: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, Problem> {
        let tx = self.audit.begin().await?;
        let result = change.await;
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Success, detail),
            Err(error) => (
                Outcome::Failure,
                json!({ "request": detail, "error": error.to_string() }),
            ),
        };
        let event = AuditAction::from(action)
            .by(who, target)
            .in_project(project)
            .with_outcome(outcome)
            .with_detail(detail);
        match tx.commit(event).await {
            Ok(_) => self.metrics.audited(outcome),
            Err(error) => {
                // The change may have happened without its record. Say so loudly; the caller
                // gets an error and the operator's logs name the change.
                tracing::error!(%error, action = action.name(), target, "audit record lost for a change");
                return Err(error.into());
            }
        }
        result.map_err(Problem::from)
    }
}
