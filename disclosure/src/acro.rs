//! ACRO's `results.json` (written by `acro.finalise(path, "json")`), read into what reviewers
//! need beside the files: each output's status, type, method, summary, the cells ACRO flagged,
//! and the SHA-256 checksums ACRO wrote to `checksums/<file>.txt`, compared with the uploaded
//! files. ACRO adds fields between versions, so unknown fields are ignored; the fields we read
//! must have the right shape, or the whole file is refused with a message saying where.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Why ACRO's results could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AcroError {
    /// The file is not JSON.
    #[error("ACRO results.json is not valid JSON: {0}")]
    Json(String),
    /// The JSON does not have the shape ACRO writes.
    #[error("ACRO results.json: {0}")]
    Format(String),
    /// One output is malformed: which one, and how.
    #[error("ACRO results.json: output \"{uid}\": {message}")]
    Output {
        /// ACRO's name for the output.
        uid: String,
        /// What is wrong with it.
        message: String,
    },
    /// A checksum file is not a SHA-256.
    #[error("ACRO checksum file: {0}")]
    Checksum(String),
}

/// ACRO's verdict on one output: fail if any check failed, else review if any asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcroStatus {
    /// Every check passed.
    Pass,
    /// A check failed.
    Fail,
    /// No check failed, and one asks for a person to look.
    Review,
}

/// A file of one ACRO output, with the cells ACRO flagged in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcroFile {
    /// The file's name, as ACRO wrote it.
    pub name: String,
    /// Per check, how many cells it flagged (`sdc.summary`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flagged_counts: BTreeMap<String, u64>,
    /// Per check, the flagged cells as `[row, column]`, 0-based in ACRO's table (`sdc.cells`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flagged_cells: BTreeMap<String, Vec<[u64; 2]>>,
    /// The SHA-256 ACRO recorded for the file, once given by [`AcroResults::verify`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Whether the uploaded file of this name has that SHA-256 (None: one of them is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_valid: Option<bool>,
}

/// One output ACRO checked (a table, a regression, ...), with its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcroOutput {
    /// ACRO's name for the output.
    pub uid: String,
    /// ACRO's verdict.
    pub status: AcroStatus,
    /// `table`, `regression`, `histogram`, `custom`, ...
    pub output_type: String,
    /// The statistical method that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// ACRO's summary of its checks.
    pub summary: String,
    /// The researcher's request for an exception, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// The researcher's comments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<String>,
    /// The command that produced the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// When ACRO produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The files the output was written to.
    pub files: Vec<AcroFile>,
}

/// ACRO's `results.json`: every output it checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcroResults {
    /// The version of the results format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The version of ACRO that wrote them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acro_version: Option<String>,
    /// The outputs, in ACRO's order.
    pub outputs: Vec<AcroOutput>,
}

