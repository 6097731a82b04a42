//! The Trellis custom resources (group `trellis.dev`, version `v1alpha1`).
//!
//! These types are the contract between the operator, the API and cluster administrators: the
//! CRDs are generated from them (`trellis-operator crd`), and validation that must hold whoever
//! writes the object lives in the schema as CEL rules, so the apiserver enforces it.

pub mod names;
mod project;
mod schema;
mod template;
mod workspace;

pub use project::*;
pub use template::*;
pub use workspace::*;

/// The API group of every Trellis resource.
pub const GROUP: &str = "trellis.dev";
/// The served and stored version of every Trellis resource.
pub const VERSION: &str = "v1alpha1";
