//! The automated checks of a request's files at submission: each stored file streamed through
//! the egress disclosure rules, and ACRO's `results.json` read for its verdicts. The result is
//! one [`FileChecks`] per file, stored beside the file and shown to reviewers.

use futures::StreamExt;
use serde_json::{Value, json};

use super::repo::{FileChecks, FileRecord};
use super::storage::BlobStore;
use crate::disclosure::{Checker, DisclosureRecord, Policy};
use crate::problem::Problem;

/// The file ACRO writes its checks to; attached to a request, reviewers see its verdicts.
pub const ACRO_RESULTS: &str = "results.json";

/// Streams a stored file through the egress disclosure checks.
pub async fn check_disclosure(
    blobs: &BlobStore,
    policy: &Policy,
    name: &str,
    sha256: &str,
) -> Result<DisclosureRecord, Problem> {
    let mut checker = Checker::new(policy, name);
    let mut stream = blobs
        .open(sha256)
        .await
        .map_err(|e| Problem::internal(e.to_string()))?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Problem::unavailable(format!("reading `{name}`: {e}")))?;
        // The checks are CPU-bound: keep them off the threads that serve requests.
        tokio::task::block_in_place(|| checker.update(&chunk));
    }
    Ok(checker.finish())
}

/// ACRO's verdicts from an attached `results.json`, with whether each output file ACRO names
/// is in the request (and its hash), or why the file could not be read.
pub async fn read_acro(blobs: &BlobStore, file: &FileRecord, files: &[FileRecord]) -> Value {
    const LIMIT: i64 = 16 << 20;
    if file.size > LIMIT {
        return json!({ "error": "results.json is larger than 16 MiB; not read" });
    }
    let bytes = match blobs.open(&file.sha256).await {
        Ok(stream) => match stream
            .map(|c| c.map(|b| b.to_vec()))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(chunks) => chunks.concat(),
            Err(error) => return json!({ "error": error.to_string() }),
        },
        Err(error) => return json!({ "error": error.to_string() }),
    };
    match crate::disclosure::acro::parse_results(&bytes) {
        Ok(mut results) => {
            // ACRO's own checksum files are not part of a flat request; the uploaded hashes
            // are shown for the files ACRO names.
            results.verify(
                |_| None,
                |name| {
                    files
                        .iter()
                        .find(|f| f.name == name)
                        .map(|f| f.sha256.clone())
                },
            );
            let (pass, fail, review) = results.counts();
            let mut value = serde_json::to_value(&results).unwrap_or(Value::Null);
            value["counts"] = json!({ "pass": pass, "fail": fail, "review": review });
            value["filesInRequest"] = json!(results
                .outputs
                .iter()
                .flat_map(|o| o.files.iter())
                .map(|f| json!({ "name": f.name, "present": files.iter().any(|u| u.name == f.name) }))
                .collect::<Vec<_>>());
            value
        }
        Err(error) => json!({ "error": error.to_string() }),
    }
}

/// Every check of one file at submission.
pub async fn check_file(
    blobs: &BlobStore,
    policy: &Policy,
    file: &FileRecord,
    files: &[FileRecord],
) -> Result<FileChecks, Problem> {
    let disclosure = check_disclosure(blobs, policy, &file.name, &file.sha256).await?;
    let acro = if file.name == ACRO_RESULTS {
        Some(read_acro(blobs, file, files).await)
    } else {
        None
    };
    Ok(FileChecks { disclosure, acro })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed checks read back what was stored as a JSON value and write it out again
    /// byte for byte.
    #[test]
    fn checks_keep_their_stored_form() {
        let policy = Policy::with_defaults("default");
        let record = crate::disclosure::check_bytes(&policy, "t.csv", b"region,n\nNorth,3\n");
        let mut value = serde_json::to_value(&record).unwrap();
        let plain = value.to_string();
        let checks: FileChecks = serde_json::from_str(&plain).unwrap();
        assert_eq!(checks.acro, None);
        assert_eq!(serde_json::to_string(&checks).unwrap(), plain);
        value["acro"] = json!({ "error": "not read", "counts": { "pass": 1 } });
        let with_acro = value.to_string();
        let checks: FileChecks = serde_json::from_str(&with_acro).unwrap();
        assert!(checks.acro.is_some());
        assert_eq!(serde_json::to_string(&checks).unwrap(), with_acro);
    }
}