/// Reads `results.json`.
pub fn parse_results(json: &[u8]) -> Result<AcroResults, AcroError> {
    let root: Value = serde_json::from_slice(json).map_err(|e| AcroError::Json(e.to_string()))?;
    let root = root
        .as_object()
        .ok_or_else(|| AcroError::Format("the top level must be an object".into()))?;
    let results = root
        .get("results")
        .ok_or_else(|| AcroError::Format("no \"results\" object".into()))?
        .as_object()
        .ok_or_else(|| AcroError::Format("\"results\" must be an object of outputs".into()))?;
    let mut outputs = Vec::with_capacity(results.len());
    for (uid, out) in results {
        outputs.push(parse_output(uid, out).map_err(|message| AcroError::Output {
            uid: uid.clone(),
            message,
        })?);
    }
    Ok(AcroResults {
        version: root.get("version").and_then(scalar),
        acro_version: root
            .get("tool")
            .and_then(|t| t.get("version"))
            .and_then(scalar),
        outputs,
    })
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn opt_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("\"{key}\" must be a string, found {}", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_output(uid: &str, out: &Value) -> Result<AcroOutput, String> {
    let obj = out.as_object().ok_or("must be an object")?;
    let status = match opt_string(obj, "status")? {
        None => return Err("no \"status\"".into()),
        // ACRO writes "Review" for analyses its ontology does not know.
        Some(s) => match s.to_ascii_lowercase().as_str() {
            "pass" => AcroStatus::Pass,
            "fail" => AcroStatus::Fail,
            "review" => AcroStatus::Review,
            _ => {
                return Err(format!(
                    "unknown status \"{s}\" (expected pass, fail or review)"
                ));
            }
        },
    };
    let method = match obj.get("properties") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => opt_string(p, "method")?,
        Some(other) => {
            return Err(format!(
                "\"properties\" must be an object, found {}",
                kind(other)
            ));
        }
    };
    let comments = match obj.get("comments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|c| {
                c.as_str()
                    .map(str::to_string)
                    .ok_or("\"comments\" must hold strings")
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "\"comments\" must be an array, found {}",
                kind(other)
            ));
        }
    };
    let files = match obj.get("files") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, f)| parse_file(f).map_err(|e| format!("files[{i}]: {e}")))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("\"files\" must be an array, found {}", kind(other))),
    };
    Ok(AcroOutput {
        uid: uid.to_string(),
        status,
        output_type: opt_string(obj, "type")?.unwrap_or_default(),
        method,
        summary: opt_string(obj, "summary")?.unwrap_or_default(),
        exception: opt_string(obj, "exception")?.filter(|e| !e.is_empty()),
        comments,
        command: opt_string(obj, "command")?,
        timestamp: opt_string(obj, "timestamp")?,
        files,
    })
}

fn parse_file(f: &Value) -> Result<AcroFile, String> {
    let obj = f.as_object().ok_or("must be an object")?;
    let name = opt_string(obj, "name")?.ok_or("no \"name\"")?;
    if name.is_empty() {
        return Err("\"name\" is empty".into());
    }
    let mut file = AcroFile {
        name,
        flagged_counts: BTreeMap::new(),
        flagged_cells: BTreeMap::new(),
        checksum: None,
        checksum_valid: None,
    };
    let sdc = match obj.get("sdc") {
        None | Some(Value::Null) => return Ok(file),
        Some(Value::Object(s)) => s,
        Some(other) => return Err(format!("\"sdc\" must be an object, found {}", kind(other))),
    };
    if let Some(summary) = sdc.get("summary").filter(|v| !v.is_null()) {
        let summary = summary
            .as_object()
            .ok_or("\"sdc.summary\" must be an object")?;
        for (check, n) in summary {
            let n = n
                .as_u64()
                .ok_or_else(|| format!("\"sdc.summary.{check}\" must be a whole number"))?;
            file.flagged_counts.insert(check.clone(), n);
        }
    }
    if let Some(cells) = sdc.get("cells").filter(|v| !v.is_null()) {
        let cells = cells.as_object().ok_or("\"sdc.cells\" must be an object")?;
        for (check, list) in cells {
            let bad = || format!("\"sdc.cells.{check}\" must be a list of [row, column] pairs");
            let list = list.as_array().ok_or_else(bad)?;
            let pairs = list
                .iter()
                .map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([r, c]) => Some([r.as_u64()?, c.as_u64()?]),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?;
            file.flagged_cells.insert(check.clone(), pairs);
        }
    }
    Ok(file)
}

/// Reads one of ACRO's `checksums/<file>.txt`: a SHA-256 in hex (optionally followed by the file
/// name, as `sha256sum` writes it). Returns it in lower case.
pub fn parse_checksum(text: &[u8]) -> Result<String, AcroError> {
    let text =
        std::str::from_utf8(text).map_err(|_| AcroError::Checksum("not UTF-8 text".into()))?;
    let hex = text.split_whitespace().next().unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AcroError::Checksum(format!(
            "expected a SHA-256 as 64 hex digits, found {:?}",
            hex.chars().take(80).collect::<String>()
        )));
    }
    Ok(hex.to_ascii_lowercase())
}

