//! The egress airlock over HTTP with real tokens, on SQLite and PostgreSQL: the whole flow with
//! two output checkers, blinded votes, returned → resubmitted → approved, separation of duties,
//! concurrent votes, a cut-off upload that leaves nothing, and a corrupted file refused at release;
//! and the same guarantees with the files in an S3 bucket (a real MinIO).

use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use trellis_e2e::api::{ApiOptions, Database, Trellis};
use trellis_e2e::identity::DexOptions;
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings};
use trellis_e2e::{client, create_active_project, ensure_namespace, install_crds};

struct Airlock<'a> {
    trellis: &'a Trellis,
    base: String,
}

impl Airlock<'_> {
    async fn call(
        &self,
        who: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self.trellis.dex.token(who).await;
        self.trellis
            .call(method, &format!("{}{path}", self.base), Some(&token), body)
            .await
    }

    async fn new_request(&self, title: &str) -> String {
        let (status, body) = self
            .call("alice", Method::POST, "", Some(json!({"direction": "egress", "title": title, "context": "Counts by region.", "controls": "Cells under 10 suppressed."})))
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["state"], "draft");
        body["id"].as_str().expect("an id").to_string()
    }

    async fn upload(&self, who: &str, id: &str, name: &str, bytes: &[u8]) -> (u16, Value) {
        let token = self.trellis.dex.token(who).await;
        let response = self
            .trellis
            .put(
                &format!("{}/{id}/files/{name}", self.base),
                &token,
                bytes.to_vec(),
            )
            .await
            .expect("an answer");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn download(&self, who: &str, id: &str, name: &str) -> (u16, Vec<u8>) {
        let token = self.trellis.dex.token(who).await;
        let response = self
            .trellis
            .http
            .get(format!(
                "{}{}/{id}/files/{name}",
                self.trellis.api.url, self.base
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("an answer");
        (
            response.status().as_u16(),
            response.bytes().await.expect("a body").to_vec(),
        )
    }

    async fn vote(&self, who: &str, id: &str, votes: Value) -> (u16, Value) {
        self.call(
            who,
            Method::POST,
            &format!("/{id}/votes"),
            Some(json!({"votes": votes})),
        )
        .await
    }

    async fn step(&self, who: &str, id: &str, verb: &str, body: Option<Value>) -> (u16, Value) {
        self.call(who, Method::POST, &format!("/{id}/{verb}"), body)
            .await
    }
}

const TABLE: &[u8] = b"region,count\nNorth,120\nSouth,85\n";

/// An Active project (owner alice, researcher bob) managed by `settings`' operator.
async fn active_project(kube: &kube::Client, settings: &OperatorSettings) -> String {
    let spec = json!({
        "title": "Airlock", "purpose": "Airlock tests.",
        "approval": {"reference": "R-1", "approvedBy": "DAC", "approvedAt": "2026-01-05T00:00:00Z"},
        "startDate": "2026-01-05", "endDate": "2099-12-31",
        "members": [{"subject": "alice", "role": "owner"}, {"subject": "bob", "role": "researcher"}],
        "resources": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "maxWorkspaces": 1},
    });
    create_active_project(kube, &settings.run, "e2e-air", spec).await
}

#[tokio::test]
async fn airlock_limits_hold() {
    let kube = client().await;
    install_crds(&kube).await;
    ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    let project = active_project(&kube, &settings).await;
    let limits = "airlock:\n  limits:\n    open_requests_per_project: 2\n    requests_per_day: 3\n    files_per_request: 2\n    bytes_per_request: 100\n";
    let trellis = Trellis::start_with(
        &Database::Sqlite,
        DexOptions::default(),
        ApiOptions {
            extra: Some(limits.into()),
            ..Default::default()
        },
    )
    .await;
    let airlock = Airlock {
        trellis: &trellis,
        base: format!("/api/v1/projects/{project}/airlock"),
    };
    let first = airlock.new_request("one").await;
    let _second = airlock.new_request("two").await;
    let open = json!({"direction": "egress", "title": "three"});
    let (status, problem) = airlock
        .call("alice", Method::POST, "", Some(open.clone()))
        .await;
    assert_eq!(status, 429, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("open airlock requests"),
        "{problem}"
    );
    assert_eq!(airlock.step("alice", &first, "withdraw", None).await.0, 200);
    let third = airlock.new_request("three").await;
    assert_eq!(airlock.step("alice", &third, "withdraw", None).await.0, 200);
    let (status, problem) = airlock.call("alice", Method::POST, "", Some(open)).await;
    assert_eq!(status, 429, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("24 hours"),
        "{problem}"
    );

    // Files and bytes per request (100 bytes here).
    let files = _second;
    assert_eq!(
        airlock
            .upload("alice", &files, "a.csv", &[b'a'; 60])
            .await
            .0,
        201
    );
    let (status, problem) = airlock.upload("alice", &files, "b.csv", &[b'b'; 50]).await;
    assert_eq!(status, 413, "only 40 bytes are left: {problem}");
    assert_eq!(
        airlock
            .upload("alice", &files, "b.csv", &[b'b'; 30])
            .await
            .0,
        201
    );
    let (status, problem) = airlock.upload("alice", &files, "c.csv", &[b'c'; 1]).await;
    assert_eq!(status, 429, "two files at most: {problem}");
    assert_eq!(
        airlock
            .upload("alice", &files, "a.csv", &[b'A'; 70])
            .await
            .0,
        201,
        "replacing a file frees its bytes"
    );
    let (_, request) = airlock
        .call("alice", Method::GET, &format!("/{files}"), None)
        .await;
    let sizes: Vec<i64> = request["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["size"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(sizes, [70, 30]);
}

#[tokio::test]
async fn egress_from_draft_to_release_with_two_checkers() {
    let kube = client().await;
    install_crds(&kube).await;
    ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    for database in Database::both().await {
        let project = active_project(&kube, &settings).await;
        let trellis = Trellis::start(&database).await;
        let airlock = Airlock {
            trellis: &trellis,
            base: format!("/api/v1/projects/{project}/airlock"),
        };

        // Who may open a request.
        for outsider in ["carol", "steward", "admin"] {
            let (status, _) = airlock
                .call(
                    outsider,
                    Method::POST,
                    "",
                    Some(json!({"direction": "egress", "title": "x"})),
                )
                .await;
            assert_eq!(status, 403, "{outsider} opening an egress request");
        }
        let id = airlock.new_request("Regional counts").await;

        // Files: only the author, only while draft; names are checked; the hash is returned.
        let (status, stored) = airlock.upload("alice", &id, "table.csv", TABLE).await;
        assert_eq!(status, 201, "{stored}");
        assert_eq!(stored["sha256"], hex::encode(Sha256::digest(TABLE)));
        assert_eq!(stored["size"], TABLE.len());
        assert_eq!(
            airlock.upload("bob", &id, "other.csv", TABLE).await.0,
            403,
            "only the author adds files"
        );
        assert_eq!(
            airlock.upload("alice", &id, "a%2Fb.csv", TABLE).await.0,
            422,
            "no slashes in names"
        );
        // Before review nobody outside can fetch the bytes, not even the author.
        assert_eq!(airlock.download("carol", &id, "table.csv").await.0, 403);
        assert_eq!(airlock.download("alice", &id, "table.csv").await.0, 403);

        let (status, submitted) = airlock.step("alice", &id, "submit", None).await;
        assert_eq!(
            (status, submitted["state"].clone()),
            (200, json!("in_review")),
            "{submitted}"
        );
        assert_eq!(
            airlock.upload("alice", &id, "late.csv", TABLE).await.0,
            409,
            "a submitted file set is frozen"
        );
        let carol = trellis.dex.token("carol").await;
        let (_, queue) = trellis
            .call(Method::GET, "/api/v1/airlock/queue", Some(&carol), None)
            .await;
        assert!(
            queue
                .as_array()
                .expect("a queue")
                .iter()
                .any(|i| i["id"] == id.as_str()),
            "{queue}"
        );

        // Separation of duties.
        let approve =
            json!([{"file": "table.csv", "vote": "approve", "comment": "Safe: counts over 10."}]);
        for (who, why) in [
            ("alice", "the author"),
            ("bob", "a member"),
            ("steward", "not an output checker"),
        ] {
            let (status, problem) = airlock.vote(who, &id, approve.clone()).await;
            assert_eq!(status, 403, "{why}: {problem}");
        }
        // Independent review: carol reviews the bytes and votes; dan cannot see her vote yet.
        let (status, bytes) = airlock.download("carol", &id, "table.csv").await;
        assert_eq!((status, bytes.as_slice()), (200, TABLE));
        let (status, after_carol) = airlock.vote("carol", &id, approve.clone()).await;
        assert_eq!(status, 200, "{after_carol}");
        assert_eq!(after_carol["votes"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            airlock.vote("carol", &id, approve.clone()).await.0,
            409,
            "one vote per file per round"
        );
        let (_, seen_by_dan) = airlock
            .call("dan", Method::GET, &format!("/{id}"), None)
            .await;
        assert_eq!(
            seen_by_dan["votes"],
            json!([]),
            "blinded until enough reviewers voted"
        );
        assert_eq!(
            airlock
                .step("carol", &id, "outcome", Some(json!({"outcome": "approve"})))
                .await
                .0,
            409,
            "not reviewed yet"
        );
        let (_, reviewed) = airlock.vote("dan", &id, approve.clone()).await;
        assert_eq!(reviewed["state"], "reviewed");
        assert_eq!(reviewed["votes"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            airlock
                .step(
                    "steward",
                    &id,
                    "outcome",
                    Some(json!({"outcome": "approve"}))
                )
                .await
                .0,
            403
        );
        let (status, released) = airlock
            .step(
                "dan",
                &id,
                "outcome",
                Some(json!({"outcome": "approve", "comment": "Both agree."})),
            )
            .await;
        assert_eq!(
            (status, released["state"].clone()),
            (200, json!("released")),
            "{released}"
        );
        let steps: Vec<&str> = released["history"]
            .as_array()
            .expect("history")
            .iter()
            .map(|h| h["action"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            steps,
            [
                "airlock.file.put",
                "airlock.submit",
                "airlock.vote",
                "airlock.vote",
                "airlock.outcome",
                "airlock.release"
            ]
        );

        // Released: project members download it from outside the TRE; nobody else does.
        for member in ["alice", "bob"] {
            let (status, bytes) = airlock.download(member, &id, "table.csv").await;
            assert_eq!((status, bytes.as_slice()), (200, TABLE), "{member}");
        }
        assert_eq!(airlock.download("steward", &id, "table.csv").await.0, 403);
        assert_eq!(
            airlock.step("alice", &id, "revoke", None).await.0,
            403,
            "only admins revoke"
        );
        let (status, revoked) = airlock.step("admin", &id, "revoke", None).await;
        assert_eq!((status, revoked["state"].clone()), (200, json!("revoked")));

        // Returned, then resubmitted: a new round; last round's votes stay in the record.
        let second = airlock.new_request("Second attempt").await;
        airlock
            .upload("alice", &second, "table.csv", b"region,count\nNorth,12\n")
            .await;
        airlock.step("alice", &second, "submit", None).await;
        let changes = json!([{"file": "table.csv", "vote": "changes_requested", "comment": "Add the South."}]);
        // Two checkers at the same instant: both count, the request is reviewed once.
        let (a, b) = tokio::join!(
            airlock.vote("carol", &second, changes.clone()),
            airlock.vote("dan", &second, approve.clone())
        );
        assert_eq!((a.0, b.0), (200, 200), "{} {}", a.1, b.1);
        let (_, now) = airlock
            .call("carol", Method::GET, &format!("/{second}"), None)
            .await;
        assert_eq!(now["state"], "reviewed");
        assert_eq!(
            airlock
                .step(
                    "carol",
                    &second,
                    "outcome",
                    Some(json!({"outcome": "approve"}))
                )
                .await
                .0,
            409,
            "not every approval is there"
        );
        let (_, returned) = airlock
            .step(
                "carol",
                &second,
                "outcome",
                Some(json!({"outcome": "return", "comment": "Suppress small cells."})),
            )
            .await;
        assert_eq!(returned["state"], "returned");
        airlock
            .upload(
                "alice",
                &second,
                "table.csv",
                b"region,count\nNorth,12\nSouth,15\n",
            )
            .await;
        let (_, resubmitted) = airlock.step("alice", &second, "submit", None).await;
        assert_eq!(
            (resubmitted["state"].clone(), resubmitted["round"].clone()),
            (json!("in_review"), json!(2))
        );
        airlock.vote("carol", &second, approve.clone()).await;
        airlock.vote("dan", &second, approve.clone()).await;
        let (_, approved) = airlock
            .step(
                "carol",
                &second,
                "outcome",
                Some(json!({"outcome": "approve"})),
            )
            .await;
        assert_eq!(approved["state"], "released");
        assert_eq!(
            approved["votes"].as_array().map(Vec::len),
            Some(4),
            "both rounds' votes kept"
        );

        // A cut-off upload leaves nothing behind.
        let third = airlock.new_request("Interrupted").await;
        let blobs_dir = trellis.api.data_dir.join("airlock/blobs");
        let blobs_before = std::fs::read_dir(&blobs_dir)
            .expect("the blob directory")
            .count();
        let token = trellis.dex.token("alice").await;
        let broken = futures::stream::iter(vec![
            Ok::<_, std::io::Error>(vec![b'x'; 64 * 1024]),
            Err(std::io::Error::other("cable pulled")),
        ])
        .map(|chunk| chunk.map(bytes::Bytes::from));
        let cut = trellis
            .put(
                &format!("{}/{third}/files/cut.csv", airlock.base),
                &token,
                reqwest::Body::wrap_stream(broken),
            )
            .await;
        assert!(
            cut.is_err() || !cut.as_ref().is_ok_and(|r| r.status().is_success()),
            "{cut:?}"
        );
        let (_, after_cut) = airlock
            .call("alice", Method::GET, &format!("/{third}"), None)
            .await;
        assert_eq!(after_cut["files"], json!([]), "no file was added");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            std::fs::read_dir(&blobs_dir).expect("blobs").count(),
            blobs_before,
            "no blob was stored"
        );
        let staging = trellis.api.data_dir.join("airlock/staging");
        assert_eq!(
            std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0),
            0,
            "nothing left in staging"
        );

        // A stored file changed behind Trellis's back is refused at release.
        airlock
            .upload("alice", &third, "table.csv", b"region,count\nEast,40\n")
            .await;
        airlock.step("alice", &third, "submit", None).await;
        airlock.vote("carol", &third, approve.clone()).await;
        airlock.vote("dan", &third, approve.clone()).await;
        let sha = hex::encode(Sha256::digest(b"region,count\nEast,40\n"));
        std::fs::write(blobs_dir.join(&sha), b"region,count\nEast,4\n")
            .expect("tampering with the blob");
        let (status, problem) = airlock
            .step(
                "carol",
                &third,
                "outcome",
                Some(json!({"outcome": "approve"})),
            )
            .await;
        assert_eq!(status, 409, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("no longer matches"),
            "{problem}"
        );
        let (_, still) = airlock
            .call("alice", Method::GET, &format!("/{third}"), None)
            .await;
        assert_eq!(still["state"], "reviewed", "nothing was released");
        assert_eq!(
            airlock.download("carol", &third, "table.csv").await.0,
            500,
            "nor served"
        );

        // A table with a small count is blocked by the disclosure checks at submission.
        let small = airlock.new_request("Small numbers").await;
        airlock
            .upload(
                "alice",
                &small,
                "table.csv",
                b"region,count\nNorth,4\nSouth,85\n",
            )
            .await;
        let (status, blocked) = airlock.step("alice", &small, "submit", None).await;
        assert_eq!(
            (status, blocked["state"].clone()),
            (200, json!("blocked")),
            "{blocked}"
        );
        let rules = blocked["files"][0]["disclosure"]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let threshold = rules
            .iter()
            .find(|r| r["rule"] == "min-cell-count")
            .expect("the threshold rule");
        assert_eq!(threshold["outcome"], "fail");
        assert_eq!(threshold["findings"][0]["row"], 2);
        assert_eq!(threshold["findings"][0]["column"], 2);
        assert_eq!(
            airlock.vote("carol", &small, approve.clone()).await.0,
            409,
            "a blocked request is not reviewed"
        );

        let records = trellis.api.audit_records();
        let count = |action: &str, outcome: &str| {
            records
                .iter()
                .filter(|r| r["action"] == action && r["outcome"] == outcome)
                .count()
        };
        assert_eq!(count("airlock.release", "success"), 2);
        assert_eq!(count("airlock.release", "failure"), 1);
        assert_eq!(count("airlock.file.download", "success"), 3);
        assert_eq!(count("airlock.vote", "denied"), 3);
        let (ok, out, err) = trellis.api.audit(&["verify"]);
        assert!(ok, "{database:?}: {out} {err}");
    }
}

#[tokio::test]
async fn an_infected_file_blocks_its_request() {
    use trellis_e2e::clamd::{Clamd, EICAR};
    let kube = client().await;
    install_crds(&kube).await;
    ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    let project = active_project(&kube, &settings).await;
    let clamd = Clamd::start();
    let trellis = Trellis::start_with(
        &Database::Sqlite,
        DexOptions::default(),
        ApiOptions {
            extra: Some(format!("airlock:\n  clamd: {}\n", clamd.address)),
            ..Default::default()
        },
    )
    .await;
    let airlock = Airlock {
        trellis: &trellis,
        base: format!("/api/v1/projects/{project}/airlock"),
    };

    let clean = airlock.new_request("Clean").await;
    airlock.upload("alice", &clean, "table.csv", TABLE).await;
    // ACRO's verdicts, attached by the author, are read and shown to reviewers.
    let acro = br#"{"version": "0.4.5", "tool": {"name": "ACRO", "version": "1.0.2"}, "results": {
        "output_0": {"uid": "output_0", "status": "fail", "type": "table", "properties": {"method": "crosstab"},
          "files": [{"name": "table.csv", "sdc": {"summary": {"MinimumThresholdCheck": 1}, "cells": {"MinimumThresholdCheck": [[0, 1]]}}}],
          "summary": "MinimumThresholdCheck: fail", "comments": [], "exception": ""},
        "output_1": {"uid": "output_1", "status": "pass", "type": "regression", "properties": {"method": "ols"},
          "files": [{"name": "model.csv"}], "summary": "pass"}}}"#;
    assert_eq!(
        airlock
            .upload("alice", &clean, "results.json", acro)
            .await
            .0,
        201
    );
    let (_, submitted) = airlock.step("alice", &clean, "submit", None).await;
    assert_eq!(submitted["state"], "in_review", "{submitted}");
    let results = submitted["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["name"] == "results.json")
        .expect("results.json")
        .clone();
    let read = &results["disclosure"]["acro"];
    assert_eq!(
        read["counts"],
        json!({"pass": 1, "fail": 1, "review": 0}),
        "{read}"
    );
    assert_eq!(
        read["filesInRequest"],
        json!([{"name": "table.csv", "present": true}, {"name": "model.csv", "present": false}])
    );

    let infected = airlock.new_request("Infected").await;
    airlock.upload("alice", &infected, "table.csv", TABLE).await;
    airlock.upload("alice", &infected, "notes.txt", EICAR).await;
    let (status, blocked) = airlock.step("alice", &infected, "submit", None).await;
    assert_eq!(
        (status, blocked["state"].clone()),
        (200, json!("blocked")),
        "{blocked}"
    );
    let submit = blocked["history"]
        .as_array()
        .and_then(|h| h.last())
        .expect("history")
        .clone();
    assert_eq!(
        submit["detail"]["infected"],
        json!([{"file": "notes.txt", "signature": "Trellis.Test.EICAR.UNOFFICIAL"}]),
        "{submit}"
    );

    // Ingress is scanned too.
    let (status, ingress) = airlock
        .call(
            "alice",
            Method::POST,
            "",
            Some(json!({"direction": "ingress", "title": "Data"})),
        )
        .await;
    assert_eq!(status, 201, "{ingress}");
    let ingress = ingress["id"].as_str().expect("an id").to_string();
    airlock.upload("alice", &ingress, "data.bin", EICAR).await;
    let (_, blocked) = airlock.step("alice", &ingress, "submit", None).await;
    assert_eq!(blocked["state"], "blocked", "{blocked}");

    // Without the scanner, nothing is submitted unscanned.
    let pending = airlock.new_request("Scanner down").await;
    airlock.upload("alice", &pending, "table.csv", TABLE).await;
    drop(clamd);
    let (status, problem) = airlock.step("alice", &pending, "submit", None).await;
    assert_eq!(status, 503, "{problem}");
    let (_, still) = airlock
        .call("alice", Method::GET, &format!("/{pending}"), None)
        .await;
    assert_eq!(still["state"], "draft");
}

/// Reads a response's body through SHA-256 without keeping it: (status, hash header, size, hash).
async fn fetch_hashed(response: reqwest::Response) -> (u16, String, u64, String) {
    let status = response.status().as_u16();
    let header = response
        .headers()
        .get("x-content-sha256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("the download");
        size += chunk.len() as u64;
        hasher.update(&chunk);
    }
    (status, header, size, hex::encode(hasher.finalize()))
}

#[tokio::test]
async fn airlock_files_live_in_an_s3_bucket() {
    use object_store::ObjectStoreExt;
    use object_store::path::Path as Key;
    use trellis_e2e::s3::S3Server;

    let kube = client().await;
    install_crds(&kube).await;
    ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    let project = active_project(&kube, &settings).await;
    let s3 = S3Server::start().await;
    let bucket = s3.store();
    let prefix = "tre";
    let trellis = Trellis::start_with(
        &Database::Sqlite,
        DexOptions::default(),
        ApiOptions {
            extra: Some(format!("airlock:\n{}", s3.airlock_yaml(Some(prefix)))),
            ..Default::default()
        },
    )
    .await;
    let airlock = Airlock {
        trellis: &trellis,
        base: format!("/api/v1/projects/{project}/airlock"),
    };
    let blob_key = |sha: &str| format!("{prefix}/blobs/{sha}");

    // The count of unfinished multipart uploads sees one when there is one.
    let mut probe = bucket
        .put_multipart(&Key::from(format!("{prefix}/staging/probe")))
        .await
        .expect("a multipart upload");
    probe
        .put_part(vec![b'p'; 5 << 20].into())
        .await
        .expect("a part");
    assert_eq!(s3.unfinished_uploads(), 1);
    probe.abort().await.expect("aborting the probe");
    assert_eq!(s3.unfinished_uploads(), 0);

    // The whole egress flow, with the file in the bucket and nothing on local disk.
    let id = airlock.new_request("Regional counts").await;
    let (status, stored) = airlock.upload("alice", &id, "table.csv", TABLE).await;
    assert_eq!(status, 201, "{stored}");
    let sha = hex::encode(Sha256::digest(TABLE));
    assert_eq!(stored["sha256"], sha.as_str());
    assert_eq!(s3.keys(prefix).await, [blob_key(&sha)], "only the blob");
    assert!(
        !trellis.api.data_dir.join("airlock").exists(),
        "nothing in the local directory"
    );
    let (_, submitted) = airlock.step("alice", &id, "submit", None).await;
    assert_eq!(submitted["state"], "in_review", "{submitted}");
    let approve = json!([{"file": "table.csv", "vote": "approve", "comment": "Counts over 10."}]);
    assert_eq!(airlock.vote("carol", &id, approve.clone()).await.0, 200);
    assert_eq!(airlock.vote("dan", &id, approve.clone()).await.0, 200);
    let (status, released) = airlock
        .step("dan", &id, "outcome", Some(json!({"outcome": "approve"})))
        .await;
    assert_eq!(
        (status, released["state"].clone()),
        (200, json!("released")),
        "{released}"
    );
    let token = trellis.dex.token("alice").await;
    let response = trellis
        .http
        .get(format!(
            "{}{}/{id}/files/table.csv",
            trellis.api.url, airlock.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        fetch_hashed(response).await,
        (200, sha.clone(), TABLE.len() as u64, sha.clone())
    );

    // A cut-off upload (after a whole 5 MiB part went to the bucket) leaves nothing: no blob,
    // no staged object, no unfinished multipart upload.
    let cut = airlock.new_request("Interrupted").await;
    let broken = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(vec![b'x'; 6 << 20]),
        Ok(vec![b'y'; 1 << 20]),
        Err(std::io::Error::other("cable pulled")),
    ])
    .map(|chunk| chunk.map(bytes::Bytes::from));
    let answer = trellis
        .put(
            &format!("{}/{cut}/files/cut.csv", airlock.base),
            &token,
            reqwest::Body::wrap_stream(broken),
        )
        .await;
    assert!(
        answer.is_err() || !answer.as_ref().is_ok_and(|r| r.status().is_success()),
        "{answer:?}"
    );
    let (_, after_cut) = airlock
        .call("alice", Method::GET, &format!("/{cut}"), None)
        .await;
    assert_eq!(after_cut["files"], json!([]), "no file was added");
    let settled = async {
        // The abort may finish just after the client gave up.
        for _ in 0..50 {
            if s3.keys(prefix).await == [blob_key(&sha)] && s3.unfinished_uploads() == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(
        settled.await,
        "left behind: {:?}, unfinished: {:?}",
        s3.keys(prefix).await,
        s3.unfinished_uploads()
    );

    // Over the limit (16 MiB for a CSV leaving the TRE): 413 once 16 MiB have streamed (three
    // parts uploaded), and the upload is aborted.
    let large = vec![b'1'; 17 << 20];
    let (status, problem) = airlock.upload("alice", &cut, "big.csv", &large).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(s3.keys(prefix).await, [blob_key(&sha)]);
    assert_eq!(s3.unfinished_uploads(), 0);

    // 64 MiB coming in: streamed in parts, never whole in the API's memory, and read back
    // whole by the data steward reviewing it.
    let (status, ingress) = airlock
        .call(
            "alice",
            Method::POST,
            "",
            Some(json!({"direction": "ingress", "title": "Reference data"})),
        )
        .await;
    assert_eq!(status, 201, "{ingress}");
    let ingress = ingress["id"].as_str().expect("an id").to_string();
    let data: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
    let data_sha = hex::encode(Sha256::digest(&data));
    let (resident_before, _) = trellis.api.memory();
    let (status, stored) = airlock.upload("alice", &ingress, "data.bin", &data).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["sha256"], data_sha.as_str());
    let (_, peak) = trellis.api.memory();
    assert!(
        peak < resident_before + (48 << 20),
        "the API grew from {resident_before} to a peak of {peak} bytes taking 64 MiB"
    );
    assert_eq!(
        s3.keys(prefix).await,
        [blob_key(&sha), blob_key(&data_sha)]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    let (_, submitted) = airlock.step("alice", &ingress, "submit", None).await;
    assert_eq!(submitted["state"], "in_review", "{submitted}");
    let steward = trellis.dex.token("steward").await;
    let response = trellis
        .http
        .get(format!(
            "{}{}/{ingress}/files/data.bin",
            trellis.api.url, airlock.base
        ))
        .bearer_auth(&steward)
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        fetch_hashed(response).await,
        (200, data_sha.clone(), data.len() as u64, data_sha.clone())
    );

    // A file changed in the bucket behind Trellis's back is neither released nor served.
    let tampered = airlock.new_request("Tampered").await;
    let original = b"region,count\nEast,40\n";
    airlock
        .upload("alice", &tampered, "table.csv", original)
        .await;
    airlock.step("alice", &tampered, "submit", None).await;
    airlock.vote("carol", &tampered, approve.clone()).await;
    airlock.vote("dan", &tampered, approve.clone()).await;
    let original_sha = hex::encode(Sha256::digest(original));
    bucket
        .put(
            &Key::from(blob_key(&original_sha)),
            bytes::Bytes::from_static(b"region,count\nEast,4\n").into(),
        )
        .await
        .expect("overwriting the object");
    let (status, problem) = airlock
        .step(
            "carol",
            &tampered,
            "outcome",
            Some(json!({"outcome": "approve"})),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no longer matches"),
        "{problem}"
    );
    let (_, still) = airlock
        .call("alice", Method::GET, &format!("/{tampered}"), None)
        .await;
    assert_eq!(still["state"], "reviewed", "nothing was released");
    assert_eq!(
        airlock.download("carol", &tampered, "table.csv").await.0,
        500,
        "nor served"
    );
    // And once the object is gone from the bucket altogether.
    bucket
        .delete(&Key::from(blob_key(&original_sha)))
        .await
        .expect("deleting the object");
    assert_eq!(
        airlock.download("carol", &tampered, "table.csv").await.0,
        500
    );
    let (ok, out, err) = trellis.api.audit(&["verify"]);
    assert!(ok, "{out} {err}");
}
