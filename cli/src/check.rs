//! `trellis egress check`: the server's disclosure checks (the same crate, the same policy
//! format) run on local files before anything is submitted, with what a script needs to gate on.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use trellis_disclosure::{DisclosureRecord, Outcome, Policy, check_reader};

use crate::CliError;

/// How a check ends, as the process's exit status: a script or a notebook cell gates on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Every rule passed.
    Pass = 0,
    /// Something for the output checkers to look at, or a failed rule the policy only reports.
    Warnings = 1,
    /// A blocking rule failed: the server would refuse the submission.
    Blocked = 2,
}

/// Findings shown per rule in the text report (`--output json` lists up to the record's limit).
const SHOWN_FINDINGS: usize = 20;

/// Checks each file against the policy, as the server checks a submitted file.
pub fn check_files(policy: &Policy, files: &[PathBuf]) -> Result<Vec<DisclosureRecord>, CliError> {
    files
        .iter()
        .map(|path| {
            let file = std::fs::File::open(path).map_err(|source| CliError::File {
                path: path.clone(),
                source,
            })?;
            check_reader(policy, &file_name(path), std::io::BufReader::new(file)).map_err(
                |source| CliError::File {
                    path: path.clone(),
                    source,
                },
            )
        })
        .collect()
}

/// The name the server would see: the file's own name, without its directory.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The worst verdict over the records.
pub fn verdict(records: &[DisclosureRecord]) -> Verdict {
    records
        .iter()
        .map(|record| match record.outcome {
            _ if record.blocked => Verdict::Blocked,
            Outcome::Pass => Verdict::Pass,
            Outcome::Warn | Outcome::Fail => Verdict::Warnings,
        })
        .max()
        .unwrap_or(Verdict::Pass)
}

/// The human-readable report: each file's verdict, then each rule that did not pass with where.
pub fn render(records: &[DisclosureRecord]) -> String {
    let mut out = String::new();
    for record in records {
        let verdict = match verdict(std::slice::from_ref(record)) {
            Verdict::Pass => "pass",
            Verdict::Warnings => "WARNINGS",
            Verdict::Blocked => "BLOCKED",
        };
        let shape = record
            .table
            .as_ref()
            .map(|t| {
                format!(
                    ", a table of {} × {}",
                    plural(t.data_rows, "row"),
                    plural(t.columns, "column")
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}: {verdict} (policy {}{shape})",
            record.file, record.policy
        );
        for rule in record.rules.iter().filter(|r| r.outcome != Outcome::Pass) {
            let how = match (rule.outcome, rule.blocking) {
                (_, true) => "blocks",
                (Outcome::Fail, false) => "fails (reported, not blocking)",
                _ => "warns",
            };
            let _ = writeln!(out, "  {} {how}: {}", rule.rule.name(), rule.message);
            for finding in rule.findings.iter().take(SHOWN_FINDINGS) {
                let mut place = Vec::new();
                if let Some(row) = finding.row {
                    place.push(format!("row {row}"));
                }
                if let Some(line) = finding.line {
                    place.push(format!("line {line}"));
                }
                if let Some(column) = finding.column {
                    let header = finding
                        .header
                        .as_deref()
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                    place.push(format!("column {column}{header}"));
                }
                let value = finding
                    .value
                    .as_deref()
                    .map(|v| format!(": {v}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "    {}{value}", place.join(", "));
            }
            let hidden = rule
                .findings_total
                .saturating_sub(SHOWN_FINDINGS.min(rule.findings.len()) as u64);
            if hidden > 0 {
                let _ = writeln!(
                    out,
                    "    … and {hidden} more (--output json lists up to {})",
                    trellis_disclosure::MAX_LISTED_FINDINGS
                );
            }
        }
    }
    out
}
