//! A workspace's phase and idle deadline, decided from what is observed. Pure functions.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::StatefulSet;

use crate::resources::WorkspacePhase;

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
mod tests {
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
}
