//! The disclosure record: what the automated checks found in one file, as reviewers and the
//! submit endpoint read it (camelCase JSON).

use serde::{Deserialize, Serialize};

use super::policy::{Action, Content, RuleId};

/// A rule's outcome. Ordered: `Pass < Warn < Fail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The rule found nothing.
    Pass,
    /// Not a failure, but something reviewers must look at by hand (never blocks).
    Warn,
    /// The rule failed; whether that blocks is the policy's action.
    Fail,
}

/// The most findings listed per rule; `RuleResult::findings_total` still counts them all.
pub const MAX_LISTED_FINDINGS: usize = 1000;

/// Where a finding is and what it holds.
///
/// Table cells have `row` and `column`, 1-based as a spreadsheet shows them (row 1 is the
/// header row). Text has `line` and `column` (1-based line, 1-based byte column).
/// Identifier values are masked (first two characters kept) so that the record, which is stored
/// and shown beside the file, does not itself repeat an identifier.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The table row (1-based; row 1 is the header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
    /// The text line (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The column: a table's (1-based), or a byte in a line (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// The column's header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// What the cell or text holds (identifiers masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One rule's result for one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleResult {
    /// The rule.
    pub rule: RuleId,
    /// What it found.
    pub outcome: Outcome,
    /// The policy's action for this rule (`block` or `inform`).
    pub action: Action,
    /// `outcome == fail` and `action == block`.
    pub blocking: bool,
    /// What it found, in a sentence.
    pub message: String,
    /// Where (at most [`MAX_LISTED_FINDINGS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// All findings, including those past the listed ones.
    #[serde(default)]
    pub findings_total: u64,
}

/// A CSV/TSV file as the table rules read it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableSummary {
    /// `","`, `";"` or `"\t"`.
    pub delimiter: String,
    /// Rows after the header.
    pub data_rows: u64,
    /// Fields in the header row.
    pub columns: u64,
    /// Headers of the columns read as counts.
    pub count_columns: Vec<String>,
}

/// The automated checks of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisclosureRecord {
    /// The file's name.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// How the file was read (`table`, `text`, `binary`), from its extension.
    pub content: Content,
    /// The policy's name.
    pub policy: String,
    /// The worst outcome of any rule.
    pub outcome: Outcome,
    /// Whether a blocking rule failed: the submission must not go on.
    pub blocked: bool,
    /// How a CSV/TSV file was read as a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableSummary>,
    /// Every rule that ran, in [`RuleId::ALL`] order.
    pub rules: Vec<RuleResult>,
    /// Rules that are on but do not apply to this kind of file (e.g. table rules for a `.txt`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_applicable: Vec<RuleId>,
}

impl DisclosureRecord {
    /// The result of one rule, if it ran.
    pub fn rule(&self, rule: RuleId) -> Option<&RuleResult> {
        self.rules.iter().find(|r| r.rule == rule)
    }

    /// The rules that block the submission.
    pub fn blocking_rules(&self) -> impl Iterator<Item = &RuleResult> {
        self.rules.iter().filter(|r| r.blocking)
    }
}

/// Whether a request whose files have these records must be blocked.
pub fn any_blocked<'a>(records: impl IntoIterator<Item = &'a DisclosureRecord>) -> bool {
    records.into_iter().any(|r| r.blocked)
}

/// Collects one rule's findings: the first [`MAX_LISTED_FINDINGS`] kept, all counted.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub list: Vec<Finding>,
    pub total: u64,
}

impl Findings {
    pub fn push(&mut self, f: impl FnOnce() -> Finding) {
        self.total += 1;
        // Built only when kept: most findings of a huge file are counted, not rendered.
        if self.list.len() < MAX_LISTED_FINDINGS {
            self.list.push(f());
        }
    }
}

/// "1 count", "3 counts".
pub(crate) fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A finding's value as shown in the record, shortened if long.
pub(crate) fn show(bytes: &[u8]) -> String {
    const MAX: usize = 80;
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// An identifier as shown in the record: the first two characters, then every letter and digit
/// replaced by `*` (separators kept, so reviewers recognise the shape).
pub(crate) fn mask(bytes: &[u8]) -> String {
    let s = show(bytes);
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if i >= 2 && c.is_alphanumeric() {
                '*'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_order_and_serialise_lowercase() {
        assert!(Outcome::Pass < Outcome::Warn && Outcome::Warn < Outcome::Fail);
        assert_eq!(serde_json::to_string(&Outcome::Warn).unwrap(), "\"warn\"");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1u64, "count", "counts"), "1 count");
        assert_eq!(plural(0u64, "count", "counts"), "0 counts");
        assert_eq!(plural(2u64, "count", "counts"), "2 counts");
    }

    #[test]
    fn masking_keeps_shape_only() {
        assert_eq!(mask(b"943 476 5919"), "94* *** ****");
        assert_eq!(mask(b"jo.smith@nhs.net"), "jo.*****@***.***");
        assert_eq!(mask(b"a"), "a");
        assert_eq!(show(b"  4 "), "4");
        assert_eq!(show(&[b'x'; 100]).chars().count(), 81);
        // Invalid UTF-8 is shown, not a panic.
        assert_eq!(show(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn findings_are_capped_but_counted() {
        let mut f = Findings::default();
        for i in 0..(MAX_LISTED_FINDINGS as u64 + 5) {
            f.push(|| Finding {
                row: Some(i),
                ..Default::default()
            });
        }
        assert_eq!(f.list.len(), MAX_LISTED_FINDINGS);
        assert_eq!(f.total, MAX_LISTED_FINDINGS as u64 + 5);
    }

    #[test]
    fn record_round_trips_as_camel_case_json() {
        let record = DisclosureRecord {
            file: "t.csv".into(),
            size: 10,
            content: Content::Table,
            policy: "default".into(),
            outcome: Outcome::Fail,
            blocked: true,
            table: Some(TableSummary {
                delimiter: ",".into(),
                data_rows: 2,
                columns: 2,
                count_columns: vec!["n".into()],
            }),
            rules: vec![RuleResult {
                rule: RuleId::MinCellCount,
                outcome: Outcome::Fail,
                action: Action::Block,
                blocking: true,
                message: "1 count below 10".into(),
                findings: vec![Finding {
                    row: Some(2),
                    column: Some(2),
                    header: Some("n".into()),
                    value: Some("4".into()),
                    ..Default::default()
                }],
                findings_total: 1,
            }],
            not_applicable: vec![],
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["rules"][0]["rule"], "min-cell-count");
        assert_eq!(json["rules"][0]["findingsTotal"], 1);
        assert_eq!(json["table"]["countColumns"][0], "n");
        assert_eq!(json["rules"][0]["findings"][0]["header"], "n");
        assert!(json["rules"][0]["findings"][0].get("line").is_none());
        let back: DisclosureRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
        assert!(any_blocked([&record]));
        assert_eq!(record.blocking_rules().count(), 1);
    }
}
