//! Trellis operator library: the custom resource types shared with the API, and the CRD
//! manifests generated from them.
#![forbid(unsafe_code)]

pub mod crd;
pub mod resources;
