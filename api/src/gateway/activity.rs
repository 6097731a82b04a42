//! Recording a workspace's activity for idle shutdown, at most once per interval.
//!
//! Every proxied request is activity, but writing the Workspace on each one would flood the
//! apiserver (JupyterLab polls several times a minute). The rule is pure: write when the last
//! write this replica made, and the time already on the object (which another replica, or an
//! earlier run, may have written), are both at least `interval` old.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Whether activity at `now` should be written, given the latest time known to be recorded.
pub fn due(now: DateTime<Utc>, recorded: Option<DateTime<Utc>>, interval: Duration) -> bool {
    let Some(recorded) = recorded else {
        return true;
    };
    let interval = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
    // A recorded time in the future (a skewed clock elsewhere) holds writes off only as long as
    // one interval from now would.
    now.signed_duration_since(recorded) >= interval
        || now
            .checked_add_signed(interval)
            .is_some_and(|limit| recorded > limit)
}

/// The last write this replica made for each workspace (namespace, name).
#[derive(Default)]
pub struct Limiter {
    written: Mutex<HashMap<(String, String), DateTime<Utc>>>,
}

impl Limiter {
    /// Claims the write for `now` if one is due (so that concurrent requests make one write);
    /// `on_object` is the time the cached Workspace already carries.
    pub fn claim(
        &self,
        key: (String, String),
        now: DateTime<Utc>,
        on_object: Option<DateTime<Utc>>,
        interval: Duration,
    ) -> bool {
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mine = written.get(&key).copied();
        let recorded = match (mine, on_object) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if due(now, recorded, interval) {
            written.insert(key, now);
            true
        } else {
            false
        }
    }

    /// Forgets a claim whose write failed, so the next request tries again.
    pub fn release(&self, key: &(String, String), claimed: DateTime<Utc>) {
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if written.get(key) == Some(&claimed) {
            written.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn one_write_per_interval() {
        assert!(due(at(0), None, MINUTE));
        assert!(!due(at(0), Some(at(0)), MINUTE));
        assert!(!due(at(59), Some(at(0)), MINUTE));
        assert!(due(at(60), Some(at(0)), MINUTE));
        assert!(due(at(3600), Some(at(0)), MINUTE));
        // Another replica's clock ahead of ours: a little holds us off, far ahead does not.
        assert!(!due(at(0), Some(at(30)), MINUTE));
        assert!(due(at(0), Some(at(61)), MINUTE));
    }

    #[test]
    fn the_limiter_claims_once_and_respects_the_object() {
        let limiter = Limiter::default();
        let key = ("trellis-p".to_string(), "w".to_string());
        assert!(limiter.claim(key.clone(), at(0), None, MINUTE));
        for second in 1..60 {
            assert!(
                !limiter.claim(key.clone(), at(second), None, MINUTE),
                "{second}"
            );
        }
        assert!(limiter.claim(key.clone(), at(60), Some(at(0)), MINUTE));
        // Another workspace is counted apart.
        let other = ("trellis-p".to_string(), "v".to_string());
        assert!(limiter.claim(other.clone(), at(61), None, MINUTE));
        // Written recently by another replica: not due here either.
        let fresh = ("trellis-p".to_string(), "u".to_string());
        assert!(!limiter.claim(fresh.clone(), at(100), Some(at(90)), MINUTE));
        // A failed write is released and retried by the next request.
        limiter.release(&key, at(60));
        assert!(limiter.claim(key.clone(), at(61), Some(at(0)), MINUTE));
        // Releasing an older claim does not undo a newer one.
        limiter.release(&other, at(0));
        assert!(!limiter.claim(other, at(62), None, MINUTE));
    }
}
