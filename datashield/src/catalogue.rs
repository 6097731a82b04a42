//! The tables a server holds: CSV or parquet files in a data directory,
//! `<dir>/<project>/<name>.csv` or `<name>.parquet`, each the table `<project>.<name>`, with an
//! optional data dictionary beside it (`<name>.dictionary.yaml`) that fixes column types and, for
//! categorical columns, the levels in order, so that factor levels (and with them table columns,
//! contrasts and coefficient names) never depend on the server's locale or on which values happen
//! to occur.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::value::{NA_INTEGER, RObject, Vector, na_real};

mod parquet_file;

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
    /// Loads every `<project>/<name>.csv` and `<project>/<name>.parquet` under `dir`. Anything
    /// malformed is refused with the file and the reason: a server never starts with a table it
    /// half understood.
    pub fn load(dir: &Path) -> Result<Catalogue, CatalogueError> {
        let mut tables = BTreeMap::new();
        for project in sorted_entries(dir)? {
            if !project.file_type().map_err(io(&project.path()))?.is_dir() {
                continue;
            }
            let project_name = valid_name(&project.path(), &project.file_name().to_string_lossy())?;
            for file in sorted_entries(&project.path())? {
                let path = file.path();
                let Some(format) = path
                    .extension()
                    .and_then(|e| Format::from_extension(&e.to_string_lossy()))
                else {
                    continue;
                };
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                let table_name = valid_name(&path, &stem)?;
                let full_name = format!("{project_name}.{table_name}");
                // Files come sorted, so a twin of either extension has been loaded already.
                if tables.contains_key(&full_name) {
                    return Err(CatalogueError::Invalid {
                        path,
                        message: format!(
                            "the table {full_name} is both a CSV and a parquet file: keep one"
                        ),
                    });
                }
                let dictionary =
                    read_dictionary(&path.with_file_name(format!("{table_name}.dictionary.yaml")))?;
                let invalid = |message| CatalogueError::Invalid {
                    path: path.clone(),
                    message,
                };
                let (variables, frame) = match format {
                    Format::Csv => {
                        let text = std::fs::read(&path).map_err(io(&path))?;
                        read_csv(&text, dictionary.as_ref()).map_err(invalid)?
                    }
                    Format::Parquet => {
                        let file = std::fs::File::open(&path).map_err(io(&path))?;
                        parquet_file::read_parquet(file, dictionary.as_ref()).map_err(invalid)?
                    }
                };
                let table = Table {
                    project: project_name.clone(),
                    name: table_name,
                    variables,
                    frame: Arc::new(frame),
                };
                tables.insert(full_name, table);
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

/// The file formats a table is read from, by extension.
#[derive(Clone, Copy)]
enum Format {
    Csv,
    Parquet,
}

impl Format {
    fn from_extension(extension: &str) -> Option<Format> {
        match extension {
            "csv" => Some(Format::Csv),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CatalogueError {
    let path = path.to_owned();
    move |source| CatalogueError::Io { path, source }
}

/// A directory's entries sorted by name, so that loading (and its first error) is reproducible.
fn sorted_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, CatalogueError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|entry| entry.file_name());
    Ok(entries)
}

/// A table's data dictionary, if it has one.
fn read_dictionary(path: &Path) -> Result<Option<Dictionary>, CatalogueError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_yaml::from_str(&text)
            .map(Some)
            .map_err(|e| CatalogueError::Invalid {
                path: path.to_owned(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

fn is_missing(cell: &str) -> bool {
    cell.is_empty() || cell == "NA"
}

/// A column's values as a file holds them. A categorical column is its text until
/// [`build_frame`] makes it a factor with the dictionary's levels.
#[derive(Debug)]
enum Values {
    Integer(Vec<Option<i32>>),
    Numeric(Vec<f64>),
    Logical(Vec<Option<bool>>),
    Character(Vec<Option<String>>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Integer(v) => v.len(),
            Values::Numeric(v) => v.len(),
            Values::Logical(v) => v.len(),
            Values::Character(v) => v.len(),
        }
    }

    fn column_type(&self) -> ColumnType {
        match self {
            Values::Integer(_) => ColumnType::Integer,
            Values::Numeric(_) => ColumnType::Numeric,
            Values::Logical(_) => ColumnType::Logical,
            Values::Character(_) => ColumnType::Character,
        }
    }
}

/// An R integer from a file's integer: R keeps `i32::MIN` for `NA`, so that one does not fit.
fn r_integer(x: impl TryInto<i32>) -> Option<i32> {
    x.try_into().ok().filter(|&x| x != NA_INTEGER)
}

/// The data frame and variables of a table whose columns are `names`, whatever the file format:
/// the names, the dictionary, the types and the categorical levels are checked here, once.
/// `read(i, declared)` gives column `i`'s values, typed as `declared` where the file allows;
/// rows in messages are counted from `first_row` (a CSV file's header line is row 1).
fn build_frame(
    names: &[String],
    nrow: usize,
    dictionary: Option<&Dictionary>,
    first_row: usize,
    mut read: impl FnMut(usize, Option<ColumnType>) -> Result<Values, String>,
) -> Result<(Vec<Variable>, RObject), String> {
    if names.is_empty() {
        return Err("the table has no columns".into());
    }
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(format!("column {} has no name", i + 1));
        }
        if names[..i].contains(name) {
            return Err(format!("the column '{name}' appears twice"));
        }
    }
    // R's data frames count rows in an integer.
    if i32::try_from(nrow).is_err() {
        return Err(format!("{nrow} rows are more than R's data frames hold"));
    }
    let declared: BTreeMap<&str, &DictionaryColumn> = dictionary
        .map(|d| d.columns.iter().map(|c| (c.name.as_str(), c)).collect())
        .unwrap_or_default();
    if let Some(unknown) = declared
        .keys()
        .find(|name| !names.iter().any(|h| h == *name))
    {
        return Err(format!(
            "the data dictionary describes '{unknown}', which is not a column of the file"
        ));
    }
    let mut variables = Vec::with_capacity(names.len());
    let mut columns = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let entry = declared.get(name.as_str());
        let levels = entry.map(|c| c.levels.clone()).unwrap_or_default();
        match entry.map(|c| c.column_type) {
            Some(ColumnType::Categorical) if levels.is_empty() => {
                return Err(format!(
                    "the categorical column '{name}' needs its levels in the data dictionary"
                ));
            }
            Some(ColumnType::Categorical) => {}
            _ if !levels.is_empty() => {
                return Err(format!(
                    "the column '{name}' has levels but is not categorical"
                ));
            }
            _ => {}
        }
        let values = read(i, entry.map(|c| c.column_type))?;
        if values.len() != nrow {
            return Err(format!(
                "the column '{name}' has {} values for {nrow} rows",
                values.len()
            ));
        }
        let column_type = entry.map_or_else(|| values.column_type(), |c| c.column_type);
        let column = match (values, column_type) {
            (Values::Character(text), ColumnType::Categorical) => {
                factor(name, &text, &levels, first_row)?
            }
            (Values::Integer(v), ColumnType::Integer) => RObject::integers(v),
            // A file's integers declared numeric: R's as.numeric, exact.
            (Values::Integer(v), ColumnType::Numeric) => RObject::doubles(
                v.into_iter()
                    .map(|x| x.map_or_else(na_real, f64::from))
                    .collect(),
            ),
            (Values::Numeric(v), ColumnType::Numeric) => RObject::doubles(v),
            (Values::Logical(v), ColumnType::Logical) => RObject::logicals(v),
            (Values::Character(v), ColumnType::Character) => RObject::new(Vector::Character(v)),
            (values, declared) => {
                return Err(format!(
                    "the data dictionary declares '{name}' {}, but the file holds {} values",
                    type_name(declared),
                    type_name(values.column_type())
                ));
            }
        };
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

fn type_name(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::Integer => "integer",
        ColumnType::Numeric => "numeric",
        ColumnType::Logical => "logical",
        ColumnType::Character => "character",
        ColumnType::Categorical => "categorical",
    }
}

/// A categorical column's text as a factor with the dictionary's levels, in their order; a value
/// outside them is refused with its row.
fn factor(
    name: &str,
    text: &[Option<String>],
    levels: &[String],
    first_row: usize,
) -> Result<RObject, String> {
    let codes = text
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let Some(v) = v else { return Ok(None) };
            let code = levels.iter().position(|level| level == v).ok_or_else(|| {
                format!(
                    "row {}, column '{name}': '{v}' is not one of its levels ({})",
                    i + first_row,
                    levels.join(", ")
                )
            })?;
            // Fewer levels than rows, and rows fit an i32.
            Ok(i32::try_from(code + 1).ok())
        })
        .collect::<Result<_, String>>()?;
    Ok(RObject::factor(codes, levels.to_vec()))
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
    let nrow = cells.first().map_or(0, Vec::len);
    build_frame(&headers, nrow, dictionary, 2, |i, declared| {
        let values = &cells[i];
        parse_column(
            &headers[i],
            values,
            declared.unwrap_or_else(|| infer(values)),
        )
    })
}

fn infer(values: &[String]) -> ColumnType {
    let present = || values.iter().filter(|v| !is_missing(v));
    if present().all(|v| parse_integer(v).is_some()) {
        ColumnType::Integer
    } else if present().all(|v| parse_number(v).is_some()) {
        ColumnType::Numeric
    } else if present().all(|v| parse_logical(v).is_some()) {
        ColumnType::Logical
    } else {
        ColumnType::Character
    }
}

fn parse_integer(cell: &str) -> Option<i32> {
    cell.parse::<i64>().ok().and_then(r_integer)
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

/// A CSV column's cells as `column_type` (a categorical column stays text for [`factor`]).
fn parse_column(name: &str, values: &[String], column_type: ColumnType) -> Result<Values, String> {
    Ok(match column_type {
        ColumnType::Integer => {
            Values::Integer(parse_cells(name, values, parse_integer, "an integer")?)
        }
        ColumnType::Numeric => Values::Numeric(
            parse_cells(name, values, parse_number, "a number")?
                .into_iter()
                .map(|x| x.unwrap_or_else(na_real))
                .collect(),
        ),
        ColumnType::Logical => {
            Values::Logical(parse_cells(name, values, parse_logical, "TRUE or FALSE")?)
        }
        ColumnType::Character | ColumnType::Categorical => Values::Character(
            values
                .iter()
                .map(|v| (!is_missing(v)).then(|| v.clone()))
                .collect(),
        ),
    })
}

/// Each cell parsed, `None` for a missing one; the first that does not parse is refused.
fn parse_cells<T>(
    name: &str,
    values: &[String],
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<Vec<Option<T>>, String> {
    values
        .iter()
        .enumerate()
        .map(|(row, v)| {
            if is_missing(v) {
                Ok(None)
            } else {
                parse(v)
                    .map(Some)
                    .ok_or_else(|| format!("row {}, column '{name}': '{v}' is not {what}", row + 2))
            }
        })
        .collect()
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
        // R's NA_integer_ is i32::MIN: that value is no R integer, so the column is numeric.
        let (variables, _) = read_csv(b"n\n-2147483648\n2147483647\n", None).unwrap();
        assert_eq!(variables[0].column_type, ColumnType::Numeric);
        let dict = dictionary("columns:\n- {name: n, type: integer}\n");
        assert!(
            read_csv(b"n\n-2147483648\n", Some(&dict))
                .unwrap_err()
                .contains("'-2147483648' is not an integer")
        );
        let dict = dictionary("columns:\n- {name: n, type: numeric}\n");
        let (_, frame) = read_csv(b"n\n3\nNA\n", Some(&dict)).unwrap();
        assert!(
            matches!(&frame.element("n").unwrap().vector, Vector::Double(v) if v[0] == 3.0 && is_na_real(v[1]))
        );
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
