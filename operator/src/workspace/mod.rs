//! Workspaces: validation, the objects built for them and their status (pure), and the
//! controller that applies them.

pub mod builders;
pub mod controller;
pub mod images;
pub mod status;
pub mod validate;
