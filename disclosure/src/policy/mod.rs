//! The egress rule set: named, parameterised disclosure rules read from YAML
//! (`policies/egress/*.yaml`). Loading checks every parameter and names the rule at fault, so a
//! bad policy file stops the API at start instead of silently weakening the checks.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

mod rules;
mod size;

pub use rules::*;
pub use size::ByteSize;

use crate::headers::words;

/// Why a policy could not be loaded. The message always says where: the file, the rule, the
/// section.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read.
    #[error("cannot read egress policy {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The policy file is wrong: where, and how.
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: String,
        /// What is wrong in it.
        #[source]
        source: Box<PolicyError>,
    },
    /// Not YAML, or the top level is wrong (unknown key, no `name`).
    #[error("egress policy: {0}")]
    Invalid(String),
    /// A rule the policy names is not one Trellis knows (`known` lists those).
    #[error("egress policy: unknown rule \"{name}\" (known rules: {known})")]
    UnknownRule {
        /// The name in the policy.
        name: String,
        /// The rules Trellis knows.
        known: String,
    },
    /// A rule's parameters are wrong.
    #[error("rule \"{rule}\": {message}")]
    Rule {
        /// The rule.
        rule: RuleId,
        /// What is wrong with its parameters.
        message: String,
    },
    /// The `tables` section is wrong.
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

/// Every rule Trellis knows, by its name in the policy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    /// `file-type`: only allowed file types leave.
    FileType,
    /// `file-size`: files above a size do not leave.
    FileSize,
    /// `text-encoding`: text and tables are UTF-8 without NUL bytes.
    TextEncoding,
    /// `table-structure`: a table can be read as one.
    TableStructure,
    /// `nhs-number`: no valid NHS numbers.
    NhsNumber,
    /// `uk-postcode`: no full UK postcodes.
    UkPostcode,
    /// `date-of-birth`: no dates of birth.
    DateOfBirth,
    /// `email-address`: no e-mail addresses.
    EmailAddress,
    /// `min-cell-count`: no count below the threshold.
    MinCellCount,
    /// `zeros`: no zero counts.
    Zeros,
    /// `rounding`: counts are rounded.
    Rounding,
    /// `suppression`: no suppressed cell can be recovered from a total.
    Suppression,
    /// `totals`: totals match their cells.
    Totals,
    /// `row-level`: the table is not row-level data.
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

    /// The rule's name in the policy file and the record.
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

    /// The rule of that name, if there is one.
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

/// A loaded, validated rule set.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// The policy's name, recorded with each check.
    pub name: String,
    /// What the policy is for.
    pub description: String,
    /// How tables are read.
    pub tables: TableSettings,
    /// The `file-type` rule.
    pub file_type: FileTypeRule,
    /// The `file-size` rule.
    pub file_size: FileSizeRule,
    /// The `text-encoding` rule.
    pub text_encoding: SimpleRule,
    /// The `table-structure` rule.
    pub table_structure: SimpleRule,
    /// The `nhs-number` rule.
    pub nhs_number: SimpleRule,
    /// The `uk-postcode` rule.
    pub uk_postcode: PostcodeRule,
    /// The `date-of-birth` rule.
    pub date_of_birth: DateOfBirthRule,
    /// The `email-address` rule.
    pub email_address: SimpleRule,
    /// The `min-cell-count` rule.
    pub min_cell_count: MinCellCountRule,
    /// The `zeros` rule.
    pub zeros: SimpleRule,
    /// The `rounding` rule.
    pub rounding: RoundingRule,
    /// The `suppression` rule.
    pub suppression: SuppressionRule,
    /// The `totals` rule.
    pub totals: TotalsRule,
    /// The `row-level` rule.
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

#[cfg(test)]
mod tests;
