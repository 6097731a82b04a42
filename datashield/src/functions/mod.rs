//! The server-side functions: dsBase's, by behaviour and documented rules (dsBase is GPL-3 and
//! was read for behaviour only), each with its disclosure controls.

pub mod assign;
mod formula;
mod glm;
mod metadata;

use crate::eval::Method;

/// Every function this server implements; a profile allows some or all of them.
pub fn builtins() -> Vec<Method> {
    let mut methods = Vec::new();
    methods.extend(metadata::methods());
    methods.extend(glm::methods());
    methods.extend(assign::methods());
    methods
}
