//! What to do with a Project, decided from what was observed: the phase, the four conditions,
//! whether to stop workspaces or tear down, and when to look again. Pure functions; the
//! controller observes, asks, carries the plan out and writes the status.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;

use super::lifecycle::{Lifecycle, PendingReason, next_boundary};
use crate::reconcile::conditions::{Check, condition};
use crate::resources::names::namespace_name;
use crate::resources::{Project, ProjectPhase, ProjectSpec, ProjectStatus, TeardownRecord};

/// The types of a Project's conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    NamespaceReady,
    IsolationReady,
    QuotaReady,
    /// Only on projects with a DataSHIELD server.
    DataShieldReady,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::NamespaceReady => "NamespaceReady",
            Self::IsolationReady => "IsolationReady",
            Self::QuotaReady => "QuotaReady",
            Self::DataShieldReady => "DataShieldReady",
        }
    }
}

/// A Project's four conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectConditions {
    pub ready: Check,
    pub namespace: Check,
    pub isolation: Check,
    pub quota: Check,
}

impl ProjectConditions {
    /// The same reason and message on all four, none of them holding.
    fn all_false(reason: &str, message: &str) -> Self {
        ProjectConditions {
            ready: Check::new(false, reason, message),
            namespace: Check::new(false, reason, message),
            isolation: Check::new(false, reason, message),
            quota: Check::new(false, reason, message),
        }
    }

    /// Nothing is provisioned: `Ready` and `NamespaceReady` give the reasons, the guardrails are
    /// simply not there.
    fn unprovisioned(ready_reason: &str, namespace_reason: &str, message: &str) -> Self {
        ProjectConditions {
            ready: Check::new(false, ready_reason, message),
            namespace: Check::new(false, namespace_reason, message),
            isolation: Check::new(false, "NotProvisioned", message),
            quota: Check::new(false, "NotProvisioned", message),
        }
    }

    /// As written to the status (in this order), for the object's `generation`.
    pub fn into_conditions(self, generation: Option<i64>) -> Vec<Condition> {
        [
            (ConditionType::Ready, self.ready),
            (ConditionType::NamespaceReady, self.namespace),
            (ConditionType::IsolationReady, self.isolation),
            (ConditionType::QuotaReady, self.quota),
        ]
        .into_iter()
        .map(|(type_, check)| {
            condition(
                type_.as_str(),
                check.ok,
                &check.reason,
                check.message,
                generation,
            )
        })
        .collect()
    }
}

/// The status a plan asks for (the previous teardown record is kept when `teardown` is None).
#[derive(Clone, Debug, PartialEq)]
pub struct StatusPlan {
    pub phase: ProjectPhase,
    pub namespace: Option<String>,
    pub conditions: ProjectConditions,
    pub teardown: Option<TeardownRecord>,
}

/// When to reconcile again without a change to look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Only when something changes.
    OnChange,
    After(Duration),
}

/// The project's namespace as observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceState {
    Absent,
    /// Owned by the project; `terminating` while it is being deleted.
    Ours {
        terminating: bool,
    },
    /// Exists, and belongs to something else.
    Foreign,
}

impl NamespaceState {
    /// What `namespace` (if it exists) is to `project`: its owner references decide.
    pub fn of(namespace: Option<&Namespace>, project: &Project) -> NamespaceState {
        match namespace {
            None => NamespaceState::Absent,
            Some(namespace) if owned_by(namespace, project) => NamespaceState::Ours {
                terminating: namespace.metadata.deletion_timestamp.is_some(),
            },
            Some(_) => NamespaceState::Foreign,
        }
    }
}

/// Whether `project` is among the owners of `object`.
pub fn owned_by(object: &impl ResourceExt, project: &Project) -> bool {
    object
        .owner_references()
        .iter()
        .any(|owner| Some(&owner.uid) == project.uid().as_ref())
}

/// The plan for a Project that is not being torn down.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Nothing to provision (yet, or because of a conflict): write the status, requeue.
    Hold {
        status: StatusPlan,
        requeue: Requeue,
    },
    /// Apply the guardrails, stop running workspaces first if asked, then write the status.
    Provision {
        stop_workspaces: bool,
        status: StatusPlan,
    },
}

/// What is known about a Project at the start of its reconcile.
pub struct Observed<'a> {
    pub name: &'a str,
    pub spec: &'a ProjectSpec,
    pub lifecycle: &'a Lifecycle,
    /// The phase in the status now.
    pub phase: Option<ProjectPhase>,
    /// Only looked at for lifecycles that provision.
    pub namespace: NamespaceState,
    /// How many NetworkPolicies the guardrails hold.
    pub network_policies: usize,
}

