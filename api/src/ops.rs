//! Health, readiness and metrics, for the kubelet and Prometheus. Metrics are served only on the
//! operational listener (`ops_listen`), never on the public one that the Ingress exposes; health
//! and readiness on both (the kubelet probes the public port).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::SharedState;
use crate::problem::Problem;

/// Health and readiness, on the public listener.
pub fn health_routes() -> Router<SharedState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
}

/// Everything operational, on the operational listener.
pub fn ops_routes() -> Router<SharedState> {
    health_routes().route("/metrics", get(metrics))
}

/// Ready when the watch caches are filled (authorization depends on them) and the database
/// answers.
async fn readyz(State(state): State<SharedState>) -> Result<&'static str, Problem> {
    if !state.cluster.ready().await {
        return Err(Problem::unavailable(
            "the Kubernetes watch caches are still filling",
        ));
    }
    if !state.store.ping().await {
        return Err(Problem::unavailable("the database does not answer"));
    }
    Ok("ok")
}

async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    match state.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => Problem::internal("metrics could not be encoded").into_response(),
    }
}
