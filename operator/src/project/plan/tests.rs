use chrono::DateTime;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::ObjectMeta;

use super::*;
use crate::project::tests::spec;
use crate::resources::ProjectStatus;

const NAMESPACES: [NamespaceState; 4] = [
    NamespaceState::Absent,
    NamespaceState::Ours { terminating: false },
    NamespaceState::Ours { terminating: true },
    NamespaceState::Foreign,
];

const LIFECYCLES: [Lifecycle; 5] = [
    Lifecycle::Pending(PendingReason::NotApproved),
    Lifecycle::Pending(PendingReason::NotStarted),
    Lifecycle::Active,
    Lifecycle::Suspended,
    Lifecycle::Expired,
];

fn plan_for(life: &Lifecycle, namespace: NamespaceState, phase: Option<ProjectPhase>) -> Plan {
    let spec = spec();
    plan(&Observed {
        name: "hip",
        spec: &spec,
        lifecycle: life,
        phase,
        namespace,
        network_policies: 4,
    })
}

fn oks(c: &ProjectConditions) -> [bool; 4] {
    [c.ready.ok, c.namespace.ok, c.isolation.ok, c.quota.ok]
}

/// Every lifecycle × namespace state: the phase, which conditions hold, whether the guardrails
/// are applied and workspaces stopped, and when to look again.
#[test]
fn every_lifecycle_and_namespace_state_has_its_plan() {
    for life in &LIFECYCLES {
        for namespace in NAMESPACES {
            let what = format!("{life:?} with {namespace:?}");
            match (life, namespace, plan_for(life, namespace, None)) {
                // Pending: nothing is looked at or provisioned, whatever the namespace.
                (Lifecycle::Pending(reason), _, Plan::Hold { status, requeue }) => {
                    assert_eq!(status.phase, ProjectPhase::Pending, "{what}");
                    assert_eq!(status.namespace, None, "{what}");
                    assert_eq!(oks(&status.conditions), [false; 4], "{what}");
                    assert_eq!(status.conditions.ready.reason, reason.reason(), "{what}");
                    assert_eq!(status.conditions.namespace.reason, "NotProvisioned");
                    assert_eq!(requeue, Requeue::OnChange, "{what}");
                }
                (_, NamespaceState::Foreign, Plan::Hold { status, requeue }) => {
                    assert_eq!(status.phase, ProjectPhase::Failed, "{what}");
                    assert_eq!(oks(&status.conditions), [false; 4], "{what}");
                    assert_eq!(status.conditions.ready.reason, "NamespaceConflict");
                    assert!(
                        status
                            .conditions
                            .ready
                            .message
                            .contains("namespace trellis-hip already exists"),
                        "{what}"
                    );
                    assert_eq!(requeue, Requeue::After(Duration::from_secs(60)), "{what}");
                }
                (_, NamespaceState::Ours { terminating: true }, Plan::Hold { status, requeue }) => {
                    assert_eq!(status.phase, ProjectPhase::Pending, "{what}");
                    assert_eq!(oks(&status.conditions), [false; 4], "{what}");
                    assert_eq!(status.conditions.namespace.reason, "NamespaceTerminating");
                    assert_eq!(requeue, Requeue::After(Duration::from_secs(2)), "{what}");
                }
                (
                    _,
                    NamespaceState::Absent | NamespaceState::Ours { terminating: false },
                    Plan::Provision {
                        stop_workspaces,
                        status,
                    },
                ) => {
                    let active = *life == Lifecycle::Active;
                    assert_eq!(status.phase, life.phase(), "{what}");
                    assert_eq!(status.namespace.as_deref(), Some("trellis-hip"), "{what}");
                    assert_eq!(
                        oks(&status.conditions),
                        [active, true, true, true],
                        "{what}"
                    );
                    // Entering a stopped phase (from none) stops the workspaces.
                    assert_eq!(stop_workspaces, !active, "{what}");
                }
                (_, _, plan) => panic!("{what}: unexpected {plan:?}"),
            }
        }
    }
}