/// The plan for a project that is pending or provisioned (`TearDown` is `teardown`'s to plan).
pub fn plan(observed: &Observed) -> Plan {
    let namespace = namespace_name(observed.name);
    let life = observed.lifecycle;
    if let Lifecycle::Pending(reason) = life {
        let message = match reason {
            PendingReason::NotApproved => "the project has no approval yet".to_owned(),
            PendingReason::NotStarted => {
                format!("the project starts on {}", observed.spec.start_date)
            }
        };
        return Plan::Hold {
            status: status(
                ProjectPhase::Pending,
                None,
                ProjectConditions::unprovisioned(reason.reason(), "NotProvisioned", &message),
            ),
            requeue: Requeue::OnChange,
        };
    }
    debug_assert!(life.is_provisioned(), "{life:?} is planned by teardown");
    match observed.namespace {
        NamespaceState::Foreign => {
            let message = format!(
                "namespace {namespace} already exists and does not belong to this project; \
                 rename the project or remove the namespace"
            );
            return Plan::Hold {
                status: status(
                    ProjectPhase::Failed,
                    None,
                    ProjectConditions::unprovisioned(
                        "NamespaceConflict",
                        "NamespaceConflict",
                        &message,
                    ),
                ),
                requeue: Requeue::After(Duration::from_secs(60)),
            };
        }
        NamespaceState::Ours { terminating: true } => {
            let message = format!("namespace {namespace} is still being deleted");
            return Plan::Hold {
                status: status(
                    ProjectPhase::Pending,
                    None,
                    ProjectConditions::unprovisioned(
                        "NamespaceTerminating",
                        "NamespaceTerminating",
                        &message,
                    ),
                ),
                requeue: Requeue::After(Duration::from_secs(2)),
            };
        }
        NamespaceState::Absent | NamespaceState::Ours { terminating: false } => {}
    }
    let phase = life.phase();
    let (ready_reason, ready_message) = match phase {
        ProjectPhase::Active => ("Active", "every guardrail is in place".to_owned()),
        ProjectPhase::Suspended => (
            "Suspended",
            "the project is suspended: workspaces are stopped".to_owned(),
        ),
        _ => (
            "Expired",
            format!(
                "the project ended on {}: workspaces are stopped",
                observed.spec.end_date
            ),
        ),
    };
    let policies = observed.network_policies;
    let conditions = ProjectConditions {
        ready: Check::new(phase == ProjectPhase::Active, ready_reason, ready_message),
        namespace: Check::new(true, "Provisioned", format!("namespace {namespace}")),
        isolation: Check::new(
            true,
            "Applied",
            format!(
                "{policies} NetworkPolicies (default deny), restricted pod security, workspace ServiceAccount without token"
            ),
        ),
        quota: Check::new(
            true,
            "Applied",
            if life.allows_workloads() {
                "ResourceQuota and LimitRange from spec.resources"
            } else {
                "ResourceQuota admits no pods while the project is not active"
            },
        ),
    };
    Plan::Provision {
        // On entering Suspended or Expired, stop what runs. Only then: a start asked for later
        // is refused by the workspace controller, with the reason, rather than silently undone.
        stop_workspaces: !life.allows_workloads() && observed.phase != Some(phase),
        status: status(phase, Some(namespace), conditions),
    }
}

/// The status when the apiserver refuses the guardrails (HTTP 422): a spec the CRD could not
/// catch. `namespace_existed`: whether the namespace was there before this attempt.
pub fn guardrails_refused(name: &str, message: &str, namespace_existed: bool) -> StatusPlan {
    let message = format!("the cluster refused the project's guardrails: {message}");
    status(
        ProjectPhase::Failed,
        Some(namespace_name(name)),
        ProjectConditions {
            ready: Check::new(false, "InvalidSpec", &message),
            namespace: Check::new(namespace_existed, "Applied", ""),
            isolation: Check::new(false, "InvalidSpec", &message),
            quota: Check::new(false, "InvalidSpec", &message),
        },
    )
}

