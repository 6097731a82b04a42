//! Status conditions with the Kubernetes conventions: a transition time that moves only when the
//! status does, and the generation they describe.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// One condition as a plan decides it: whether it holds, why, and what to tell people. The
/// controller dates it with [`condition`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

impl Check {
    pub fn new(ok: bool, reason: &str, message: impl Into<String>) -> Check {
        Check {
            ok,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// A condition as decided now; `lastTransitionTime` is settled by [`settle`].
pub fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// Gives each new condition the transition time of the previous condition of its type when its
/// status has not changed, and `now` otherwise; so an unchanged status compares equal and
/// nothing needs writing.
pub fn settle(previous: &[Condition], next: Vec<Condition>, now: DateTime<Utc>) -> Vec<Condition> {
    next.into_iter()
        .map(|mut condition| {
            condition.last_transition_time = previous
                .iter()
                .find(|old| old.type_ == condition.type_ && old.status == condition.status)
                .map_or_else(|| time(now), |old| old.last_transition_time.clone());
            condition
        })
        .collect()
}

/// A Kubernetes timestamp for a chrono one.
pub fn time(at: DateTime<Utc>) -> Time {
    let nanos = i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0);
    Time(Timestamp::new(at.timestamp(), nanos).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_time_moves_only_when_the_status_changes() {
        let earlier: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        let now: DateTime<Utc> = "2026-11-22T00:00:00Z".parse().unwrap();
        let previous = settle(
            &[],
            vec![
                condition("Ready", true, "Active", "", Some(1)),
                condition("QuotaReady", true, "Applied", "", Some(1)),
            ],
            earlier,
        );
        let next = settle(
            &previous,
            vec![
                condition("Ready", false, "Suspended", "", Some(2)),
                condition("QuotaReady", true, "Applied", "", Some(2)),
            ],
            now,
        );
        assert_eq!(next[0].last_transition_time, time(now));
        assert_eq!(next[1].last_transition_time, time(earlier));
        assert_eq!(next[1].observed_generation, Some(2));
    }
}
