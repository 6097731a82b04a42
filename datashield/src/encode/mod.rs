//! Results as the clients receive them from Opal/Rock: jsonlite's JSON for the Python clients
//! (`application/json`) and R's own serialization for R clients (`application/octet-stream`).

mod json;
mod rds;

pub use json::{serialize_json, to_json};
pub use rds::to_rds;
