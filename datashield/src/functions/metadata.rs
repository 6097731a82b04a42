//! Metadata functions: what an object is, never what it holds.

use crate::error::DsError;
use crate::eval::{Invocation, Method, MethodKind};
use crate::value::RObject;

pub fn methods() -> Vec<Method> {
    vec![Method {
        name: "classDS",
        kind: MethodKind::Aggregate,
        target: "dsBase::classDS",
        builtin: class_ds,
    }]
}

/// `classDS("x")`: R's `class(x)`.
fn class_ds(call: &Invocation<'_>) -> Result<RObject, DsError> {
    let x = call.named_object(0, "x")?;
    Ok(RObject::strings(x.class()))
}
