//! What every controller does the same way: apply children only when they drift (`apply`),
//! read through the watch caches (`cache`), date conditions (`conditions`), write a status and
//! announce a phase change (`status`, `events`), and hold an object with a finalizer
//! (`finalizer`). The controllers decide; these carry the decisions out.

pub mod apply;
pub mod cache;
pub mod conditions;
pub mod events;
pub mod finalizer;
pub mod status;
