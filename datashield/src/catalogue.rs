//! The tables a server holds: CSV files in a data directory, `<dir>/<project>/<name>.csv`, each
//! the table `<project>.<name>`, with an optional data dictionary beside it
//! (`<name>.dictionary.yaml`) that fixes column types and, for categorical columns, the levels in
//! order, so that factor levels (and with them table columns, contrasts and coefficient names)
//! never depend on the server's locale or on which values happen to occur.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::value::{RObject, Vector, na_real};

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A column's type, as a data dictionary declares it (or as inferred from the values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Integer,
    Numeric,
    Logical,
    Character,
    Categorical,
}

impl ColumnType {
    /// Opal's `valueType` for a variable of this type.
    pub fn opal_value_type(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Numeric => "decimal",
            ColumnType::Logical => "boolean",
            ColumnType::Character | ColumnType::Categorical => "text",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Dictionary {
    columns: Vec<DictionaryColumn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DictionaryColumn {
    name: String,
    #[serde(rename = "type")]
    column_type: ColumnType,
    #[serde(default)]
    levels: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

/// One variable of a table, as the catalogue endpoints describe it.
#[derive(Clone, Debug, PartialEq)]
pub struct Variable {
    pub name: String,
    pub column_type: ColumnType,
    pub levels: Vec<String>,
    pub description: Option<String>,
}

/// A loaded table: its variables and the data frame a session receives.
#[derive(Clone, Debug)]
pub struct Table {
    pub project: String,
    pub name: String,
    pub variables: Vec<Variable>,
    /// Shared with every session the whole table is assigned to.
    pub frame: Arc<RObject>,
}

impl Table {
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.project, self.name)
    }

    pub fn rows(&self) -> usize {
        self.frame.nrow().unwrap_or(0)
    }

    /// The data frame restricted to `variables` (in the order asked), as Opal's `variables`
    /// filter gives; an unknown name is refused.
    pub fn select(&self, variables: Option<&[String]>) -> Result<Arc<RObject>, String> {
        let Some(wanted) = variables else {
            return Ok(self.frame.clone());
        };
        let mut columns = Vec::with_capacity(wanted.len());
        for name in wanted {
            let column = self.frame.element(name).ok_or_else(|| {
                format!("the table {} has no variable '{name}'", self.full_name())
            })?;
            columns.push((name.clone(), column.clone()));
        }
        Ok(Arc::new(RObject::data_frame(columns, self.rows())))
    }
}

/// Every table of a data directory, by `project.name`.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    pub tables: BTreeMap<String, Table>,
}

impl Catalogue {
    /// Loads every `<project>/<name>.csv` under `dir`. Anything malformed is refused with the file
    /// and the reason: a server never starts with a table it half understood.
    pub fn load(dir: &Path) -> Result<Catalogue, CatalogueError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CatalogueError::Io { path, source }
        };
        let mut tables = BTreeMap::new();
        let mut projects: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .collect::<Result<_, _>>()
            .map_err(io(dir))?;
        projects.sort_by_key(|entry| entry.file_name());
        for project in projects {
            if !project.file_type().map_err(io(&project.path()))?.is_dir() {
                continue;
            }
            let project_name = valid_name(&project.path(), &project.file_name().to_string_lossy())?;
            let mut files: Vec<_> = std::fs::read_dir(project.path())
                .map_err(io(&project.path()))?
                .collect::<Result<_, _>>()
                .map_err(io(&project.path()))?;
            files.sort_by_key(|entry| entry.file_name());
            for file in files {
                let path = file.path();
                let Some(stem) = path
                    .extension()
                    .filter(|e| *e == "csv")
                    .and(path.file_stem())
                else {
                    continue;
                };
                let table_name = valid_name(&path, &stem.to_string_lossy())?;
                let dictionary_path = path.with_file_name(format!("{table_name}.dictionary.yaml"));
                let dictionary = match std::fs::read_to_string(&dictionary_path) {
                    Ok(text) => Some(serde_yaml::from_str::<Dictionary>(&text).map_err(|e| {
                        CatalogueError::Invalid {
                            path: dictionary_path.clone(),
                            message: e.to_string(),
                        }
                    })?),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        return Err(CatalogueError::Io {
                            path: dictionary_path,
                            source: e,
                        });
                    }
                };
                let text = std::fs::read(&path).map_err(io(&path))?;
                let (variables, frame) =
                    read_csv(&text, dictionary.as_ref()).map_err(|message| {
                        CatalogueError::Invalid {
                            path: path.clone(),
                            message,
                        }
                    })?;
                let table = Table {
                    project: project_name.clone(),
                    name: table_name,
                    variables,
                    frame: Arc::new(frame),
                };
                tables.insert(table.full_name(), table);
            }
        }
        Ok(Catalogue { tables })
    }

    pub fn get(&self, full_name: &str) -> Option<&Table> {
        self.tables.get(full_name)
    }

    /// The projects (Opal datasources) and their table names.
    pub fn projects(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut projects: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for table in self.tables.values() {
            projects
                .entry(table.project.as_str())
                .or_default()
                .push(table.name.as_str());
        }
        projects
    }
}

