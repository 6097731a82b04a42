//! Automated disclosure checks for airlock files: pure functions from a policy, a file name and
//! the file's bytes to a [`DisclosureRecord`] that says, rule by rule, what passed, what needs a
//! reviewer's eye and what fails, with cell coordinates for tables.
//!
//! Files are pushed in chunks ([`Checker::update`]) or read from any [`Read`] ([`check_reader`]),
//! so a caller can check a file as it streams from the object store without holding it: memory
//! is bounded by one CSV record (or one 1 MiB piece of a text line) plus the findings.
//!
//! ```ignore
//! let policy = Policy::load(Path::new("policies/egress/default.yaml"))?;
//! let record = check_reader(&policy, "table.csv", file)?;
//! if record.blocked { /* the request goes to `blocked` */ }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acro;
mod content;
mod headers;
mod identifiers;
pub mod policy;
pub mod record;
mod table;

use std::io::{self, Read};

pub use identifiers::is_valid_nhs_number;
pub use policy::{Action, Content, Policy, PolicyError, RuleId};
pub use record::{
    DisclosureRecord, Finding, MAX_LISTED_FINDINGS, Outcome, RuleResult, TableSummary, any_blocked,
};

use content::{Bom, Utf8Tracker};
use identifiers::{IdFindings, IdKind, Scan, TextScanner};
use record::{Findings, plural};
use table::{TableChecker, TableReport};

/// How the body of the file is being read.
#[derive(Debug)]
enum Body {
    Table(Box<TableChecker>),
    Text(Box<TextScanner>),
    /// Not read: binary formats (only the signature is checked).
    Skip,
}

/// Checks one file pushed in chunks of any size. Create it, [`update`](Checker::update) with
/// each chunk in order, then [`finish`](Checker::finish).
#[derive(Debug)]
pub struct Checker<'p> {
    policy: &'p Policy,
    file: String,
    ext: Option<String>,
    allowed: Option<policy::FileType>,
    content: Content,
    size: u64,
    /// The first bytes, held until there are enough to recognise a byte-order mark.
    head: Vec<u8>,
    started: bool,
    bom: Bom,
    /// The first 8 bytes, for binary signatures.
    signature: Vec<u8>,
    utf8: Utf8Tracker,
    body: Body,
}

