//! The airlock: data into a project (ingress) and results out of it (egress), each through
//! independent review. `state` holds the rules as a pure state machine.

pub mod checks;
pub mod repo;
pub mod scan;
pub mod state;
pub mod storage;
