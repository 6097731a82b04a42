//! Workspaces: validation, the objects built for them and the plan of each reconcile (pure), and the
//! controller that applies them.

pub mod builders;
pub mod controller;
pub mod images;
pub mod plan;
pub mod validate;