#[test]
fn workspaces_are_stopped_only_on_entering_a_stopped_phase() {
    let ours = NamespaceState::Ours { terminating: false };
    for (life, phase) in [
        (Lifecycle::Suspended, ProjectPhase::Suspended),
        (Lifecycle::Expired, ProjectPhase::Expired),
    ] {
        let again = plan_for(&life, ours, Some(phase));
        assert!(
            matches!(
                again,
                Plan::Provision {
                    stop_workspaces: false,
                    ..
                }
            ),
            "{life:?} again: {again:?}"
        );
        let entering = plan_for(&life, ours, Some(ProjectPhase::Active));
        assert!(
            matches!(
                entering,
                Plan::Provision {
                    stop_workspaces: true,
                    ..
                }
            ),
            "{life:?} from Active: {entering:?}"
        );
    }
    let active = plan_for(&Lifecycle::Active, ours, Some(ProjectPhase::Suspended));
    assert!(matches!(
        active,
        Plan::Provision {
            stop_workspaces: false,
            ..
        }
    ));
}

#[test]
fn the_ready_condition_says_why_a_provisioned_project_is_not_ready() {
    let ours = NamespaceState::Ours { terminating: false };
    let ready = |life: Lifecycle| match plan_for(&life, ours, None) {
        Plan::Provision { status, .. } => status.conditions.ready,
        plan => panic!("{plan:?}"),
    };
    assert_eq!(ready(Lifecycle::Active).reason, "Active");
    assert_eq!(ready(Lifecycle::Suspended).reason, "Suspended");
    let expired = ready(Lifecycle::Expired);
    assert_eq!(expired.reason, "Expired");
    assert!(expired.message.contains("2027-09-30"), "{expired:?}");
}

#[test]
fn conditions_are_written_in_order_with_their_types() {
    let conditions = ProjectConditions::all_false("Closed", "gone").into_conditions(Some(3));
    let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        ["Ready", "NamespaceReady", "IsolationReady", "QuotaReady"]
    );
    assert!(
        conditions
            .iter()
            .all(|c| c.status == "False" && c.observed_generation == Some(3))
    );
}

#[test]
fn a_refused_guardrail_fails_the_project_and_keeps_the_namespace_condition_honest() {
    for existed in [false, true] {
        let status = guardrails_refused("hip", "quota is invalid", existed);
        assert_eq!(status.phase, ProjectPhase::Failed);
        assert_eq!(
            oks(&status.conditions),
            [false, existed, false, false],
            "namespace existed: {existed}"
        );
        assert_eq!(status.conditions.ready.reason, "InvalidSpec");
        assert!(
            status
                .conditions
                .ready
                .message
                .ends_with("quota is invalid")
        );
    }
}

#[test]
fn waiting_is_cut_short_by_the_next_date_boundary() {
    let spec = spec(); // 2026-10-01 ..= 2027-09-30
    let now: DateTime<Utc> = "2026-09-30T23:59:00Z".parse().unwrap();
    assert_eq!(
        wake_on_time(Requeue::OnChange, &spec, now),
        Requeue::After(Duration::from_secs(61))
    );
    // A shorter requeue that is already asked for stands.
    let soon = Requeue::After(Duration::from_secs(2));
    assert_eq!(wake_on_time(soon, &spec, now), soon);
    let after_the_end: DateTime<Utc> = "2027-10-02T00:00:00Z".parse().unwrap();
    assert_eq!(
        wake_on_time(Requeue::OnChange, &spec, after_the_end),
        Requeue::OnChange
    );
}

fn project_with_uid(uid: &str) -> Project {
    let mut project = Project::new("hip", spec());
    project.metadata.uid = Some(uid.into());
    project
}

fn namespace_owned_by(uid: &str, terminating: bool) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some("trellis-hip".into()),
            owner_references: Some(vec![OwnerReference {
                uid: uid.into(),
                ..OwnerReference::default()
            }]),
            deletion_timestamp: terminating.then(|| Time("2026-11-22T09:00:00Z".parse().unwrap())),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

