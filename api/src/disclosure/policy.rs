//! The egress rule set: named, parameterised disclosure rules read from YAML
//! (`policies/egress/*.yaml`). Loading checks every parameter and names the rule at fault, so a
//! bad policy file stops the API at start instead of silently weakening the checks.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Why a policy could not be loaded. The message always says where: the file, the rule, the
/// section.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read egress policy {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    InFile {
        path: String,
        #[source]
        source: Box<PolicyError>,
    },
    /// Not YAML, or the top level is wrong (unknown key, no `name`).
    #[error("egress policy: {0}")]
    Invalid(String),
    #[error("egress policy: unknown rule \"{name}\" (known rules: {known})")]
    UnknownRule { name: String, known: String },
    #[error("rule \"{rule}\": {message}")]
    Rule { rule: RuleId, message: String },
    #[error("section \"tables\": {0}")]
    Tables(String),
}

impl PolicyError {
    /// The rule at fault, if the error is about one rule (looking through the file wrapper).
    pub fn rule(&self) -> Option<RuleId> {
        match self {
            PolicyError::Rule { rule, .. } => Some(*rule),
            PolicyError::InFile { source, .. } => source.rule(),
            _ => None,
        }
    }
}

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

/// Every rule Trellis knows, by its name in the policy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    FileType,
    FileSize,
    TextEncoding,
    TableStructure,
    NhsNumber,
    UkPostcode,
    DateOfBirth,
    EmailAddress,
    MinCellCount,
    Zeros,
    Rounding,
    Suppression,
    Totals,
    RowLevel,
}

