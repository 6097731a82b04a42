//! Writes and their audit records, bad request bodies, the OpenAPI document, and tampering with
//! the stored audit log — on SQLite and on PostgreSQL.

use kube::api::Api;
use reqwest::Method;
use serde_json::{Value, json};
use trellis_e2e::api::{Database, Trellis};
use trellis_e2e::{client, install_crds, unique_name};
use trellis_operator::resources::Project;

fn project_body(name: &str) -> Value {
    json!({
        "name": name, "title": "Audit", "purpose": "Audit tests.",
        "startDate": "2026-01-01", "endDate": "2099-12-31",
        "members": [{"subject": "alice", "role": "owner"}],
        "resources": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "maxWorkspaces": 1},
    })
}

async fn raw(
    trellis: &Trellis,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, String, Value) {
    let response = trellis
        .http
        .post(format!("{}/api/v1/projects", trellis.api.url))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, kind, response.json().await.unwrap_or(Value::Null))
}

async fn tamper(database_url: &str, statement: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url)
        .await
        .expect("opening the API's database");
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    pool.close().await;
}

#[tokio::test]
async fn every_write_is_recorded_once_and_tampering_is_detected() {
    let kube = client().await;
    install_crds(&kube).await;
    let projects: Api<Project> = Api::all(kube.clone());
    for database in Database::both().await {
        let trellis = Trellis::start(&database).await;
        let admin = trellis.dex.token("admin").await;

        // Bad bodies are refused as problems, and nothing is created or recorded.
        let name = unique_name("e2e-aud");
        let good = serde_json::to_vec(&project_body(&name)).expect("JSON");
        let mut unknown = project_body(&name);
        unknown["colour"] = json!("blue");
        unknown["resources"]["turbo"] = json!(true);
        let mut wrong_type = project_body(&name);
        wrong_type["members"] = json!("alice");
        let mut bad_name = project_body("Not_A_Name");
        bad_name["name"] = json!("Not_A_Name");
        let oversized = {
            let mut body = project_body(&name);
            body["purpose"] = json!("x".repeat(70 * 1024));
            serde_json::to_vec(&body).expect("JSON")
        };
        let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
            (
                "malformed",
                "application/json",
                b"{\"name\": ".to_vec(),
                400,
                "malformed JSON",
            ),
            (
                "trailing",
                "application/json",
                [good.clone(), b"{}".to_vec()].concat(),
                400,
                "malformed JSON",
            ),
            (
                "unknown fields",
                "application/json",
                serde_json::to_vec(&unknown).expect("JSON"),
                400,
                "colour, resources.turbo",
            ),
            (
                "wrong type",
                "application/json",
                serde_json::to_vec(&wrong_type).expect("JSON"),
                422,
                "invalid type",
            ),
            (
                "bad name",
                "application/json",
                serde_json::to_vec(&bad_name).expect("JSON"),
                422,
                "lowercase",
            ),
            ("oversized", "application/json", oversized, 413, "larger"),
            ("not JSON", "text/plain", good.clone(), 415, "must be JSON"),
        ];
        for (what, content_type, body, status, detail) in cases {
            let (got, kind, problem) = raw(&trellis, &admin, content_type, body).await;
            assert_eq!(got, status, "{what}: {problem}");
            assert_eq!(kind, "application/problem+json", "{what}");
            assert_eq!(problem["status"], status, "{what}");
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(detail),
                "{what}: {problem}"
            );
        }
        assert!(
            projects.get_opt(&name).await.expect("a lookup").is_none(),
            "nothing was created"
        );
        assert!(
            trellis.api.audit_records().is_empty(),
            "nothing was recorded"
        );

        // A body the apiserver refuses (its CEL rule): the attempt is recorded as a failure.
        let mut backwards = project_body(&name);
        backwards["endDate"] = json!("2025-01-01");
        let (status, problem) = trellis
            .call(
                Method::POST,
                "/api/v1/projects",
                Some(&admin),
                Some(backwards),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("endDate must be after startDate"),
            "{problem}"
        );
        assert!(projects.get_opt(&name).await.expect("a lookup").is_none());

        // Each write: exactly one record, naming who, what, where and how it went.
        let path = format!("/api/v1/projects/{name}");
        let writes: Vec<(Method, String, Option<Value>, &str)> = vec![
            (
                Method::POST,
                "/api/v1/projects".into(),
                Some(project_body(&name)),
                "project.create",
            ),
            (
                Method::POST,
                format!("{path}/approve"),
                Some(json!({"reference": "R-9"})),
                "project.approve",
            ),
            (
                Method::PUT,
                format!("{path}/members"),
                Some(json!({"members": [{"subject": "bob", "role": "owner"}]})),
                "project.members",
            ),
            (
                Method::POST,
                format!("{path}/suspend"),
                None,
                "project.suspend",
            ),
            (
                Method::POST,
                format!("{path}/resume"),
                None,
                "project.resume",
            ),
            (Method::POST, format!("{path}/close"), None, "project.close"),
        ];
        for (method, url, body, action) in writes {
            let before = trellis.api.audit_records().len();
            let (status, answer) = trellis.call(method, &url, Some(&admin), body).await;
            assert!((200..300).contains(&status), "{action}: {status} {answer}");
            let records = trellis.api.audit_records();
            assert_eq!(records.len(), before + 1, "{action} wrote one record");
            let record = records.last().expect("a record");
            assert_eq!(record["action"], action);
            assert_eq!(record["actor"], "admin");
            assert_eq!(record["roles"], json!(["admin"]));
            assert_eq!(record["target"], format!("project/{name}"));
            assert_eq!(record["project"], name.as_str());
            assert_eq!(record["outcome"], "success");
        }
        let stored = projects.get(&name).await.expect("the project");
        assert!(stored.spec.closed);
        assert_eq!(stored.spec.members[0].subject, "bob");
        assert_eq!(stored.spec.approval.expect("approved").approved_by, "admin");

        // Reads are not changes: they add nothing.
        let before = trellis.api.audit_records().len();
        assert_eq!(
            trellis.call(Method::GET, &path, Some(&admin), None).await.0,
            200
        );
        assert_eq!(trellis.api.audit_records().len(), before);

        // Searching the log works the same on both databases: filters, prefixes taken literally
        // (`_` and `%` are not wildcards), newest first, and paging back.
        let search = |query: String| {
            let (trellis, admin) = (&trellis, &admin);
            async move {
                let (status, found) = trellis
                    .call(
                        Method::GET,
                        &format!("/api/v1/audit?{query}"),
                        Some(admin),
                        None,
                    )
                    .await;
                assert_eq!(status, 200, "{query}: {found}");
                found.as_array().expect("records").clone()
            }
        };
        let project_changes =
            search(format!("project={name}&action=project&outcome=success")).await;
        let actions: Vec<&str> = project_changes
            .iter()
            .map(|r| r["action"].as_str().expect("an action"))
            .collect();
        assert_eq!(
            actions,
            [
                "project.close",
                "project.resume",
                "project.suspend",
                "project.members",
                "project.approve",
                "project.create"
            ],
            "newest first"
        );
        assert!(
            search("action=projec_".into()).await.is_empty(),
            "`_` is literal"
        );
        assert!(
            search("action=%25".into()).await.is_empty(),
            "`%` is literal"
        );
        assert_eq!(
            search(format!("actor=admin&project={name}&outcome=denied"))
                .await
                .len(),
            0
        );
        let newest = &project_changes[0];
        let older = search(format!(
            "project={name}&action=project&outcome=success&limit=2&before={}",
            newest["seq"]
        ))
        .await;
        assert_eq!(older, project_changes[1..3].to_vec(), "the next page back");

        let (ok, out, err) = trellis.api.audit(&["verify"]);
        assert!(
            ok && out.contains(&format!("{before} records")),
            "{out} {err}"
        );

        // Tampering with any stored field of a record is found, and named.
        let url = &trellis.api.database_url;
        let records = trellis.api.audit_records();
        let third = records[2]["seq"].as_i64().expect("a seq");
        for (column, value) in [
            ("actor", "'mallory'"),
            ("outcome", "'denied'"),
            ("detail", "'{}'"),
            ("at", "'2020-01-01T00:00:00.000000Z'"),
            ("project", "NULL"),
        ] {
            tamper(
                url,
                &format!("UPDATE audit_records SET {column} = {value} WHERE seq = {third}"),
            )
            .await;
            let (ok, _, err) = trellis.api.audit(&["verify"]);
            assert!(!ok, "changing {column} went unnoticed");
            assert!(err.contains(&format!("record {third}")), "{column}: {err}");
            let original = &records[2][column];
            let restore = match original {
                Value::Null => "NULL".to_string(),
                Value::String(s) => format!("'{}'", s.replace('\'', "''")),
                other => format!("'{}'", other.to_string().replace('\'', "''")),
            };
            tamper(
                url,
                &format!("UPDATE audit_records SET {column} = {restore} WHERE seq = {third}"),
            )
            .await;
            let (ok, out, err) = trellis.api.audit(&["verify"]);
            assert!(ok, "restored {column}: {out} {err}");
        }
        // Removing a record in the middle, or the newest one, is found too.
        tamper(
            url,
            &format!("DELETE FROM audit_records WHERE seq = {third}"),
        )
        .await;
        let (ok, _, err) = trellis.api.audit(&["verify"]);
        assert!(!ok && err.contains(&format!("record {third}")), "{err}");
        let last = records.last().expect("records")["seq"]
            .as_i64()
            .expect("a seq");
        tamper(
            url,
            &format!("DELETE FROM audit_records WHERE seq > {}", third - 1),
        )
        .await;
        let (ok, _, err) = trellis.api.audit(&["verify"]);
        assert!(!ok && err.contains(&format!("head says {last}")), "{err}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    install_crds(&client().await).await;
    let trellis = Trellis::start(&Database::Sqlite).await;
    let (status, document) = trellis
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
    assert!(
        document["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.")
    );
    let paths = document["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v1/me", "get"),
        ("/api/v1/projects", "get"),
        ("/api/v1/projects", "post"),
        ("/api/v1/projects/{project}", "get"),
        ("/api/v1/projects/{project}/approve", "post"),
        ("/api/v1/projects/{project}/members", "put"),
        ("/api/v1/projects/{project}/suspend", "post"),
        ("/api/v1/projects/{project}/resume", "post"),
        ("/api/v1/projects/{project}/close", "post"),
        ("/api/v1/projects/{project}/workspaces", "get"),
        ("/api/v1/projects/{project}/workspaces", "post"),
        ("/api/v1/projects/{project}/workspaces/{workspace}", "get"),
        (
            "/api/v1/projects/{project}/workspaces/{workspace}",
            "delete",
        ),
        (
            "/api/v1/projects/{project}/workspaces/{workspace}/start",
            "post",
        ),
        (
            "/api/v1/projects/{project}/workspaces/{workspace}/stop",
            "post",
        ),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
    assert!(document["components"]["schemas"]["Problem"].is_object());
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());

    // Unknown endpoints and methods are problems too.
    let (status, problem) = trellis
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!((status, problem["status"].clone()), (404, json!(404)));
    let (status, problem) = trellis
        .call(Method::PATCH, "/api/v1/projects", None, None)
        .await;
    assert_eq!((status, problem["status"].clone()), (405, json!(405)));

    // Metrics count requests by route, and are served only on the operational listener.
    let (status, _) = trellis.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, 404, "no metrics on the public listener");
    let text = reqwest::get(format!("{}/metrics", trellis.api.ops_url))
        .await
        .expect("the operational listener answers")
        .text()
        .await
        .expect("metrics text");
    assert!(text.contains("trellis_api_http_requests_total{method=\"GET\",route=\"/api/v1/openapi.json\",status=\"200\"} 1"), "{text}");
}