impl AcroResults {
    /// Fills in each file's checksum from ACRO's checksum files (`acro_checksum(name)`, already
    /// read with [`parse_checksum`]) and whether the uploaded file of that name matches
    /// (`uploaded_sha256(name)`, hex).
    pub fn verify(
        &mut self,
        acro_checksum: impl Fn(&str) -> Option<String>,
        uploaded_sha256: impl Fn(&str) -> Option<String>,
    ) {
        for file in self.outputs.iter_mut().flat_map(|o| o.files.iter_mut()) {
            file.checksum = acro_checksum(&file.name);
            file.checksum_valid = match (&file.checksum, uploaded_sha256(&file.name)) {
                (Some(acro), Some(ours)) => Some(acro.eq_ignore_ascii_case(&ours)),
                _ => None,
            };
        }
    }

    /// How many outputs ACRO passed, failed, and sent to review.
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |s| self.outputs.iter().filter(|o| o.status == s).count();
        (
            n(AcroStatus::Pass),
            n(AcroStatus::Fail),
            n(AcroStatus::Review),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like ACRO 1.0.2's `finalise(path, "json")`.
    const RESULTS: &str = r#"{
      "version": "0.4.5",
      "tool": {"@type": "SoftwareApplication", "name": "ACRO", "url": "https://github.com/AI-SDC/ACRO", "version": "1.0.2"},
      "results": {
        "output_0": {
          "uid": "output_0", "status": "fail", "type": "table",
          "properties": {"method": "crosstab", "mitigation": "none"},
          "files": [{"name": "output_0_0.csv", "sdc": {
              "summary": {"MinimumThresholdCheck": 2, "PresenceOfZeroCheck": 1},
              "cells": {"MinimumThresholdCheck": [[0, 1], [2, 3]], "PresenceOfZeroCheck": [[1, 1]]}}}],
          "outcome": {"a": {"x": "ok"}},
          "command": "acro.crosstab(df.year, df.grant_type)",
          "summary": "FrequencyTable : \n MinimumThresholdCheck: fail - 2 cells may need suppressing.",
          "timestamp": "2024-05-01T10:00:00", "comments": ["small cells"], "exception": "",
          "fair": {"statbarn": "Frequencies"}
        },
        "output_1": {
          "uid": "output_1", "status": "Review", "type": "custom",
          "properties": {}, "files": [{"name": "plot.png", "sdc": {}}],
          "summary": "review", "exception": "it is a plot of aggregate data", "comments": []
        },
        "output_2": {"status": "pass", "type": "regression", "properties": {"method": "ols", "dof": 807},
          "files": [{"name": "output_2_0.csv"}], "summary": "pass"}
      }
    }"#;