impl<'p> Checker<'p> {
    /// A checker of the named file under the policy.
    pub fn new(policy: &'p Policy, file_name: &str) -> Checker<'p> {
        let ext = policy::extension(file_name).map(str::to_ascii_lowercase);
        let allowed = policy.file_type(file_name).cloned();
        // A file type the policy does not list is still scanned as text: it fails file-type,
        // and reviewers also learn whether it holds identifiers.
        let content = allowed.as_ref().map_or(Content::Text, |t| t.content);
        let scan = Scan::new(policy);
        let body = match content {
            Content::Table => {
                let tsv = matches!(ext.as_deref(), Some("tsv" | "tab"));
                Body::Table(Box::new(TableChecker::new(
                    policy,
                    scan,
                    tsv.then_some(b'\t'),
                )))
            }
            Content::Text => Body::Text(Box::new(TextScanner::new(scan))),
            Content::Binary => Body::Skip,
        };
        Checker {
            policy,
            file: file_name.to_string(),
            ext,
            allowed,
            content,
            size: 0,
            head: Vec::new(),
            started: false,
            bom: Bom::None,
            signature: Vec::new(),
            utf8: Utf8Tracker::default(),
            body,
        }
    }

    /// Feeds the next chunk of the file.
    pub fn update(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        if self.signature.len() < 8 {
            let n = (8 - self.signature.len()).min(chunk.len());
            self.signature.extend_from_slice(&chunk[..n]);
        }
        if self.started {
            self.body_update(chunk);
            return;
        }
        // Up to four bytes decide the byte-order mark; they are held until then.
        self.head.extend_from_slice(chunk);
        if self.head.len() >= 4 {
            self.start();
        }
    }

    fn start(&mut self) {
        self.started = true;
        self.bom = content::bom(&self.head);
        let head = std::mem::take(&mut self.head);
        let body = if self.bom == Bom::Utf8 {
            &head[3..]
        } else {
            &head[..]
        };
        self.body_update(body);
    }

    fn body_update(&mut self, chunk: &[u8]) {
        if chunk.is_empty() || matches!(self.bom, Bom::Wide(_)) {
            return;
        }
        match &mut self.body {
            Body::Table(t) => t.update(chunk),
            Body::Text(t) => t.update(chunk),
            Body::Skip => return,
        }
        self.utf8.update(chunk);
    }

    /// Runs the rules and returns the record.
    pub fn finish(mut self) -> DisclosureRecord {
        if !self.started {
            self.start();
        }
        self.utf8.finish();
        let policy = self.policy;
        let mut out = Vec::new();
        let mut not_applicable = Vec::new();
        let mut table_summary = None;

        out.push(self.file_type_result());
        out.push(self.file_size_result());

        let readable = !matches!(self.body, Body::Skip);
        let wide = match self.bom {
            Bom::Wide(name) => Some(name),
            _ => None,
        };
        // The text-encoding rule is about files meant to be text; an unlisted type is only
        // scanned on the off chance.
        if readable && self.allowed.is_some() {
            out.push(self.encoding_result(wide));
        } else {
            not_applicable.push(RuleId::TextEncoding);
        }

        let (ids, table) = match std::mem::replace(&mut self.body, Body::Skip) {
            Body::Table(t) => {
                let report = t.finish();
                let TableReport {
                    summary,
                    ids,
                    results,
                } = report;
                table_summary = Some(summary);
                (Some(ids), Some(results))
            }
            Body::Text(t) => (Some(t.finish()), None),
            Body::Skip => (None, None),
        };

        let id_rules = [
            (RuleId::NhsNumber, IdKind::Nhs),
            (RuleId::UkPostcode, IdKind::Postcode),
            (RuleId::DateOfBirth, IdKind::Dob),
            (RuleId::EmailAddress, IdKind::Email),
        ];
        match ids {
            Some(mut ids) => {
                for (rule, kind) in id_rules {
                    out.push(identifier_result(rule, kind, &mut ids, wide));
                }
            }
            None => not_applicable.extend(id_rules.map(|(r, _)| r)),
        }

        match table {
            Some(results) => {
                for (rule, outcome, message, findings) in results {
                    if let Some(name) = wide {
                        out.push((
                            rule,
                            Outcome::Warn,
                            format!("not checked: the file is {name}"),
                            Findings::default(),
                        ));
                    } else {
                        out.push((rule, outcome, message, findings));
                    }
                }
            }
            None => not_applicable.extend(RuleId::ALL.into_iter().filter(|r| r.is_table_rule())),
        }

        let mut rules: Vec<RuleResult> = out
            .into_iter()
            .filter(|(rule, ..)| policy.action(*rule) != Action::Off)
            .map(|(rule, outcome, message, findings)| {
                let action = policy.action(rule);
                RuleResult {
                    rule,
                    outcome,
                    action,
                    blocking: outcome == Outcome::Fail && action == Action::Block,
                    message,
                    findings_total: findings.total,
                    findings: findings.list,
                }
            })
            .collect();
        rules.sort_by_key(|r| r.rule);
        not_applicable.retain(|r| policy.action(*r) != Action::Off);
        not_applicable.sort();

        DisclosureRecord {
            outcome: rules
                .iter()
                .map(|r| r.outcome)
                .max()
                .unwrap_or(Outcome::Pass),
            blocked: rules.iter().any(|r| r.blocking),
            file: self.file,
            size: self.size,
            content: self.content,
            policy: policy.name.clone(),
            table: table_summary,
            rules,
            not_applicable,
        }
    }

    fn file_type_result(&self) -> (RuleId, Outcome, String, Findings) {
        let rule = RuleId::FileType;
        let allowed_list = || {
            self.policy
                .file_type
                .types
                .iter()
                .flat_map(|t| t.extensions.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(ty) = &self.allowed else {
            let what = match &self.ext {
                Some(e) => format!("\".{e}\" files are not allowed"),
                None => "files without an extension are not allowed".to_string(),
            };
            return (
                rule,
                Outcome::Fail,
                format!("{what} (allowed: {})", allowed_list()),
                Findings::default(),
            );
        };
        let ext = self.ext.clone().unwrap_or_default();
        if let Some(max) = ty.max_size
            && self.size > max.0
        {
            return (
                rule,
                Outcome::Fail,
                format!(
                    "{} bytes: larger than the {} bytes allowed for .{ext} files",
                    self.size, max.0
                ),
                Findings::default(),
            );
        }
        if let Some((name, sigs)) = content::signature(&ext)
            && !sigs.iter().any(|s| self.signature.starts_with(s))
        {
            return (
                rule,
                Outcome::Fail,
                format!("the content is not a {name} file, as its .{ext} extension says"),
                Findings::default(),
            );
        }
        match ty.content {
            Content::Binary => (
                rule,
                Outcome::Warn,
                format!(
                    ".{ext} files are allowed, but their content is not checked automatically: review it by eye"
                ),
                Findings::default(),
            ),
            content => (
                rule,
                Outcome::Pass,
                format!(
                    ".{ext} files are allowed (checked as {})",
                    match content {
                        Content::Table => "a table",
                        _ => "text",
                    }
                ),
                Findings::default(),
            ),
        }
    }

    fn file_size_result(&self) -> (RuleId, Outcome, String, Findings) {
        let max = self.policy.file_size.max_size.0;
        let (outcome, message) = if self.size > max {
            (
                Outcome::Fail,
                format!("{} bytes: larger than the {max} bytes allowed", self.size),
            )
        } else {
            (
                Outcome::Pass,
                format!("{} bytes, at most {max} allowed", self.size),
            )
        };
        (RuleId::FileSize, outcome, message, Findings::default())
    }

    fn encoding_result(&self, wide: Option<&str>) -> (RuleId, Outcome, String, Findings) {
        let (outcome, message) = if let Some(name) = wide {
            (
                Outcome::Fail,
                format!(
                    "the file is {name}, which cannot be checked for identifiers: save it as UTF-8"
                ),
            )
        } else if let Some(at) = self.utf8.first_nul {
            (
                Outcome::Fail,
                format!(
                    "NUL byte at offset {at}: binary data or UTF-16 text without a byte-order mark cannot be checked; save it as UTF-8"
                ),
            )
        } else if let Some(at) = self.utf8.first_invalid {
            (
                Outcome::Warn,
                format!(
                    "not valid UTF-8 (first invalid byte at offset {at}, perhaps Latin-1): checked byte by byte, so letters outside ASCII were not read"
                ),
            )
        } else {
            (Outcome::Pass, "valid UTF-8".to_string())
        };
        (RuleId::TextEncoding, outcome, message, Findings::default())
    }
}

fn identifier_result(
    rule: RuleId,
    kind: IdKind,
    ids: &mut IdFindings,
    wide: Option<&str>,
) -> (RuleId, Outcome, String, Findings) {
    if let Some(name) = wide {
        return (
            rule,
            Outcome::Warn,
            format!("not checked: the file is {name}"),
            Findings::default(),
        );
    }
    let found = std::mem::take(&mut ids.by_kind[kind as usize]);
    let (one, many) = match kind {
        IdKind::Nhs => (
            "NHS number (valid check digit)",
            "NHS numbers (valid check digit)",
        ),
        IdKind::Postcode => ("full UK postcode", "full UK postcodes"),
        IdKind::Dob => ("date of birth", "dates of birth"),
        IdKind::Email => ("e-mail address", "e-mail addresses"),
    };
    let mut message = if found.total > 0 {
        format!("{} found", plural(found.total, one, many))
    } else {
        format!("no {many} found")
    };
    if kind == IdKind::Nhs && ids.invalid_nhs > 0 {
        message.push_str(&format!(
            "; {} with an invalid check digit not counted",
            plural(ids.invalid_nhs, "ten-digit number", "ten-digit numbers")
        ));
    }
    let outcome = if found.total > 0 {
        Outcome::Fail
    } else {
        Outcome::Pass
    };
    (rule, outcome, message, found)
}

/// Checks a file read from `reader` in 64 KiB pieces.
pub fn check_reader(
    policy: &Policy,
    file_name: &str,
    mut reader: impl Read,
) -> io::Result<DisclosureRecord> {
    let mut checker = Checker::new(policy, file_name);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => checker.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(checker.finish())
}

/// Checks a file held in memory.
pub fn check_bytes(policy: &Policy, file_name: &str, bytes: &[u8]) -> DisclosureRecord {
    let mut checker = Checker::new(policy, file_name);
    checker.update(bytes);
    checker.finish()
}

#[cfg(test)]
mod tests;
