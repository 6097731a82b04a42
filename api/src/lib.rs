//! Trellis API: identity (OpenID Connect, workspace tokens), the authorization policy, projects
//! and workspaces over HTTP, and the hash-chained audit log.
#![forbid(unsafe_code)]

pub mod airlock;
pub mod app;
pub mod audit;
pub mod cluster;
pub mod config;
pub mod datashield;
pub mod gateway;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod policy;
pub mod problem;
pub mod projects;
pub mod server;
pub mod store;
pub mod tokens;
pub mod web;
pub mod workspaces;

pub use trellis_disclosure as disclosure;
pub use trellis_operator::resources;