    #[test]
    fn reads_acro_results() {
        let r = parse_results(RESULTS.as_bytes()).unwrap();
        assert_eq!(r.acro_version.as_deref(), Some("1.0.2"));
        assert_eq!(r.outputs.len(), 3);
        let o = &r.outputs[0];
        assert_eq!(
            (o.uid.as_str(), o.status, o.output_type.as_str()),
            ("output_0", AcroStatus::Fail, "table")
        );
        assert_eq!(o.method.as_deref(), Some("crosstab"));
        assert_eq!(o.exception, None, "empty exception is no exception");
        assert_eq!(o.comments, ["small cells"]);
        assert_eq!(o.files[0].flagged_counts["MinimumThresholdCheck"], 2);
        assert_eq!(
            o.files[0].flagged_cells["MinimumThresholdCheck"],
            vec![[0, 1], [2, 3]]
        );
        assert_eq!(
            r.outputs[1].status,
            AcroStatus::Review,
            "capitalised Review"
        );
        assert_eq!(
            r.outputs[1].exception.as_deref(),
            Some("it is a plot of aggregate data")
        );
        assert_eq!(r.outputs[2].method.as_deref(), Some("ols"));
        assert_eq!(r.counts(), (1, 1, 1));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["outputs"][0]["files"][0]["flaggedCells"]["PresenceOfZeroCheck"][0][1],
            1
        );
        assert_eq!(json["outputs"][1]["status"], "review");
    }

    #[test]
    fn checksums_are_compared_with_the_uploaded_files() {
        let mut r = parse_results(RESULTS.as_bytes()).unwrap();
        let good = "a".repeat(64);
        let acro = |name: &str| match name {
            "output_0_0.csv" | "plot.png" => Some(good.clone()),
            _ => None,
        };
        let ours = |name: &str| match name {
            "output_0_0.csv" => Some(good.to_uppercase()),
            "plot.png" => Some("b".repeat(64)),
            _ => Some(good.clone()),
        };
        r.verify(acro, ours);
        assert_eq!(r.outputs[0].files[0].checksum_valid, Some(true));
        assert_eq!(r.outputs[1].files[0].checksum_valid, Some(false));
        assert_eq!(
            r.outputs[2].files[0].checksum_valid, None,
            "ACRO wrote no checksum"
        );
    }

    #[test]
    fn checksum_files() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(parse_checksum(hex.as_bytes()).unwrap(), hex);
        assert_eq!(
            parse_checksum(format!("{}  output_0_0.csv\n", hex.to_uppercase()).as_bytes()).unwrap(),
            hex
        );
        assert!(parse_checksum(b"").is_err());
        assert!(parse_checksum(b"abc").is_err());
        assert!(parse_checksum(&[0xff, 0xfe]).is_err());
        assert!(parse_checksum("z".repeat(64).as_bytes()).is_err());
    }

    #[test]
    fn malformed_results_are_refused_with_a_clear_error() {
        let cases: &[(&str, &str)] = &[
            ("", "ACRO results.json is not valid JSON"),
            ("{\"results\": ", "ACRO results.json is not valid JSON"),
            ("[]", "ACRO results.json: the top level must be an object"),
            ("{}", "ACRO results.json: no \"results\" object"),
            (
                "{\"results\": []}",
                "ACRO results.json: \"results\" must be an object",
            ),
            (
                "{\"results\": {\"o\": 1}}",
                "output \"o\": must be an object",
            ),
            ("{\"results\": {\"o\": {}}}", "output \"o\": no \"status\""),
            (
                "{\"results\": {\"o\": {\"status\": \"ok\"}}}",
                "output \"o\": unknown status \"ok\"",
            ),
            (
                "{\"results\": {\"o\": {\"status\": 1}}}",
                "output \"o\": \"status\" must be a string, found a number",
            ),
            (
                "{\"results\": {\"o\": {\"status\": \"pass\", \"files\": {}}}}",
                "\"files\" must be an array",
            ),
            (
                "{\"results\": {\"o\": {\"status\": \"pass\", \"files\": [{}]}}}",
                "files[0]: no \"name\"",
            ),
            (
                "{\"results\": {\"o\": {\"status\": \"pass\", \"files\": [{\"name\": \"a\", \"sdc\": {\"cells\": {\"X\": [[1]]}}}]}}}",
                "files[0]: \"sdc.cells.X\" must be a list of [row, column] pairs",
            ),
            (
                "{\"results\": {\"o\": {\"status\": \"pass\", \"files\": [{\"name\": \"a\", \"sdc\": {\"summary\": {\"X\": -1}}}]}}}",
                "\"sdc.summary.X\" must be a whole number",
            ),
            (
                "{\"results\": {\"o\": {\"status\": \"pass\", \"comments\": [1]}}}",
                "\"comments\" must hold strings",
            ),
        ];
        for (json, want) in cases {
            let err = parse_results(json.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{json}\n  got:  {err}\n  want: {want}");
        }
    }

    #[test]
    fn garbled_results_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let base = RESULTS.as_bytes();
        for _ in 0..500 {
            let mut b = base.to_vec();
            for _ in 0..rng.random_range(1..6) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            let cut = rng.random_range(0..=b.len());
            let _ = parse_results(&b[..cut]);
            let _ = parse_results(&b);
        }
    }
}
