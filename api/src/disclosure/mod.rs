//! Automated disclosure checks for airlock files, as pure functions. First: the egress policy,
//! the named and parameterised rules the checks apply.

pub mod policy;

pub use policy::{Action, Content, Policy, PolicyError, RuleId};
