//! End-to-end tests against the real local control plane (`make cluster-up`).
//! One test binary, so the Kubernetes client code is linked once.
#![forbid(unsafe_code)]

mod admission;
mod api_airlock;
mod api_audit;
mod api_authorization;
mod api_identity;
mod api_tokens;
mod browser;
mod chart;
mod cli;
mod cli_login;
mod control_plane;
mod datashield;
mod gateway;
mod keycloak;
mod notifications;
mod project_controller;
mod resources;
mod web_pages;
mod workspace_controller;
