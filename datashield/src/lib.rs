//! A DataSHIELD server without R: Opal's DataSHIELD REST protocol, the v2 call grammar with a
//! per-profile allow-list, and dsBase's functions with their disclosure controls.
//!
//! Layout: `http/` is the edge (Opal's REST API); `session` is the service it calls (sessions,
//! commands, one call's parse → allow-list → evaluate → log); `catalogue` and `profile` are what
//! a server is started with; `language/` parses and checks calls (pure); `eval` evaluates them
//! against one session's symbols; `functions/` holds the server-side functions; `encode/` writes
//! results as jsonlite's JSON and R's serialization; `value` is R's object model they share.

pub mod catalogue;
pub mod encode;
pub mod error;
pub mod eval;
pub mod functions;
pub mod http;
pub mod language;
pub mod profile;
pub mod session;
pub mod settings;
pub mod value;
