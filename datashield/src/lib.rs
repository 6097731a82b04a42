//! A DataSHIELD server without R: Opal's DataSHIELD REST protocol, the v2 call grammar with a
//! per-profile allow-list, and dsBase's functions with their disclosure controls.
//!
//! Layout: `language/` parses and checks calls (pure); `eval` evaluates them against a session's
//! symbols; `functions/` holds the server-side functions; `encode/` writes results as jsonlite's
//! JSON and R's serialization; `value` is R's object model they share.

pub mod encode;
pub mod error;
pub mod eval;
pub mod functions;
pub mod language;
pub mod settings;
pub mod value;
