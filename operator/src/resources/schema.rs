//! Schema fragments shared by several resources. Each carries its own CEL rule so that a field
//! is validated the same way wherever it appears.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A Kubernetes quantity (`500m`, `4`, `16Gi`) that must be well-formed and not negative.
/// Accepts integers and strings, as the core Kubernetes types do.
pub fn quantity(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "A Kubernetes quantity, e.g. 500m, 4 or 16Gi.",
        "x-kubernetes-int-or-string": true,
        "anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 64}],
        "x-kubernetes-validations": [{
            "rule": "type(self) == int ? self >= 0 : isQuantity(self) && !quantity(self).isLessThan(quantity('0'))",
            "message": "must be a non-negative Kubernetes quantity, e.g. 500m, 4 or 16Gi"
        }]
    })
}

/// A Kubernetes object name that must be a DNS-1123 label (namespaces are derived from it).
pub fn dns_label(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 63,
        "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    })
}

/// A Go-style duration such as `30m` or `2h`, bounded so a typo cannot disable a timeout.
pub fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": 32,
        "x-kubernetes-validations": [{
            "rule": "duration(self) >= duration('1m') && duration(self) <= duration('720h')",
            "message": "must be a duration between 1m and 720h, e.g. 30m or 8h"
        }]
    })
}

/// Identity provider subjects are opaque, but bounded and printable.
pub fn subject(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": "^[^\\s]+$"
    })
}

/// A number above zero (dsBase's fractional disclosure settings).
pub fn positive_number(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": true,
        "maximum": 1000000
    })
}
