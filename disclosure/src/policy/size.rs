//! Sizes in the policy file: a number of bytes, or a string with a unit ("16MiB", "1GB").

use serde::{Deserialize, Serialize};

/// A size in bytes, written in YAML as a number or a string with a unit ("16MiB", "1GB").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawSize", into = "u64")]
pub struct ByteSize(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    Bytes(u64),
    Text(String),
}

impl TryFrom<RawSize> for ByteSize {
    type Error = String;
    fn try_from(raw: RawSize) -> Result<Self, String> {
        match raw {
            RawSize::Bytes(n) => Ok(ByteSize(n)),
            RawSize::Text(s) => parse_size(&s).map(ByteSize),
        }
    }
}

impl From<ByteSize> for u64 {
    fn from(size: ByteSize) -> u64 {
        size.0
    }
}

pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad =
        || format!("invalid size \"{text}\" (write bytes, or e.g. \"512KiB\", \"16MiB\", \"1GB\")");
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("size \"{text}\" is too large"))
}
