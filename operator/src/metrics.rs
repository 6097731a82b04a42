//! Prometheus metrics of the operator, in the OpenMetrics text format.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::resources::{Project, ProjectPhase};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub controller: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    pub writes: Family<ControllerLabels, Counter>,
    pub projects: Family<PhaseLabels, Gauge>,
    pub leader: Gauge,
    /// The controller's cache of Projects while this replica leads; counted at each scrape.
    project_cache: Mutex<Option<Store<Project>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("trellis_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciliations by controller and outcome",
            reconciles.clone(),
        );
        let reconcile_duration =
            Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 14))
            });
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            reconcile_duration.clone(),
        );
        let writes = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "writes",
            "Writes to the Kubernetes API (applies, patches, deletions)",
            writes.clone(),
        );
        let projects = Family::<PhaseLabels, Gauge>::default();
        registry.register("projects", "Projects by phase", projects.clone());
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_duration,
            writes,
            projects,
            leader,
            project_cache: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Counts one write to the Kubernetes API by `controller`.
    pub fn wrote(&self, controller: &'static str) {
        self.writes
            .get_or_create(&ControllerLabels { controller })
            .inc();
    }

    /// Runs one reconciliation, counting it by outcome and timing it.
    pub async fn observe<T, E>(
        &self,
        controller: &'static str,
        reconcile: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let result = reconcile.await;
        let outcome = if result.is_ok() { "success" } else { "error" };
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller,
                outcome,
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&ControllerLabels { controller })
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// Counts Projects by phase from this cache at each scrape (`None` when not leading).
    pub fn count_projects_in(&self, cache: Option<Store<Project>>) {
        *self
            .project_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = cache;
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        if let Some(cache) = self
            .project_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let state = cache.state();
            for phase in ProjectPhase::ALL {
                let count = state
                    .iter()
                    .filter(|project| {
                        project.status.as_ref().and_then(|status| status.phase) == Some(phase)
                    })
                    .count();
                self.projects
                    .get_or_create(&PhaseLabels {
                        phase: phase.as_str().to_owned(),
                    })
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
