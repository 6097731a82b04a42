//! What to do with a Workspace, decided from what was observed: its phase, its two conditions,
//! whether idleness stops it, and when to look again. Pure functions; the controller observes,
//! asks, applies and writes the status.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::validate::Refusal;
use crate::reconcile::conditions::{Check, condition};
use crate::resources::{WorkspacePhase, WorkspaceStatus};

/// The types of a Workspace's conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    Valid,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Valid => "Valid",
        }
    }
}

/// A Workspace's two conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceConditions {
    pub ready: Check,
    pub valid: Check,
}

impl WorkspaceConditions {
    /// As written to the status (in this order), for the object's `generation`.
    pub fn into_conditions(self, generation: Option<i64>) -> Vec<Condition> {
        vec![
            condition(
                ConditionType::Ready.as_str(),
                self.ready.ok,
                &self.ready.reason,
                self.ready.message,
                generation,
            ),
            condition(
                ConditionType::Valid.as_str(),
                self.valid.ok,
                &self.valid.reason,
                self.valid.message,
                generation,
            ),
        ]
    }
}

/// When to reconcile again without a change to look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Only when something changes.
    OnChange,
    After(Duration),
}

/// The status of a workspace that may not run as specified, and when to look again: room under
/// `maxWorkspaces` is re-checked now and then, should a sibling's deletion have been missed.
pub fn refused(
    refusal: &Refusal,
    generation: Option<i64>,
    last_activity: Option<DateTime<Utc>>,
) -> (WorkspaceStatus, Requeue) {
    let conditions = WorkspaceConditions {
        ready: Check::new(false, refusal.reason, &refusal.message),
        valid: Check::new(false, refusal.reason, &refusal.message),
    };
    let status = WorkspaceStatus {
        phase: Some(WorkspacePhase::Failed),
        url: None,
        conditions: conditions.into_conditions(generation),
        observed_generation: generation,
        started_at: None,
        last_activity,
    };
    let requeue = if refusal.reason == "TooManyWorkspaces" {
        Requeue::After(Duration::from_secs(15))
    } else {
        Requeue::OnChange
    };
    (status, requeue)
}

/// What is known about a valid workspace after its objects were applied.
pub struct Observed<'a> {
    pub project: &'a str,
    /// `spec.running`, after any idle stop.
    pub running: bool,
    /// Whether its project is `Active`.
    pub project_active: bool,
    /// Its StatefulSet as observed before this reconcile's apply (None before it exists).
    pub statefulset: Option<&'a StatefulSet>,
    pub previous: &'a WorkspaceStatus,
    pub generation: Option<i64>,
    pub url: String,
    pub last_activity: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// Whether the workspace should run: asked to, and its project active.
pub fn wants_running(running: bool, project_active: bool) -> bool {
    running && project_active
}

/// Whether a running workspace has been idle past its deadline and is to be stopped.
pub fn idle_stop(running: bool, deadline: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    running && deadline.is_some_and(|deadline| deadline <= now)
}

/// The status of a valid workspace.
pub fn status(o: &Observed) -> WorkspaceStatus {
    let wants_running = wants_running(o.running, o.project_active);
    // Asked to run while its project may not: refused, with the reason (the home volume stays).
    let refused = o.running && !o.project_active;
    let phase = if refused {
        WorkspacePhase::Failed
    } else {
        phase(wants_running, o.statefulset)
    };
    let started_at = match phase {
        WorkspacePhase::Running => o.previous.started_at.or(Some(o.now)),
        WorkspacePhase::Starting | WorkspacePhase::Pending => o.previous.started_at,
        _ => None,
    };
    let project = o.project;
    let (ready_reason, ready_message) = match phase {
        WorkspacePhase::Running => ("Running", "the workspace is running".to_owned()),
        WorkspacePhase::Starting | WorkspacePhase::Pending => {
            ("Starting", "waiting for the workspace pod".to_owned())
        }
        WorkspacePhase::Failed => (
            "ProjectNotActive",
            format!("project {project} is not active: its workspaces cannot run"),
        ),
        WorkspacePhase::Stopping => ("Stopping", "the workspace is stopping".to_owned()),
        _ => (
            "Stopped",
            "the workspace is stopped; its home volume is kept".to_owned(),
        ),
    };
    let conditions = WorkspaceConditions {
        ready: Check::new(
            phase == WorkspacePhase::Running,
            ready_reason,
            ready_message,
        ),
        valid: if refused {
            Check::new(
                false,
                "ProjectNotActive",
                format!("project {project} is not active"),
            )
        } else {
            Check::new(true, "Valid", "owner, template and resources are allowed")
        },
    };
    WorkspaceStatus {
        phase: Some(phase),
        url: Some(o.url.clone()),
        conditions: conditions.into_conditions(o.generation),
        observed_generation: o.generation,
        started_at,
        last_activity: o.last_activity,
    }
}

/// When to look again: at the idle deadline of a workspace that should be running.
pub fn next_check(
    idle_timeout: Option<&str>,
    status: &WorkspaceStatus,
    wants_running: bool,
    now: DateTime<Utc>,
) -> Requeue {
    let next_idle_check = idle_deadline(idle_timeout, status.last_activity, status.started_at)
        .filter(|_| wants_running)
        .and_then(|deadline| (deadline - now).to_std().ok());
    match next_idle_check {
        Some(wait) => Requeue::After(wait + Duration::from_secs(1)),
        None => Requeue::OnChange,
    }
}

/// The phase of a valid workspace whose StatefulSet is `statefulset` (None before it exists).
pub fn phase(wants_running: bool, statefulset: Option<&StatefulSet>) -> WorkspacePhase {
    let Some(statefulset) = statefulset else {
        return if wants_running {
            WorkspacePhase::Pending
        } else {
            WorkspacePhase::Stopped
        };
    };
    let status = statefulset.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0) > 0;
    let pods = status.replicas;
    match (wants_running, ready, pods > 0) {
        (true, true, _) => WorkspacePhase::Running,
        (true, false, _) => WorkspacePhase::Starting,
        (false, _, true) => WorkspacePhase::Stopping,
        (false, _, false) => WorkspacePhase::Stopped,
    }
}

/// Parses a Go-style duration as the CRD accepts it (`90s`, `30m`, `1h30m`, `2.5h`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// When an idle workspace is to be stopped: its last activity (or, before any, when it started)
/// plus its idle timeout. `None` when it has no timeout or has not started.
pub fn idle_deadline(
    idle_timeout: Option<&str>,
    last_activity: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let timeout = chrono::Duration::from_std(parse_duration(idle_timeout?)?).ok()?;
    let since = match (last_activity, started_at) {
        (Some(activity), Some(started)) => activity.max(started),
        (activity, started) => activity.or(started)?,
    };
    since.checked_add_signed(timeout)
}

#[cfg(test)]
mod tests;