#[test]
fn a_namespace_is_the_projects_only_by_its_owner_reference() {
    let project = project_with_uid("u-1");
    assert_eq!(NamespaceState::of(None, &project), NamespaceState::Absent);
    assert_eq!(
        NamespaceState::of(Some(&namespace_owned_by("u-1", false)), &project),
        NamespaceState::Ours { terminating: false }
    );
    assert_eq!(
        NamespaceState::of(Some(&namespace_owned_by("u-1", true)), &project),
        NamespaceState::Ours { terminating: true }
    );
    assert_eq!(
        NamespaceState::of(Some(&namespace_owned_by("u-2", false)), &project),
        NamespaceState::Foreign
    );
}

#[test]
fn every_teardown_state_has_its_step() {
    for started in [false, true] {
        assert_eq!(
            teardown_step(started, NamespaceState::Ours { terminating: false }),
            TeardownStep::DeleteNamespace { first: !started }
        );
        assert_eq!(
            teardown_step(started, NamespaceState::Ours { terminating: true }),
            TeardownStep::WaitForNamespace
        );
        // A namespace that is gone, or was never the project's, is not deleted.
        for namespace in [NamespaceState::Absent, NamespaceState::Foreign] {
            assert_eq!(
                teardown_step(started, namespace),
                TeardownStep::CheckVolumes
            );
        }
    }
}

#[test]
fn a_teardown_is_finished_only_when_recorded_complete_and_closed() {
    let now: DateTime<Utc> = "2026-11-22T09:00:00Z".parse().unwrap();
    let mut status = ProjectStatus::default();
    assert!(!teardown_finished(&status));
    let record = teardown_record(&status, "hip", now);
    assert_eq!(record.namespace, "trellis-hip");
    status.teardown = Some(record.clone());
    status.phase = Some(ProjectPhase::Closing);
    assert!(!teardown_finished(&status));
    let (closed, _) = closed_status(record, now);
    status.teardown = closed.teardown;
    assert!(!teardown_finished(&status), "still Closing");
    status.phase = Some(ProjectPhase::Closed);
    assert!(teardown_finished(&status));
}

#[test]
fn the_teardown_record_lists_everything_once_and_its_volumes() {
    let now: DateTime<Utc> = "2026-11-22T09:00:00Z".parse().unwrap();
    let record = teardown_record(&ProjectStatus::default(), "hip", now);
    let record = with_inventory(
        record,
        vec![
            "Pod/a-0".into(),
            "PersistentVolume/pv-1".into(),
            "Pod/a-0".into(),
        ],
    );
    assert_eq!(
        record.deleted,
        ["Namespace/trellis-hip", "PersistentVolume/pv-1", "Pod/a-0"]
    );
    assert_eq!(recorded_volumes(&record).collect::<Vec<_>>(), ["pv-1"]);
    // Started once: a later step keeps the start time.
    let mut status = ProjectStatus {
        teardown: Some(record.clone()),
        ..ProjectStatus::default()
    };
    let later = teardown_record(&status, "hip", now + chrono::Duration::hours(1));
    assert_eq!(later.started_at, now);
    let waiting = closing_status(TeardownStep::CheckVolumes, later, &["pv-1".into()]);
    assert_eq!(waiting.phase, ProjectPhase::Closing);
    assert_eq!(waiting.conditions.ready.reason, "WaitingForVolumes");
    assert_eq!(
        waiting.conditions.ready.message,
        "waiting for volumes to be deleted: pv-1"
    );
    let (closed, message) = closed_status(record, now);
    assert_eq!(closed.phase, ProjectPhase::Closed);
    assert_eq!(closed.namespace, None);
    assert_eq!(
        message,
        "namespace trellis-hip and 2 object(s) in it confirmed deleted"
    );
    assert_eq!(closed.teardown.as_ref().unwrap().completed_at, Some(now));
    status.phase = Some(closed.phase);
    status.teardown = closed.teardown;
    assert!(teardown_finished(&status));
}

#[test]
fn phases_are_written_as_their_names() {
    for phase in ProjectPhase::ALL {
        assert_eq!(format!("{phase:?}"), phase.as_str());
        assert_eq!(serde_json::to_value(phase).unwrap(), phase.as_str());
    }
}
