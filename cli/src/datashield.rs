//! `trellis datashield tables`: what a project's DataSHIELD server holds, fetched by its init
//! container from the project's released ingress requests. The operator writes the tables file
//! from `spec.datashield.tables`; this lays the files out as the server's data directory wants
//! them (`<dir>/<project>/<table>.csv|.parquet`, with `<table>.dictionary.yaml` beside it).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::{CliError, Client};

#[derive(Debug, thiserror::Error)]
pub enum TablesError {
    #[error("the tables file {path}: {message}")]
    Spec { path: PathBuf, message: String },
    #[error("table `{table}`: {message}")]
    Table { table: String, message: String },
    #[error(transparent)]
    Api(#[from] CliError),
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TablesSpec {
    pub project: String,
    #[serde(default)]
    pub tables: Vec<TableSpec>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub name: String,
    /// The released ingress request the file came in with.
    pub request: String,
    pub file: String,
    #[serde(default)]
    pub dictionary: Option<String>,
}

/// One file to fetch: which request's file, and where under the data directory it goes.
#[derive(Debug, PartialEq)]
pub struct Fetch {
    pub table: String,
    pub request: String,
    pub file: String,
    pub target: PathBuf,
}

/// Reads and checks a tables file; the fetches it asks for, in order.
pub fn plan(text: &str, expected_project: &str) -> Result<Vec<Fetch>, String> {
    let spec: TablesSpec = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    if spec.project != expected_project {
        return Err(format!(
            "it is for project `{}`, but this is project `{expected_project}`",
            spec.project
        ));
    }
    let mut fetches = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for table in spec.tables {
        if !valid_table_name(&table.name) {
            return Err(format!(
                "`{}` is not a table name (a letter, then letters, digits or _, at most 63)",
                table.name
            ));
        }
        if !seen.insert(table.name.clone()) {
            return Err(format!("table `{}` is listed twice", table.name));
        }
        let extension = Path::new(&table.file)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let extension = match extension.as_deref() {
            Some(e @ ("csv" | "parquet")) => e.to_owned(),
            _ => {
                return Err(format!(
                    "table `{}`: `{}` is neither a .csv nor a .parquet file",
                    table.name, table.file
                ));
            }
        };
        let dir = PathBuf::from(&spec.project);
        fetches.push(Fetch {
            table: table.name.clone(),
            request: table.request.clone(),
            file: table.file,
            target: dir.join(format!("{}.{extension}", table.name)),
        });
        if let Some(dictionary) = table.dictionary {
            fetches.push(Fetch {
                table: table.name.clone(),
                request: table.request,
                file: dictionary,
                target: dir.join(format!("{}.dictionary.yaml", table.name)),
            });
        }
    }
    Ok(fetches)
}

/// A name R and the server's catalogue accept as a table name.
fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The file's SHA-256 as the request lists it, if the request is a released ingress request
/// holding it.
pub fn released_file_hash(request: &Value, fetch: &Fetch) -> Result<String, String> {
    if request["direction"] != "ingress" || request["state"] != "released" {
        return Err(format!(
            "request {} is a{} {} request in state {}; only released ingress requests hold \
             approved data",
            fetch.request,
            if request["direction"] == "egress" {
                "n"
            } else {
                ""
            },
            request["direction"].as_str().unwrap_or("?"),
            request["state"].as_str().unwrap_or("?"),
        ));
    }
    request["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == fetch.file.as_str())
        .and_then(|f| f["sha256"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("request {} holds no file `{}`", fetch.request, fetch.file))
}

/// Fetches every table into `to`; returns how many files were written.
pub async fn fetch_tables(client: &Client, spec: &Path, to: &Path) -> Result<usize, TablesError> {
    let text = std::fs::read_to_string(spec).map_err(|e| TablesError::Spec {
        path: spec.to_path_buf(),
        message: e.to_string(),
    })?;
    let fetches = plan(&text, client.project()).map_err(|message| TablesError::Spec {
        path: spec.to_path_buf(),
        message,
    })?;
    for fetch in &fetches {
        let request = client.request(&fetch.request).await?;
        let sha256 = released_file_hash(&request, fetch).map_err(|message| TablesError::Table {
            table: fetch.table.clone(),
            message,
        })?;
        let target = to.join(&fetch.target);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CliError::File {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        client
            .download(&fetch.request, &fetch.file, &sha256, &target)
            .await?;
    }
    Ok(fetches.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_become_files_named_for_the_server_with_their_dictionaries() {
        let fetches = plan(
            "project: hips\ntables:\n- {name: patients, request: r1, file: Patients.CSV, dictionary: p.dictionary.yaml}\n- {name: visits, request: r2, file: v.parquet}\n",
            "hips",
        )
        .unwrap();
        let targets: Vec<_> = fetches
            .iter()
            .map(|f| {
                (
                    f.request.as_str(),
                    f.file.as_str(),
                    f.target.to_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            targets,
            [
                ("r1", "Patients.CSV", "hips/patients.csv"),
                ("r1", "p.dictionary.yaml", "hips/patients.dictionary.yaml"),
                ("r2", "v.parquet", "hips/visits.parquet"),
            ]
        );
    }

    #[test]
    fn a_tables_file_that_could_misplace_data_is_refused() {
        let refused = |text: &str| plan(text, "hips").unwrap_err();
        assert!(refused("project: other\n").contains("for project `other`"));
        assert!(
            refused("project: hips\ntables:\n- {name: ../x, request: r, file: a.csv}\n")
                .contains("not a table name")
        );
        assert!(
            refused("project: hips\ntables:\n- {name: a, request: r, file: a.xlsx}\n")
                .contains("neither a .csv")
        );
        assert!(
            refused("project: hips\ntables:\n- {name: a, request: r, file: a.csv}\n- {name: a, request: s, file: b.csv}\n")
                .contains("listed twice")
        );
        assert!(refused("project: hips\nsurprise: 1\n").contains("unknown field"));
    }

    #[test]
    fn only_a_released_ingress_request_holding_the_file_is_used() {
        let fetch = Fetch {
            table: "t".into(),
            request: "r1".into(),
            file: "a.csv".into(),
            target: "p/t.csv".into(),
        };
        let request = |direction: &str, state: &str| {
            json!({"direction": direction, "state": state,
                   "files": [{"name": "a.csv", "sha256": "abc"}]})
        };
        assert_eq!(
            released_file_hash(&request("ingress", "released"), &fetch).unwrap(),
            "abc"
        );
        assert!(
            released_file_hash(&request("ingress", "in_review"), &fetch)
                .unwrap_err()
                .contains("state in_review")
        );
        assert!(
            released_file_hash(&request("egress", "released"), &fetch)
                .unwrap_err()
                .contains("an egress request")
        );
        let other = Fetch {
            file: "b.csv".into(),
            ..fetch
        };
        assert!(
            released_file_hash(&request("ingress", "released"), &other)
                .unwrap_err()
                .contains("no file `b.csv`")
        );
    }
}