impl RuleId {
    /// In the order the record lists them: gatekeeping, identifiers, then table rules.
    pub const ALL: [RuleId; 14] = [
        RuleId::FileType,
        RuleId::FileSize,
        RuleId::TextEncoding,
        RuleId::TableStructure,
        RuleId::NhsNumber,
        RuleId::UkPostcode,
        RuleId::DateOfBirth,
        RuleId::EmailAddress,
        RuleId::MinCellCount,
        RuleId::Zeros,
        RuleId::Rounding,
        RuleId::Suppression,
        RuleId::Totals,
        RuleId::RowLevel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RuleId::FileType => "file-type",
            RuleId::FileSize => "file-size",
            RuleId::TextEncoding => "text-encoding",
            RuleId::TableStructure => "table-structure",
            RuleId::NhsNumber => "nhs-number",
            RuleId::UkPostcode => "uk-postcode",
            RuleId::DateOfBirth => "date-of-birth",
            RuleId::EmailAddress => "email-address",
            RuleId::MinCellCount => "min-cell-count",
            RuleId::Zeros => "zeros",
            RuleId::Rounding => "rounding",
            RuleId::Suppression => "suppression",
            RuleId::Totals => "totals",
            RuleId::RowLevel => "row-level",
        }
    }

    pub fn from_name(name: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Rules that only make sense for CSV/TSV tables.
    pub fn is_table_rule(self) -> bool {
        matches!(
            self,
            RuleId::TableStructure
                | RuleId::MinCellCount
                | RuleId::Zeros
                | RuleId::Rounding
                | RuleId::Suppression
                | RuleId::Totals
                | RuleId::RowLevel
        )
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

fn parse_size(text: &str) -> Result<u64, String> {
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileType {
    /// Lower-case, without the dot.
    pub extensions: Vec<String>,
    pub content: Content,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<ByteSize>,
}

const MIB: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct FileTypeRule {
    pub action: Action,
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct FileSizeRule {
    pub action: Action,
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
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PostcodeRule {
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct DateOfBirthRule {
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct MinCellCountRule {
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RoundingRule {
    pub action: Action,
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct SuppressionRule {
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct TotalsRule {
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RowLevelRule {
    pub action: Action,
    pub max_rows: u64,
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

fn simple(action: Action) -> SimpleRule {
    SimpleRule { action }
}

/// A loaded, validated rule set.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub name: String,
    pub description: String,
    pub tables: TableSettings,
    pub file_type: FileTypeRule,
    pub file_size: FileSizeRule,
    pub text_encoding: SimpleRule,
    pub table_structure: SimpleRule,
    pub nhs_number: SimpleRule,
    pub uk_postcode: PostcodeRule,
    pub date_of_birth: DateOfBirthRule,
    pub email_address: SimpleRule,
    pub min_cell_count: MinCellCountRule,
    pub zeros: SimpleRule,
    pub rounding: RoundingRule,
    pub suppression: SuppressionRule,
    pub totals: TotalsRule,
    pub row_level: RowLevelRule,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tables: Option<TableSettings>,
    #[serde(default)]
    rules: Option<serde_yaml::Mapping>,
}

impl Policy {
    /// Every rule with its default parameters, under the given name.
    pub fn with_defaults(name: &str) -> Policy {
        Policy {
            name: name.to_string(),
            description: String::new(),
            tables: TableSettings::default(),
            file_type: FileTypeRule::default(),
            file_size: FileSizeRule::default(),
            text_encoding: simple(Action::Block),
            table_structure: simple(Action::Inform),
            nhs_number: simple(Action::Block),
            uk_postcode: PostcodeRule::default(),
            date_of_birth: DateOfBirthRule::default(),
            email_address: simple(Action::Block),
            min_cell_count: MinCellCountRule::default(),
            zeros: simple(Action::Inform),
            rounding: RoundingRule::default(),
            suppression: SuppressionRule::default(),
            totals: TotalsRule::default(),
            row_level: RowLevelRule::default(),
        }
    }

    /// Reads and validates a policy file; errors start with the path.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Policy::from_yaml(&text).map_err(|e| PolicyError::InFile {
            path: path.display().to_string(),
            source: Box::new(e),
        })
    }

    /// Parses and validates policy text. Rules left out keep their defaults.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let raw: RawPolicy =
            serde_yaml::from_str(text).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        if raw.name.trim().is_empty() {
            return Err(PolicyError::Invalid("name must not be empty".into()));
        }
        let mut policy = Policy::with_defaults(raw.name.trim());
        policy.description = raw.description.unwrap_or_default();
        if let Some(tables) = raw.tables {
            policy.tables = tables;
        }
        for (key, value) in raw.rules.unwrap_or_default() {
            let Some(name) = key.as_str() else {
                return Err(PolicyError::Invalid(format!(
                    "rule names must be strings, found {key:?}"
                )));
            };
            let rule = RuleId::from_name(name).ok_or_else(|| PolicyError::UnknownRule {
                name: name.to_string(),
                known: RuleId::ALL.map(RuleId::name).join(", "),
            })?;
            policy.set_rule(rule, value)?;
        }
        policy.validate()?;
        Ok(policy)
    }

    fn set_rule(&mut self, rule: RuleId, value: serde_yaml::Value) -> Result<(), PolicyError> {
        fn parse<T: serde::de::DeserializeOwned>(
            rule: RuleId,
            value: serde_yaml::Value,
        ) -> Result<T, PolicyError> {
            // `rule-name:` with nothing after it means "this rule, with its defaults".
            let value = if value.is_null() {
                serde_yaml::Value::Mapping(Default::default())
            } else {
                value
            };
            serde_yaml::from_value(value).map_err(|e| PolicyError::Rule {
                rule,
                message: e.to_string(),
            })
        }
        // A simple rule still has its own default action when `action` is left out.
        fn parse_simple(
            rule: RuleId,
            value: serde_yaml::Value,
            current: &SimpleRule,
        ) -> Result<SimpleRule, PolicyError> {
            #[derive(Deserialize, Default)]
            #[serde(deny_unknown_fields)]
            struct Partial {
                action: Option<Action>,
            }
            let partial: Partial = parse(rule, value)?;
            Ok(SimpleRule {
                action: partial.action.unwrap_or(current.action),
            })
        }
        match rule {
            RuleId::FileType => self.file_type = parse(rule, value)?,
            RuleId::FileSize => self.file_size = parse(rule, value)?,
            RuleId::TextEncoding => {
                self.text_encoding = parse_simple(rule, value, &self.text_encoding)?
            }
            RuleId::TableStructure => {
                self.table_structure = parse_simple(rule, value, &self.table_structure)?
            }
            RuleId::NhsNumber => self.nhs_number = parse_simple(rule, value, &self.nhs_number)?,
            RuleId::UkPostcode => self.uk_postcode = parse(rule, value)?,
            RuleId::DateOfBirth => self.date_of_birth = parse(rule, value)?,
            RuleId::EmailAddress => {
                self.email_address = parse_simple(rule, value, &self.email_address)?
            }
            RuleId::MinCellCount => self.min_cell_count = parse(rule, value)?,
            RuleId::Zeros => self.zeros = parse_simple(rule, value, &self.zeros)?,
            RuleId::Rounding => self.rounding = parse(rule, value)?,
            RuleId::Suppression => self.suppression = parse(rule, value)?,
            RuleId::Totals => self.totals = parse(rule, value)?,
            RuleId::RowLevel => self.row_level = parse(rule, value)?,
        }
        Ok(())
    }

    fn validate(&mut self) -> Result<(), PolicyError> {
        let fail = |rule: RuleId, message: String| Err(PolicyError::Rule { rule, message });

        // file-type: every extension once, letters and digits only.
        if self.file_type.types.is_empty() {
            return fail(
                RuleId::FileType,
                "types must list at least one file type".into(),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for ty in &mut self.file_type.types {
            if ty.extensions.is_empty() {
                return fail(
                    RuleId::FileType,
                    "every type needs at least one extension".into(),
                );
            }
            for ext in &mut ty.extensions {
                if ext.is_empty() || !ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return fail(
                        RuleId::FileType,
                        format!(
                            "extension \"{ext}\" must be letters and digits only, without the dot"
                        ),
                    );
                }
                *ext = ext.to_ascii_lowercase();
                if !seen.insert(ext.clone()) {
                    return fail(
                        RuleId::FileType,
                        format!("extension \"{ext}\" is listed twice"),
                    );
                }
            }
            if ty.max_size == Some(ByteSize(0)) {
                return fail(RuleId::FileType, "maxSize must be at least 1 byte".into());
            }
        }
        if self.file_size.max_size.0 == 0 {
            return fail(RuleId::FileSize, "maxSize must be at least 1 byte".into());
        }
        check_names(RuleId::DateOfBirth, "columns", &self.date_of_birth.columns)?;
        if self.min_cell_count.threshold < 1 {
            return fail(RuleId::MinCellCount, "threshold must be at least 1".into());
        }
        if self.rounding.base < 2 {
            return fail(RuleId::Rounding, "base must be at least 2".into());
        }
        if self
            .rounding
            .midpoint6_suffix
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return fail(
                RuleId::Rounding,
                "midpoint6Suffix must not be empty (leave it out to check no column as midpoint-6)"
                    .into(),
            );
        }
        for marker in &self.suppression.markers {
            let m = marker.trim();
            if m.is_empty() {
                return fail(
                    RuleId::Suppression,
                    "markers must not be blank: a blank cell is missing, not suppressed".into(),
                );
            }
            if m.parse::<f64>().is_ok() {
                return fail(
                    RuleId::Suppression,
                    format!("marker \"{m}\" is a number and would hide real counts"),
                );
            }
            if self
                .tables
                .missing_markers
                .iter()
                .any(|x| x.trim().eq_ignore_ascii_case(m))
            {
                return fail(
                    RuleId::Suppression,
                    format!("marker \"{m}\" is also listed in tables.missingMarkers"),
                );
            }
        }
        if self.totals.labels.is_empty() {
            return fail(RuleId::Totals, "labels must list at least one label".into());
        }
        check_names(RuleId::Totals, "labels", &self.totals.labels)?;
        if self.row_level.max_rows < 1 {
            return fail(RuleId::RowLevel, "maxRows must be at least 1".into());
        }
        check_names(
            RuleId::RowLevel,
            "identifierColumns",
            &self.row_level.identifier_columns,
        )?;
        for name in &self.tables.non_count_columns {
            if words(name).is_empty() {
                return Err(PolicyError::Tables(format!(
                    "nonCountColumns: \"{name}\" has no letters or digits"
                )));
            }
        }
        Ok(())
    }

    /// The action of a rule.
    pub fn action(&self, rule: RuleId) -> Action {
        match rule {
            RuleId::FileType => self.file_type.action,
            RuleId::FileSize => self.file_size.action,
            RuleId::TextEncoding => self.text_encoding.action,
            RuleId::TableStructure => self.table_structure.action,
            RuleId::NhsNumber => self.nhs_number.action,
            RuleId::UkPostcode => self.uk_postcode.action,
            RuleId::DateOfBirth => self.date_of_birth.action,
            RuleId::EmailAddress => self.email_address.action,
            RuleId::MinCellCount => self.min_cell_count.action,
            RuleId::Zeros => self.zeros.action,
            RuleId::Rounding => self.rounding.action,
            RuleId::Suppression => self.suppression.action,
            RuleId::Totals => self.totals.action,
            RuleId::RowLevel => self.row_level.action,
        }
    }

    /// The allowed type a file name falls under, by its extension.
    pub fn file_type(&self, file_name: &str) -> Option<&FileType> {
        let ext = extension(file_name)?;
        self.file_type
            .types
            .iter()
            .find(|t| t.extensions.iter().any(|e| e.eq_ignore_ascii_case(ext)))
    }

    /// The largest upload of this file name that no blocking rule would refuse, for the upload
    /// endpoint to enforce while streaming (None: no blocking size limit applies).
    pub fn max_upload_size(&self, file_name: &str) -> Option<u64> {
        let mut limit = None::<u64>;
        let mut tighten = |n: u64| limit = Some(limit.map_or(n, |l| l.min(n)));
        if self.file_size.action == Action::Block {
            tighten(self.file_size.max_size.0);
        }
        if self.file_type.action == Action::Block
            && let Some(max) = self.file_type(file_name).and_then(|t| t.max_size)
        {
            tighten(max.0);
        }
        limit
    }
}

fn check_names(rule: RuleId, field: &str, names: &[String]) -> Result<(), PolicyError> {
    for name in names {
        if words(name).is_empty() {
            return Err(PolicyError::Rule {
                rule,
                message: format!("{field}: \"{name}\" has no letters or digits"),
            });
        }
    }
    Ok(())
}

/// The extension of a file name (after the last dot of its last path segment), if any.
pub fn extension(file_name: &str) -> Option<&str> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let (stem, ext) = base.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then_some(ext)
}

/// A header or configured name as lower-case words: `Date_of-Birth`, `dateOfBirth` and
/// `date of birth` all become `[date, of, birth]`, so names match however a tool spells them.
pub fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_alphanumeric() {
            // camelCase boundary: a capital after a lower-case letter or digit starts a word.
            if c.is_uppercase() && prev_lower && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            cur.extend(c.to_lowercase());
        } else {
            prev_lower = false;
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether `needle`'s words appear, in order and adjacent, among `hay`'s words.
pub fn words_contain(hay: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../policies/egress/default.yaml");

    fn err(yaml: &str) -> String {
        Policy::from_yaml(yaml).unwrap_err().to_string()
    }

    #[test]
    fn shipped_default_policy_loads_and_equals_the_built_in_defaults() {
        let shipped = Policy::from_yaml(SHIPPED).unwrap();
        let mut defaults = Policy::with_defaults("default");
        defaults.description = shipped.description.clone();
        // The file's comments promise that a rule left out runs "with the defaults shown here".
        assert_eq!(shipped, defaults);
        assert_eq!(shipped.min_cell_count.threshold, 10);
        assert_eq!(shipped.rounding.base, 5);
        assert_eq!(shipped.action(RuleId::Zeros), Action::Inform);
        assert_eq!(shipped.action(RuleId::NhsNumber), Action::Block);
    }

    #[test]
    fn shipped_policy_file_on_disk_loads_through_load() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/egress/default.yaml");
        let p = Policy::load(&path).unwrap();
        assert_eq!(p.name, "default");
    }

    #[test]
    fn minimal_policy_has_every_rule_on() {
        let p = Policy::from_yaml("name: minimal").unwrap();
        for rule in RuleId::ALL {
            assert_ne!(p.action(rule), Action::Off, "{rule}");
        }
    }

    #[test]
    fn rules_can_be_tuned_and_switched_off() {
        let p = Policy::from_yaml(
            "name: strict\nrules:\n  min-cell-count: {threshold: 8, action: inform}\n  zeros: {action: off}\n  rounding:\n  nhs-number: {}\n",
        )
        .unwrap();
        assert_eq!(p.min_cell_count.threshold, 8);
        assert_eq!(p.action(RuleId::MinCellCount), Action::Inform);
        assert_eq!(p.action(RuleId::Zeros), Action::Off);
        // Null and empty mappings keep the defaults, including the default action.
        assert_eq!(p.rounding, RoundingRule::default());
        assert_eq!(p.action(RuleId::NhsNumber), Action::Block);
    }

    #[test]
    fn a_simple_rule_without_action_keeps_its_own_default_action() {
        let p = Policy::from_yaml("name: x\nrules:\n  zeros: {}\n  table-structure: {}\n").unwrap();
        assert_eq!(p.action(RuleId::Zeros), Action::Inform);
        assert_eq!(p.action(RuleId::TableStructure), Action::Inform);
    }

    #[test]
    fn bad_policies_name_the_rule() {
        let cases = [
            (
                "name: x\nrules:\n  min-cell-count: {threshold: 0}\n",
                "rule \"min-cell-count\": threshold must be at least 1",
            ),
            (
                "name: x\nrules:\n  rounding: {base: 1}\n",
                "rule \"rounding\": base must be at least 2",
            ),
            (
                "name: x\nrules:\n  min-cell-count: {treshold: 5}\n",
                "rule \"min-cell-count\": unknown field `treshold`",
            ),
            (
                "name: x\nrules:\n  min-cell-count: {threshold: -3}\n",
                "rule \"min-cell-count\": invalid value",
            ),
            (
                "name: x\nrules:\n  zeros: {action: maybe}\n",
                "rule \"zeros\": unknown variant `maybe`",
            ),
            (
                "name: x\nrules:\n  zeros: {threshold: 3}\n",
                "rule \"zeros\": unknown field `threshold`",
            ),
            (
                "name: x\nrules:\n  file-size: {maxSize: 16 parsecs}\n",
                "rule \"file-size\": invalid size \"16 parsecs\"",
            ),
            (
                "name: x\nrules:\n  file-size: {maxSize: 0}\n",
                "rule \"file-size\": maxSize must be at least 1 byte",
            ),
            (
                "name: x\nrules:\n  file-type: {types: []}\n",
                "rule \"file-type\": types must list at least one file type",
            ),
            (
                "name: x\nrules:\n  file-type:\n    types: [{extensions: [.csv], content: table}]\n",
                "rule \"file-type\": extension \".csv\" must be letters and digits only",
            ),
            (
                "name: x\nrules:\n  file-type:\n    types: [{extensions: [csv], content: table}, {extensions: [CSV], content: text}]\n",
                "rule \"file-type\": extension \"csv\" is listed twice",
            ),
            (
                "name: x\nrules:\n  file-type:\n    types: [{extensions: [csv], content: spreadsheet}]\n",
                "rule \"file-type\": unknown variant `spreadsheet`",
            ),
            (
                "name: x\nrules:\n  suppression: {markers: [\"*\", \"  \"]}\n",
                "rule \"suppression\": markers must not be blank",
            ),
            (
                "name: x\nrules:\n  suppression: {markers: [\"5\"]}\n",
                "rule \"suppression\": marker \"5\" is a number",
            ),
            (
                "name: x\nrules:\n  suppression: {markers: [\"-\"]}\n",
                "rule \"suppression\": marker \"-\" is also listed in tables.missingMarkers",
            ),
            (
                "name: x\nrules:\n  totals: {labels: []}\n",
                "rule \"totals\": labels must list at least one label",
            ),
            (
                "name: x\nrules:\n  row-level: {maxRows: 0}\n",
                "rule \"row-level\": maxRows must be at least 1",
            ),
            (
                "name: x\nrules:\n  date-of-birth: {columns: [\"--\"]}\n",
                "rule \"date-of-birth\": columns: \"--\" has no letters or digits",
            ),
            (
                "name: x\nrules:\n  rounding: {midpoint6Suffix: \"\"}\n",
                "rule \"rounding\": midpoint6Suffix must not be empty",
            ),
        ];
        for (yaml, want) in cases {
            let got = err(yaml);
            assert!(
                got.starts_with(want),
                "policy {yaml:?}\n  got:  {got}\n  want: {want}"
            );
        }
    }

    #[test]
    fn error_reports_which_rule_programmatically() {
        let e = Policy::from_yaml("name: x\nrules:\n  rounding: {base: 0}\n").unwrap_err();
        assert_eq!(e.rule(), Some(RuleId::Rounding));
    }

    #[test]
    fn bad_top_level_structure_is_rejected() {
        assert!(
            err("name: x\nrules:\n  min-cel-count: {}\n").starts_with(
                "egress policy: unknown rule \"min-cel-count\" (known rules: file-type,"
            )
        );
        assert!(err("rules: {}\n").contains("missing field `name`"));
        assert!(err("name: \"  \"\n").contains("name must not be empty"));
        assert!(err("name: x\nextra: 1\n").contains("unknown field `extra`"));
        assert!(err("name: x\nrules: [1, 2]\n").starts_with("egress policy:"));
        assert!(err("name: x\nrules:\n  zeros: {}\n  zeros: {}\n").contains("duplicate"));
        assert!(
            err("name: x\ntables: {nonCountColumns: [\"!!\"]}\n")
                .starts_with("section \"tables\": nonCountColumns")
        );
        assert!(err(": : :\n\t- [").starts_with("egress policy:"));
        assert!(err("").starts_with("egress policy:"));
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("trellis-policy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.yaml");
        std::fs::write(&path, "name: x\nrules:\n  min-cell-count: {threshold: 0}\n").unwrap();
        let e = Policy::load(&path).unwrap_err();
        assert_eq!(e.rule(), Some(RuleId::MinCellCount));
        assert!(
            e.to_string()
                .ends_with("bad.yaml: rule \"min-cell-count\": threshold must be at least 1"),
            "{e}"
        );
        let missing = Policy::load(&dir.join("missing.yaml")).unwrap_err();
        assert!(matches!(missing, PolicyError::Read { .. }), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("16 MiB"), Ok(16 << 20));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("512kib"), Ok(512 << 10));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("100B"), Ok(100));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("99999999999999TiB").is_err());
        let p = Policy::from_yaml("name: x\nrules:\n  file-size: {maxSize: 1048576}\n").unwrap();
        assert_eq!(p.file_size.max_size, ByteSize(1 << 20));
    }

    #[test]
    fn file_types_and_upload_limits() {
        let p = Policy::from_yaml(
            "name: x\nrules:\n  file-size: {maxSize: 10MiB}\n  file-type:\n    types:\n      - {extensions: [CSV], content: table, maxSize: 1MiB}\n      - {extensions: [txt], content: text}\n",
        )
        .unwrap();
        assert_eq!(
            p.file_type("out/Table.CSV").unwrap().content,
            Content::Table
        );
        assert!(p.file_type("notes.txt").is_some());
        assert!(p.file_type("image.svg").is_none());
        assert!(p.file_type("csv").is_none());
        assert!(p.file_type(".csv").is_none());
        assert_eq!(p.max_upload_size("t.csv"), Some(1 << 20));
        assert_eq!(p.max_upload_size("t.txt"), Some(10 << 20));
        let inform = Policy::from_yaml(
            "name: x\nrules:\n  file-size: {action: inform}\n  file-type: {action: inform}\n",
        )
        .unwrap();
        assert_eq!(inform.max_upload_size("t.csv"), None);
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("a.csv"), Some("csv"));
        assert_eq!(extension("dir.d/a.tar.gz"), Some("gz"));
        assert_eq!(extension("dir.d/README"), None);
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("trailing."), None);
    }

    #[test]
    fn header_words() {
        assert_eq!(words("Date_of-Birth"), ["date", "of", "birth"]);
        assert_eq!(words("dateOfBirth"), ["date", "of", "birth"]);
        assert_eq!(words("patientID"), ["patient", "id"]);
        assert_eq!(words("NHS number "), ["nhs", "number"]);
        assert_eq!(words("d.o.b"), ["d", "o", "b"]);
        assert_eq!(words("count_2019"), ["count", "2019"]);
        assert!(words("--").is_empty());
        let h = words("region_id");
        assert!(words_contain(&h, &words("id")));
        assert!(!words_contain(&words("valid"), &words("id")));
        assert!(words_contain(
            &words("Patient date of birth"),
            &words("date of birth")
        ));
        assert!(!words_contain(
            &words("date of death"),
            &words("date of birth")
        ));
        assert!(!words_contain(&h, &[]));
    }
}
