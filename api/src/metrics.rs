//! Prometheus metrics of the API.

use std::time::Duration;

use axum::http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::audit::Outcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// One notification to one person: its event, how it went out, and `sent` or `failed`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub event: String,
    pub transport: String,
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    authentication_failures: Family<ReasonLabels, Counter>,
    audit_records: Family<OutcomeLabels, Counter>,
    gateway_requests: Family<OutcomeLabels, Counter>,
    gateway_activity_writes: Family<OutcomeLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("trellis_api");
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let authentication_failures = Family::<ReasonLabels, Counter>::default();
        let audit_records = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            durations.clone(),
        );
        registry.register(
            "authentication_failures",
            "Refused credentials by reason",
            authentication_failures.clone(),
        );
        registry.register(
            "audit_records",
            "Audit records written by outcome",
            audit_records.clone(),
        );
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Notifications to people by event, transport and outcome",
            notifications.clone(),
        );
        let gateway_requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "gateway_requests",
            "Workspace gateway requests by how they ended (proxied, upgraded, sign-in, denied, blocked, …)",
            gateway_requests.clone(),
        );
        let gateway_activity_writes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "gateway_activity_writes",
            "Workspace activity annotations written by the gateway, by outcome",
            gateway_activity_writes.clone(),
        );
        Self {
            registry,
            gateway_requests,
            gateway_activity_writes,
            notifications,
            requests,
            durations,
            authentication_failures,
            audit_records,
        }
    }
}

impl Metrics {
    pub fn http(&self, method: &Method, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn authentication_failed(&self, reason: &str) {
        self.authentication_failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn audited(&self, outcome: Outcome) {
        let outcome = serde_json::to_value(outcome)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        self.audit_records
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The notification counters, for the notifier (which counts from its own tasks).
    pub fn notifications(&self) -> Family<NotificationLabels, Counter> {
        self.notifications.clone()
    }

    pub fn gateway_request(&self, outcome: &str) {
        self.gateway_requests
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn gateway_activity(&self, written: bool) {
        let outcome = if written { "written" } else { "failed" };
        self.gateway_activity_writes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}