/// Project and table names become parts of `project.table` and of URLs: letters, digits, `_`, `-`.
fn valid_name(path: &Path, name: &str) -> Result<String, CatalogueError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(CatalogueError::Invalid {
            path: path.to_owned(),
            message: format!(
                "'{name}' is not a valid project or table name (a letter, then letters, digits, '_' or '-')"
            ),
        })
    }
}

fn is_missing(cell: &str) -> bool {
    cell.is_empty() || cell == "NA"
}

/// Parses a CSV file (header row first) into a data frame, typed by the dictionary where it
/// speaks and inferred elsewhere (integer, then numeric, then logical, else character).
fn read_csv(
    bytes: &[u8],
    dictionary: Option<&Dictionary>,
) -> Result<(Vec<Variable>, RObject), String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(str::to_owned)
        .collect();
    if headers.is_empty() || headers.iter().any(String::is_empty) {
        return Err("the header row must name every column".into());
    }
    for (i, name) in headers.iter().enumerate() {
        if headers[..i].contains(name) {
            return Err(format!("the column '{name}' appears twice"));
        }
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("row {}: {e}", row + 2))?;
        if record.len() != headers.len() {
            return Err(format!(
                "row {} has {} cells, the header {}",
                row + 2,
                record.len(),
                headers.len()
            ));
        }
        for (column, cell) in record.iter().enumerate() {
            cells[column].push(cell.trim().to_owned());
        }
    }
    let declared: BTreeMap<&str, &DictionaryColumn> = dictionary
        .map(|d| d.columns.iter().map(|c| (c.name.as_str(), c)).collect())
        .unwrap_or_default();
    if let Some(unknown) = declared
        .keys()
        .find(|name| !headers.iter().any(|h| h == *name))
    {
        return Err(format!(
            "the data dictionary describes '{unknown}', which is not a column of the file"
        ));
    }
    let nrow = cells.first().map_or(0, Vec::len);
    let mut variables = Vec::with_capacity(headers.len());
    let mut columns = Vec::with_capacity(headers.len());
    for (name, values) in headers.iter().zip(&cells) {
        let entry = declared.get(name.as_str());
        let column_type = entry.map_or_else(|| infer(values), |c| c.column_type);
        let levels = entry.map(|c| c.levels.clone()).unwrap_or_default();
        if column_type == ColumnType::Categorical && levels.is_empty() {
            return Err(format!(
                "the categorical column '{name}' needs its levels in the data dictionary"
            ));
        }
        if column_type != ColumnType::Categorical && !levels.is_empty() {
            return Err(format!(
                "the column '{name}' has levels but is not categorical"
            ));
        }
        let column = parse_column(name, values, column_type, &levels)?;
        variables.push(Variable {
            name: name.clone(),
            column_type,
            levels,
            description: entry.and_then(|c| c.description.clone()),
        });
        columns.push((name.clone(), column));
    }
    Ok((variables, RObject::data_frame(columns, nrow)))
}

fn infer(values: &[String]) -> ColumnType {
    let present = || values.iter().filter(|v| !is_missing(v));
    if present().all(|v| v.parse::<i32>().is_ok()) {
        ColumnType::Integer
    } else if present().all(|v| parse_number(v).is_some()) {
        ColumnType::Numeric
    } else if present().all(|v| parse_logical(v).is_some()) {
        ColumnType::Logical
    } else {
        ColumnType::Character
    }
}

fn parse_number(cell: &str) -> Option<f64> {
    match cell {
        "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => cell.parse::<f64>().ok().filter(|x| x.is_finite()),
    }
}

fn parse_logical(cell: &str) -> Option<bool> {
    match cell {
        "TRUE" | "true" | "T" => Some(true),
        "FALSE" | "false" | "F" => Some(false),
        _ => None,
    }
}

