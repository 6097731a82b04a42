//! Where a Project is in its life, decided from its spec and today's date alone.
//!
//! Dates are whole days in UTC: a project is active from 00:00 UTC on `startDate` until the end of
//! `endDate`, and expires at 00:00 UTC the day after.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};

use crate::resources::{ProjectPhase, ProjectSpec};

/// What the operator should make of a project now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Nothing is provisioned yet.
    Pending(PendingReason),
    /// Members may work.
    Active,
    /// Provisioned, but workspaces are stopped and nothing may start.
    Suspended,
    /// Past its end date: provisioned (data kept until closure), nothing may run.
    Expired,
    /// Closed or deleted: tear everything down and keep the record.
    TearDown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingReason {
    NotApproved,
    NotStarted,
}

impl PendingReason {
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotApproved => "NotApproved",
            Self::NotStarted => "NotStarted",
        }
    }
}

impl Lifecycle {
    /// The phase shown while the project is in this part of its life (tear-down is `Closing`
    /// until the namespace is confirmed gone, then `Closed`; the caller knows which).
    pub fn phase(&self) -> ProjectPhase {
        match self {
            Self::Pending(_) => ProjectPhase::Pending,
            Self::Active => ProjectPhase::Active,
            Self::Suspended => ProjectPhase::Suspended,
            Self::Expired => ProjectPhase::Expired,
            Self::TearDown => ProjectPhase::Closing,
        }
    }

    /// Whether the project's namespace and guardrails should exist.
    pub fn is_provisioned(&self) -> bool {
        matches!(self, Self::Active | Self::Suspended | Self::Expired)
    }

    /// Whether workspaces may run.
    pub fn allows_workloads(&self) -> bool {
        matches!(self, Self::Active)
    }
}

pub fn lifecycle(spec: &ProjectSpec, deleting: bool, today: NaiveDate) -> Lifecycle {
    if deleting || spec.closed {
        Lifecycle::TearDown
    } else if spec.approval.is_none() {
        Lifecycle::Pending(PendingReason::NotApproved)
    } else if today < spec.start_date {
        Lifecycle::Pending(PendingReason::NotStarted)
    } else if today > spec.end_date {
        Lifecycle::Expired
    } else if spec.suspended {
        Lifecycle::Suspended
    } else {
        Lifecycle::Active
    }
}

/// The next instant at which `lifecycle` will give a different answer without any change to the
/// spec: the start of `startDate`, or the start of the day after `endDate`. `None` once the
/// project has expired or is being torn down.
pub fn next_boundary(spec: &ProjectSpec, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if spec.closed {
        return None;
    }
    let start = midnight(spec.start_date);
    let expiry = midnight(spec.end_date.checked_add_days(Days::new(1))?);
    [start, expiry].into_iter().find(|boundary| *boundary > now)
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::tests::spec;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn an_unapproved_project_is_pending_whatever_the_date() {
        let mut spec = spec();
        spec.approval = None;
        assert_eq!(
            lifecycle(&spec, false, date("2026-11-22")),
            Lifecycle::Pending(PendingReason::NotApproved)
        );
    }

    #[test]
    fn an_approved_project_follows_its_dates_inclusively() {
        let spec = spec(); // 2026-10-01 ..= 2027-09-30
        assert_eq!(
            lifecycle(&spec, false, date("2026-09-30")),
            Lifecycle::Pending(PendingReason::NotStarted)
        );
        assert_eq!(
            lifecycle(&spec, false, date("2026-10-01")),
            Lifecycle::Active
        );
        assert_eq!(
            lifecycle(&spec, false, date("2027-09-30")),
            Lifecycle::Active
        );
        assert_eq!(
            lifecycle(&spec, false, date("2027-10-01")),
            Lifecycle::Expired
        );
    }

    #[test]
    fn suspension_applies_only_while_the_project_would_be_active() {
        let mut spec = spec();
        spec.suspended = true;
        assert_eq!(
            lifecycle(&spec, false, date("2026-09-30")),
            Lifecycle::Pending(PendingReason::NotStarted)
        );
        assert_eq!(
            lifecycle(&spec, false, date("2026-11-22")),
            Lifecycle::Suspended
        );
        assert_eq!(
            lifecycle(&spec, false, date("2027-10-01")),
            Lifecycle::Expired
        );
    }

    #[test]
    fn closing_or_deleting_always_tears_down() {
        let mut spec = spec();
        assert_eq!(
            lifecycle(&spec, true, date("2026-11-22")),
            Lifecycle::TearDown
        );
        spec.closed = true;
        spec.approval = None;
        assert_eq!(
            lifecycle(&spec, false, date("2026-09-01")),
            Lifecycle::TearDown
        );
    }

    #[test]
    fn only_an_active_project_allows_workloads_and_only_started_ones_are_provisioned() {
        let cases = [
            (Lifecycle::Pending(PendingReason::NotStarted), false, false),
            (Lifecycle::Active, true, true),
            (Lifecycle::Suspended, true, false),
            (Lifecycle::Expired, true, false),
            (Lifecycle::TearDown, false, false),
        ];
        for (lifecycle, provisioned, workloads) in cases {
            assert_eq!(lifecycle.is_provisioned(), provisioned, "{lifecycle:?}");
            assert_eq!(lifecycle.allows_workloads(), workloads, "{lifecycle:?}");
        }
    }

    #[test]
    fn the_next_boundary_is_the_start_then_the_day_after_the_end() {
        let spec = spec();
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            next_boundary(&spec, at("2026-09-15T12:00:00Z")),
            Some(at("2026-10-01T00:00:00Z"))
        );
        assert_eq!(
            next_boundary(&spec, at("2026-10-01T00:00:00Z")),
            Some(at("2027-10-01T00:00:00Z"))
        );
        assert_eq!(
            next_boundary(&spec, at("2027-09-30T23:59:59Z")),
            Some(at("2027-10-01T00:00:00Z"))
        );
        assert_eq!(next_boundary(&spec, at("2027-10-01T00:00:00Z")), None);
        let mut closed = spec;
        closed.closed = true;
        assert_eq!(next_boundary(&closed, at("2026-09-15T12:00:00Z")), None);
    }
}
