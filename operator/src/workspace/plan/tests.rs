use k8s_openapi::api::apps::v1::StatefulSetStatus;

use super::*;

fn statefulset(replicas: i32, ready: i32) -> StatefulSet {
    StatefulSet {
        status: Some(StatefulSetStatus {
            replicas,
            ready_replicas: Some(ready),
            ..StatefulSetStatus::default()
        }),
        ..StatefulSet::default()
    }
}

#[test]
fn the_phase_follows_what_is_wanted_and_what_runs() {
    use WorkspacePhase::*;
    assert_eq!(phase(true, None), Pending);
    assert_eq!(phase(false, None), Stopped);
    assert_eq!(phase(true, Some(&statefulset(0, 0))), Starting);
    assert_eq!(phase(true, Some(&statefulset(1, 0))), Starting);
    assert_eq!(phase(true, Some(&statefulset(1, 1))), Running);
    assert_eq!(phase(false, Some(&statefulset(1, 1))), Stopping);
    assert_eq!(phase(false, Some(&statefulset(0, 0))), Stopped);
}

#[test]
fn go_durations_parse_and_nonsense_does_not() {
    assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
    assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_duration("2.5h"), Some(Duration::from_secs(9000)));
    assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
    for bad in ["", "30", "m", "1d", "1h-5m", "abc"] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
}

#[test]
fn the_idle_deadline_counts_from_the_latest_of_activity_and_start() {
    let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
    let started = Some(at("2026-11-22T09:00:00Z"));
    assert_eq!(
        idle_deadline(Some("30m"), None, started),
        Some(at("2026-11-22T09:30:00Z"))
    );
    assert_eq!(
        idle_deadline(Some("30m"), Some(at("2026-11-22T10:00:00Z")), started),
        Some(at("2026-11-22T10:30:00Z"))
    );
    // Activity recorded before a restart does not count against the new session.
    assert_eq!(
        idle_deadline(Some("30m"), Some(at("2026-11-22T08:00:00Z")), started),
        Some(at("2026-11-22T09:30:00Z"))
    );
    assert_eq!(idle_deadline(None, None, started), None);
    assert_eq!(idle_deadline(Some("30m"), None, None), None);
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn observed<'a>(
    running: bool,
    project_active: bool,
    statefulset: Option<&'a StatefulSet>,
    previous: &'a WorkspaceStatus,
) -> Observed<'a> {
    Observed {
        project: "hip",
        running,
        project_active,
        statefulset,
        previous,
        generation: Some(2),
        url: "/w/hip/analysis/".into(),
        last_activity: None,
        now: at("2026-11-22T10:00:00Z"),
    }
}

fn oks(status: &WorkspaceStatus) -> Vec<(&str, bool, &str)> {
    status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status == "True", c.reason.as_str()))
        .collect()
}

/// Every combination of what is asked (running), what the project allows (active) and what runs
/// (no StatefulSet, no pod, a pod starting, a ready pod): the phase and the conditions.
#[test]
fn every_wish_and_observed_state_has_its_status() {
    use WorkspacePhase::*;
    let none = None;
    let (empty, starting, ready) = (statefulset(0, 0), statefulset(1, 0), statefulset(1, 1));
    let previous = WorkspaceStatus::default();
    let cases: [(bool, bool, Option<&StatefulSet>, WorkspacePhase, &str); 16] = [
        (true, true, none, Pending, "Starting"),
        (true, true, Some(&empty), Starting, "Starting"),
        (true, true, Some(&starting), Starting, "Starting"),
        (true, true, Some(&ready), Running, "Running"),
        (false, true, none, Stopped, "Stopped"),
        (false, true, Some(&empty), Stopped, "Stopped"),
        (false, true, Some(&starting), Stopping, "Stopping"),
        (false, true, Some(&ready), Stopping, "Stopping"),
        // Asked to run in a project that is not active: refused, whatever runs.
        (true, false, none, Failed, "ProjectNotActive"),
        (true, false, Some(&empty), Failed, "ProjectNotActive"),
        (true, false, Some(&starting), Failed, "ProjectNotActive"),
        (true, false, Some(&ready), Failed, "ProjectNotActive"),
        (false, false, none, Stopped, "Stopped"),
        (false, false, Some(&empty), Stopped, "Stopped"),
        (false, false, Some(&starting), Stopping, "Stopping"),
        (false, false, Some(&ready), Stopping, "Stopping"),
    ];
    for (running, active, statefulset, phase, reason) in cases {
        let what = format!("running {running}, active {active}, {statefulset:?}");
        let status = status(&observed(running, active, statefulset, &previous));
        assert_eq!(status.phase, Some(phase), "{what}");
        assert_eq!(status.url.as_deref(), Some("/w/hip/analysis/"), "{what}");
        assert_eq!(status.observed_generation, Some(2), "{what}");
        let refused = running && !active;
        assert_eq!(
            oks(&status),
            [
                ("Ready", phase == Running, reason),
                (
                    "Valid",
                    !refused,
                    if refused { "ProjectNotActive" } else { "Valid" }
                ),
            ],
            "{what}"
        );
    }
}

