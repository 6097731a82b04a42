//! The server-side functions: dsBase's, by behaviour and documented rules (dsBase is GPL-3 and
//! was read for behaviour only), each with its disclosure controls.

pub mod assign;
mod descriptive;
mod formula;
mod glm;
mod histogram;
mod metadata;
pub mod numeric;
pub mod rng;
mod table_ds;
mod tables;

use crate::eval::Method;

/// Every function this server implements; a profile allows some or all of them.
pub fn builtins() -> Vec<Method> {
    let mut methods = Vec::new();
    methods.extend(metadata::methods());
    methods.extend(descriptive::methods());
    methods.extend(tables::methods());
    methods.extend(histogram::methods());
    methods.extend(table_ds::methods());
    methods.extend(glm::methods());
    methods.extend(assign::methods());
    methods
}
