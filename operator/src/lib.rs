//! Trellis operator: the custom resource types shared with the API, the CRDs generated from
//! them, and the controllers that turn Projects into isolated, governed namespaces.
#![forbid(unsafe_code)]

pub mod config;
pub mod crd;
pub mod metrics;
pub mod pod;
pub mod project;
pub mod reconcile;
pub mod resources;
pub mod server;
pub mod workspace;
