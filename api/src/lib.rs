//! Trellis API library. The HTTP service (identity, projects and workspaces, airlock, audit, web
//! UI, gateway) is built on the operator's resource types, re-exported here for its modules.
#![forbid(unsafe_code)]

pub use trellis_operator::resources;