/// A requeue that also wakes the reconcile at the project's next date boundary (its start, or
/// the day after its end), so time-driven phases change on time.
pub fn wake_on_time(requeue: Requeue, spec: &ProjectSpec, now: DateTime<Utc>) -> Requeue {
    match (requeue, next_boundary(spec, now)) {
        (Requeue::OnChange, Some(boundary)) => {
            Requeue::After((boundary - now).to_std().unwrap_or_default() + Duration::from_secs(1))
        }
        (requeue, _) => requeue,
    }
}

/// Whether the teardown is recorded as complete: nothing is left to do but let go of a deleted
/// project.
pub fn teardown_finished(status: &ProjectStatus) -> bool {
    status
        .teardown
        .as_ref()
        .is_some_and(|record| record.completed_at.is_some())
        && status.phase == Some(ProjectPhase::Closed)
}

/// The next step of an unfinished teardown, from the project's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeardownStep {
    /// Stop the workspaces, record what the namespace holds, then delete it (`first`: the
    /// teardown starts now, and says so in an Event).
    DeleteNamespace { first: bool },
    /// The namespace is being deleted: wait for it.
    WaitForNamespace,
    /// The namespace is gone (or was never the project's): the volumes bound to it must go too.
    CheckVolumes,
}

/// `started`: whether a teardown record exists already.
pub fn teardown_step(started: bool, namespace: NamespaceState) -> TeardownStep {
    match namespace {
        NamespaceState::Ours { terminating: false } => {
            TeardownStep::DeleteNamespace { first: !started }
        }
        NamespaceState::Ours { terminating: true } => TeardownStep::WaitForNamespace,
        NamespaceState::Absent | NamespaceState::Foreign => TeardownStep::CheckVolumes,
    }
}

/// The record of a teardown that starts at `now`, or the one already started.
pub fn teardown_record(status: &ProjectStatus, name: &str, now: DateTime<Utc>) -> TeardownRecord {
    status.teardown.clone().unwrap_or_else(|| TeardownRecord {
        started_at: now,
        completed_at: None,
        namespace: namespace_name(name),
        deleted: Vec::new(),
    })
}

/// The record with the namespace and what it holds (`Kind/name`) added, sorted, once each.
pub fn with_inventory(mut record: TeardownRecord, inventory: Vec<String>) -> TeardownRecord {
    let mut deleted: BTreeSet<String> = record.deleted.iter().cloned().collect();
    deleted.insert(format!("Namespace/{}", record.namespace));
    deleted.extend(inventory);
    record.deleted = deleted.into_iter().collect();
    record
}

/// The volumes the record says were bound to the namespace's claims.
pub fn recorded_volumes(record: &TeardownRecord) -> impl Iterator<Item = &str> {
    record
        .deleted
        .iter()
        .filter_map(|entry| entry.strip_prefix("PersistentVolume/"))
}

/// The status while the teardown is under way; `step` says what it is waiting for.
pub fn closing_status(
    step: TeardownStep,
    record: TeardownRecord,
    remaining_volumes: &[String],
) -> StatusPlan {
    let namespace = record.namespace.clone();
    let (reason, message) = match step {
        TeardownStep::DeleteNamespace { .. } => {
            ("TearingDown", format!("deleting namespace {namespace}"))
        }
        TeardownStep::WaitForNamespace => (
            "TearingDown",
            format!("waiting for namespace {namespace} to be gone"),
        ),
        TeardownStep::CheckVolumes => (
            "WaitingForVolumes",
            format!(
                "waiting for volumes to be deleted: {}",
                remaining_volumes.join(", ")
            ),
        ),
    };
    StatusPlan {
        phase: ProjectPhase::Closing,
        namespace: Some(namespace),
        conditions: ProjectConditions::all_false(reason, &message),
        teardown: Some(record),
    }
}

/// The status once the namespace and its volumes are confirmed gone, and the message of the
/// Event that says so.
pub fn closed_status(mut record: TeardownRecord, now: DateTime<Utc>) -> (StatusPlan, String) {
    record.completed_at = Some(now);
    let message = format!(
        "namespace {} and {} object(s) in it confirmed deleted",
        record.namespace,
        record.deleted.len().saturating_sub(1)
    );
    let status = StatusPlan {
        phase: ProjectPhase::Closed,
        namespace: None,
        conditions: ProjectConditions::all_false("Closed", &message),
        teardown: Some(record),
    };
    (status, message)
}

fn status(
    phase: ProjectPhase,
    namespace: Option<String>,
    conditions: ProjectConditions,
) -> StatusPlan {
    StatusPlan {
        phase,
        namespace,
        conditions,
        teardown: None,
    }
}

#[cfg(test)]
mod tests;