#[test]
fn the_start_time_is_kept_while_running_and_dropped_when_stopped() {
    let ready = statefulset(1, 1);
    let earlier = at("2026-11-22T09:00:00Z");
    let fresh = WorkspaceStatus::default();
    let running = observed(true, true, Some(&ready), &fresh);
    assert_eq!(status(&running).started_at, Some(running.now));
    let started = WorkspaceStatus {
        started_at: Some(earlier),
        ..WorkspaceStatus::default()
    };
    assert_eq!(
        status(&observed(true, true, Some(&ready), &started)).started_at,
        Some(earlier)
    );
    assert_eq!(
        status(&observed(true, true, None, &started)).started_at,
        Some(earlier),
        "pending keeps it"
    );
    assert_eq!(
        status(&observed(false, true, Some(&ready), &started)).started_at,
        None
    );
    assert_eq!(
        status(&observed(true, false, Some(&ready), &started)).started_at,
        None
    );
}

#[test]
fn a_refusal_fails_the_workspace_and_a_full_project_is_looked_at_again() {
    let refusal = Refusal {
        reason: "TooManyWorkspaces",
        message: "the project allows 4 workspaces".into(),
    };
    let (status, requeue) = refused(&refusal, Some(3), Some(at("2026-11-22T09:00:00Z")));
    assert_eq!(status.phase, Some(WorkspacePhase::Failed));
    assert_eq!(status.url, None);
    assert_eq!(
        oks(&status),
        [
            ("Ready", false, "TooManyWorkspaces"),
            ("Valid", false, "TooManyWorkspaces")
        ]
    );
    assert_eq!(status.last_activity, Some(at("2026-11-22T09:00:00Z")));
    assert_eq!(requeue, Requeue::After(Duration::from_secs(15)));
    let other = Refusal {
        reason: "TemplateNotAllowed",
        message: "no".into(),
    };
    assert_eq!(refused(&other, None, None).1, Requeue::OnChange);
}

#[test]
fn idleness_stops_only_a_running_workspace_past_its_deadline() {
    let now = at("2026-11-22T10:00:00Z");
    assert!(idle_stop(true, Some(now), now));
    assert!(idle_stop(true, Some(at("2026-11-22T09:00:00Z")), now));
    assert!(!idle_stop(true, Some(at("2026-11-22T11:00:00Z")), now));
    assert!(!idle_stop(true, None, now));
    assert!(!idle_stop(false, Some(now), now));
}

#[test]
fn a_running_workspace_is_looked_at_again_at_its_idle_deadline() {
    let now = at("2026-11-22T10:00:00Z");
    let status = WorkspaceStatus {
        started_at: Some(at("2026-11-22T09:45:00Z")),
        ..WorkspaceStatus::default()
    };
    assert_eq!(
        next_check(Some("30m"), &status, true, now),
        Requeue::After(Duration::from_secs(15 * 60 + 1))
    );
    assert_eq!(
        next_check(Some("30m"), &status, false, now),
        Requeue::OnChange
    );
    assert_eq!(next_check(None, &status, true, now), Requeue::OnChange);
    // Past the deadline already: the idle stop has happened (or is refused); nothing to wait for.
    assert_eq!(
        next_check(Some("10m"), &status, true, now),
        Requeue::OnChange
    );
}

#[test]
fn phases_are_written_as_their_names() {
    use WorkspacePhase::*;
    for phase in [Pending, Starting, Running, Stopping, Stopped, Failed] {
        assert_eq!(format!("{phase:?}"), phase.as_str());
        assert_eq!(serde_json::to_value(phase).unwrap(), phase.as_str());
    }
}