fn parse_column(
    name: &str,
    values: &[String],
    column_type: ColumnType,
    levels: &[String],
) -> Result<RObject, String> {
    let bad = |row: usize, what: &str| {
        format!(
            "row {}, column '{name}': '{}' is not {what}",
            row + 2,
            values[row]
        )
    };
    Ok(match column_type {
        ColumnType::Integer => RObject::new(Vector::Integer(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if is_missing(v) {
                        Ok(None)
                    } else {
                        v.parse().map(Some).map_err(|_| bad(i, "an integer"))
                    }
                })
                .collect::<Result<_, _>>()?,
        )),
        ColumnType::Numeric => RObject::doubles(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if is_missing(v) {
                        Ok(na_real())
                    } else {
                        parse_number(v).ok_or_else(|| bad(i, "a number"))
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
        ColumnType::Logical => RObject::logicals(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if is_missing(v) {
                        Ok(None)
                    } else {
                        parse_logical(v)
                            .map(Some)
                            .ok_or_else(|| bad(i, "TRUE or FALSE"))
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
        ColumnType::Character => RObject::new(Vector::Character(
            values
                .iter()
                .map(|v| (!is_missing(v)).then(|| v.clone()))
                .collect(),
        )),
        ColumnType::Categorical => RObject::factor(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if is_missing(v) {
                        return Ok(None);
                    }
                    let code = levels.iter().position(|level| level == v).ok_or_else(|| {
                        format!(
                            "row {}, column '{name}': '{v}' is not one of its levels ({})",
                            i + 2,
                            levels.join(", ")
                        )
                    })?;
                    Ok(Some(code as i32 + 1))
                })
                .collect::<Result<_, String>>()?,
            levels.to_vec(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::is_na_real;

    fn dictionary(yaml: &str) -> Dictionary {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn types_are_inferred_and_missing_cells_are_na() {
        let (variables, frame) =
            read_csv(b"age,bmi,smoker,site\n50,21.5,TRUE,a\nNA,,FALSE,\n", None).unwrap();
        let types: Vec<_> = variables.iter().map(|v| v.column_type).collect();
        assert_eq!(
            types,
            [
                ColumnType::Integer,
                ColumnType::Numeric,
                ColumnType::Logical,
                ColumnType::Character
            ]
        );
        assert_eq!(frame.nrow(), Some(2));
        assert!(
            matches!(&frame.element("age").unwrap().vector, Vector::Integer(v) if v == &[Some(50), None])
        );
        assert!(
            matches!(&frame.element("bmi").unwrap().vector, Vector::Double(v) if v[0] == 21.5 && is_na_real(v[1]))
        );
        assert!(
            matches!(&frame.element("site").unwrap().vector, Vector::Character(v) if v == &[Some("a".to_owned()), None])
        );
    }

    #[test]
    fn dictionary_levels_fix_factor_order_whatever_the_values() {
        let dict = dictionary("columns:\n- {name: sex, type: categorical, levels: [M, F]}\n");
        let (_, frame) = read_csv(b"sex\nF\nM\nF\n", Some(&dict)).unwrap();
        let sex = frame.element("sex").unwrap();
        assert!(sex.is_factor());
        assert_eq!(sex.levels(), vec!["M", "F"]);
        assert!(matches!(&sex.vector, Vector::Integer(v) if v == &[Some(2), Some(1), Some(2)]));
    }

    #[test]
    fn malformed_files_are_refused_with_the_place() {
        let dict = dictionary("columns:\n- {name: sex, type: categorical, levels: [M, F]}\n");
        assert!(
            read_csv(b"sex\nX\n", Some(&dict))
                .unwrap_err()
                .contains("row 2, column 'sex': 'X'")
        );
        let dict = dictionary("columns:\n- {name: age, type: integer}\n");
        assert!(
            read_csv(b"age\n1.5\n", Some(&dict))
                .unwrap_err()
                .contains("'1.5' is not an integer")
        );
        assert!(
            read_csv(b"age,age\n1,2\n", None)
                .unwrap_err()
                .contains("twice")
        );
        assert!(read_csv(b"a,b\n1\n", None).unwrap_err().contains("row 2"));
        let dict = dictionary("columns:\n- {name: weight, type: numeric}\n");
        assert!(
            read_csv(b"age\n1\n", Some(&dict))
                .unwrap_err()
                .contains("'weight'")
        );
        let dict = dictionary("columns:\n- {name: sex, type: categorical}\n");
        assert!(
            read_csv(b"sex\nM\n", Some(&dict))
                .unwrap_err()
                .contains("needs its levels")
        );
    }

    #[test]
    fn a_directory_becomes_project_tables_and_selection_keeps_the_order_asked() {
        let dir = std::env::temp_dir().join(format!("trellis-ds-catalogue-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("cohort")).unwrap();
        std::fs::write(dir.join("cohort/people.csv"), "age,sex\n50,F\n60,M\n").unwrap();
        std::fs::write(dir.join("cohort/notes.txt"), "ignored").unwrap();
        let catalogue = Catalogue::load(&dir).unwrap();
        let table = catalogue.get("cohort.people").unwrap();
        let selected = table.select(Some(&["sex".into(), "age".into()])).unwrap();
        assert_eq!(selected.names(), vec!["sex", "age"]);
        assert!(
            table
                .select(Some(&["weight".into()]))
                .unwrap_err()
                .contains("no variable 'weight'")
        );
        std::fs::write(dir.join("cohort/bad name.csv"), "a\n1\n").unwrap();
        assert!(
            Catalogue::load(&dir)
                .unwrap_err()
                .to_string()
                .contains("not a valid project or table name")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
