//! Each rule's parameters as the policy file writes them, with their defaults.

use serde::{Deserialize, Serialize};

use super::size::ByteSize;

/// What a rule's `fail` does to the submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A `fail` blocks the submission.
    Block,
    /// A `fail` is shown to reviewers and does not block.
    Inform,
    /// The rule is not run.
    Off,
}

/// How the content of an allowed file type is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    /// CSV/TSV: table rules and identifier scanning of every cell.
    Table,
    /// Identifier scanning of the text.
    Text,
    /// Not readable here; reviewers look at it (known formats must carry their signature).
    Binary,
}

/// A kind of file that may leave, by extension.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileType {
    /// Lower-case, without the dot.
    pub extensions: Vec<String>,
    /// How its content is checked.
    pub content: Content,
    /// Its own size limit, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<ByteSize>,
}

const MIB: u64 = 1 << 20;

/// The `file-type` rule: the kinds of file that may leave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct FileTypeRule {
    /// What a failure does.
    pub action: Action,
    /// The allowed kinds.
    pub types: Vec<FileType>,
}

impl Default for FileTypeRule {
    fn default() -> Self {
        let t = |exts: &[&str], content| FileType {
            extensions: exts.iter().map(|e| e.to_string()).collect(),
            content,
            max_size: Some(ByteSize(16 * MIB)),
        };
        FileTypeRule {
            action: Action::Block,
            types: vec![
                t(&["csv", "tsv"], Content::Table),
                t(&["txt", "log", "md"], Content::Text),
                t(&["json", "html"], Content::Text),
                t(&["png", "jpg", "jpeg"], Content::Binary),
                t(&["pdf"], Content::Binary),
            ],
        }
    }
}

/// The `file-size` rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct FileSizeRule {
    /// What a failure does.
    pub action: Action,
    /// The largest file that passes.
    pub max_size: ByteSize,
}

impl Default for FileSizeRule {
    fn default() -> Self {
        FileSizeRule {
            action: Action::Block,
            max_size: ByteSize(16 * MIB),
        }
    }
}

/// A rule whose only parameter is its action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SimpleRule {
    /// What a failure does.
    pub action: Action,
}

/// The `uk-postcode` rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PostcodeRule {
    /// What a failure does.
    pub action: Action,
    /// Also match lower-case postcodes ("sw1a 1aa"); off by default because lower-case prose
    /// matches far more often by chance ("b12 3rd").
    pub ignore_case: bool,
}

impl Default for PostcodeRule {
    fn default() -> Self {
        PostcodeRule {
            action: Action::Block,
            ignore_case: false,
        }
    }
}

/// The `date-of-birth` rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct DateOfBirthRule {
    /// What a failure does.
    pub action: Action,
    /// Column headers (matched on whole words) whose dates are dates of birth.
    pub columns: Vec<String>,
}

impl Default for DateOfBirthRule {
    fn default() -> Self {
        DateOfBirthRule {
            action: Action::Block,
            columns: strings(&["dob", "date of birth", "birth date", "birthdate", "d o b"]),
        }
    }
}

/// The `min-cell-count` rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct MinCellCountRule {
    /// What a failure does.
    pub action: Action,
    /// A count fails if `0 < count < threshold`.
    pub threshold: u64,
}

impl Default for MinCellCountRule {
    fn default() -> Self {
        MinCellCountRule {
            action: Action::Block,
            threshold: 10,
        }
    }
}

/// The `rounding` rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RoundingRule {
    /// What a failure does.
    pub action: Action,
    /// Counts must be multiples of this.
    pub base: u64,
    /// Columns whose header ends with this hold midpoint-6 values instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub midpoint6_suffix: Option<String>,
}

impl Default for RoundingRule {
    fn default() -> Self {
        RoundingRule {
            action: Action::Inform,
            base: 5,
            midpoint6_suffix: Some("_midpoint6".into()),
        }
    }
}

/// The `suppression` rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SuppressionRule {
    /// What a failure does.
    pub action: Action,
    /// Compared case-insensitively with the trimmed cell.
    pub markers: Vec<String>,
    /// Also treat `<N`, `<=N` and `≤N` as suppressed.
    pub less_than_markers: bool,
}

impl Default for SuppressionRule {
    fn default() -> Self {
        SuppressionRule {
            action: Action::Block,
            markers: strings(&[
                "*",
                "**",
                "[REDACTED]",
                "REDACTED",
                "c",
                "..",
                "x",
                "~",
                "suppressed",
            ]),
            less_than_markers: true,
        }
    }
}

/// The `totals` rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TotalsRule {
    /// What a failure does.
    pub action: Action,
    /// Row labels and column headers that mark totals (matched case-insensitively, whole words
    /// for headers).
    pub labels: Vec<String>,
}

impl Default for TotalsRule {
    fn default() -> Self {
        TotalsRule {
            action: Action::Inform,
            labels: strings(&["total", "totals", "all", "overall", "grand total", "sum"]),
        }
    }
}

/// The `row-level` rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RowLevelRule {
    /// What a failure does.
    pub action: Action,
    /// More data rows than this look like row-level data.
    pub max_rows: u64,
    /// Headers (whole words) of columns that identify people.
    pub identifier_columns: Vec<String>,
}

impl Default for RowLevelRule {
    fn default() -> Self {
        RowLevelRule {
            action: Action::Block,
            max_rows: 5000,
            identifier_columns: strings(&[
                "nhs number",
                "nhs no",
                "patient id",
                "person id",
                "patid",
                "pseudo id",
                "subject id",
                "participant id",
                "chi",
                "mrn",
                "hospital number",
                "patient name",
                "first name",
                "forename",
                "surname",
                "last name",
                "full name",
                "address",
                "dob",
                "date of birth",
                "email",
                "phone",
                "telephone",
                "mobile",
            ]),
        }
    }
}

/// How tables are read (not a rule: it shapes what the table rules see).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TableSettings {
    /// Headers (whole words) of integer columns that are not counts.
    pub non_count_columns: Vec<String>,
    /// Cell values (case-insensitive, trimmed) that mean "no value" and are ignored.
    pub missing_markers: Vec<String>,
}

impl Default for TableSettings {
    fn default() -> Self {
        TableSettings {
            non_count_columns: strings(&[
                "id",
                "code",
                "year",
                "month",
                "week",
                "day",
                "date",
                "time",
                "age",
                "postcode",
                "nhs",
                "percent",
                "percentage",
                "pct",
                "rate",
                "ratio",
                "proportion",
                "mean",
                "median",
                "sd",
                "min",
                "max",
                "p value",
                "index",
                "row",
                "rank",
            ]),
            missing_markers: strings(&["", "NA", "N/A", "NaN", "null", "none", "-"]),
        }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub(super) fn simple(action: Action) -> SimpleRule {
    SimpleRule { action }
}
