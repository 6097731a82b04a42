//! The airlock: data into a project (ingress) and results out of it (egress), each through
//! independent review. `state` holds the rules as a pure state machine, `service` every
//! operation on a request (for the JSON API and the pages), `view` what a caller sees of one.

pub mod checks;
pub mod repo;
pub mod scan;
pub mod service;
pub mod state;
mod step;
pub mod storage;
pub mod view;
