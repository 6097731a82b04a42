//! The `trellis` CLI as a workspace runs it: with the pod's projected service-account token, it
//! opens an egress request, uploads, submits; after review, `inputs sync` fetches the project's
//! released ingress files, read-only and hash-checked.

use std::process::Command;

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use trellis_e2e::api::{Database, Trellis};
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings};
use trellis_e2e::{
    client, create_active_project, create_template, ensure_namespace, install_crds, state_dir,
    target_profile_dir, unique_name, workspace_token,
};

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn trellis(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = Command::new(target_profile_dir().join("trellis"));
    command.args(args).env_remove("TRELLIS_TOKEN");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("running trellis");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn a_workspace_sends_results_out_and_receives_its_inputs() {
    let kube = client().await;
    install_crds(&kube).await;
    ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    let template = create_template(&kube).await;
    let spec = json!({
        "title": "CLI", "purpose": "CLI tests.",
        "approval": {"reference": "R-1", "approvedBy": "DAC", "approvedAt": "2026-01-05T00:00:00Z"},
        "startDate": "2026-01-05", "endDate": "2099-12-31",
        "members": [{"subject": "alice", "role": "owner"}],
        "resources": {"cpu": "4", "memory": "8Gi", "storage": "20Gi", "maxWorkspaces": 1},
        "templates": [template],
        "egress": {"reviewsRequired": 1},
    });
    let project = create_active_project(&kube, &settings.run, "e2e-cli", spec).await;
    let trellis_api = Trellis::start(&Database::Sqlite).await;
    let alice = trellis_api.dex.token("alice").await;
    let (status, made) = trellis_api
        .call(
            Method::POST,
            &format!("/api/v1/projects/{project}/workspaces"),
            Some(&alice),
            Some(json!({"name": "nb", "template": template})),
        )
        .await;
    assert_eq!(status, 201, "{made}");

    // Inside the workspace: the environment the operator gives it, and its projected token.
    let dir = state_dir(&unique_name("cli"));
    let token_file = dir.join("token");
    std::fs::write(&token_file, workspace_token(&kube, &project, "nb").await)
        .expect("the token file");
    let env = [
        ("TRELLIS_API_URL", trellis_api.api.url.as_str()),
        ("TRELLIS_PROJECT", project.as_str()),
        ("TRELLIS_TOKEN_FILE", token_file.to_str().expect("UTF-8")),
    ];
    let results = dir.join("counts.csv");
    std::fs::write(&results, b"region,count\nNorth,120\nSouth,85\n").expect("results");

    let missing = trellis(&env[..2], &["egress", "new", "--title", "x"]);
    assert!(
        !missing.ok && missing.stderr.contains("no credentials"),
        "{}",
        missing.stderr
    );

    let new = trellis(
        &env,
        &[
            "egress",
            "new",
            "--title",
            "Regional counts",
            "--context",
            "From the cohort notebook.",
        ],
    );
    assert!(new.ok, "{}", new.stderr);
    let id = new.stdout.trim().to_string();
    let added = trellis(
        &env,
        &["egress", "add", &id, results.to_str().expect("UTF-8")],
    );
    assert!(added.ok, "{}", added.stderr);
    let sha = hex::encode(Sha256::digest(b"region,count\nNorth,120\nSouth,85\n"));
    assert!(added.stdout.contains(&sha), "{}", added.stdout);
    let submitted = trellis(&env, &["egress", "submit", &id]);
    assert!(submitted.ok, "{}", submitted.stderr);
    assert!(
        submitted.stdout.contains("state: in_review") && submitted.stdout.contains("checks: ok"),
        "{}",
        submitted.stdout
    );
    let frozen = trellis(
        &env,
        &["egress", "add", &id, results.to_str().expect("UTF-8")],
    );
    assert!(
        !frozen.ok && frozen.stderr.contains("409"),
        "{}",
        frozen.stderr
    );
    let status = trellis(&env, &["egress", "status", &id]);
    assert!(
        status.stdout.contains("counts.csv") && status.stdout.contains(&sha),
        "{}",
        status.stdout
    );

    // An output checker approves (one review required by this project); alice downloads outside.
    let carol = trellis_api.dex.token("carol").await;
    let base = format!("/api/v1/projects/{project}/airlock/{id}");
    let (status, _) = trellis_api
        .call(
            Method::POST,
            &format!("{base}/votes"),
            Some(&carol),
            Some(json!({"votes": [{"file": "counts.csv", "vote": "approve"}]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, released) = trellis_api
        .call(
            Method::POST,
            &format!("{base}/outcome"),
            Some(&carol),
            Some(json!({"outcome": "approve"})),
        )
        .await;
    assert_eq!(
        (status, released["state"].clone()),
        (200, json!("released")),
        "{released}"
    );

    // Ingress: alice brings a dataset in, the data steward approves it, the workspace syncs it.
    let (status, ingress) = trellis_api
        .call(
            Method::POST,
            &format!("/api/v1/projects/{project}/airlock"),
            Some(&alice),
            Some(json!({"direction": "ingress", "title": "Cohort extract"})),
        )
        .await;
    assert_eq!(status, 201, "{ingress}");
    let ingress_id = ingress["id"].as_str().expect("an id");
    let data = b"patient_band,events\nA,3\nB,5\n";
    let put = trellis_api
        .put(
            &format!("/api/v1/projects/{project}/airlock/{ingress_id}/files/cohort.csv"),
            &alice,
            data.to_vec(),
        )
        .await
        .expect("an upload");
    assert_eq!(put.status(), 201);
    let ingress_base = format!("/api/v1/projects/{project}/airlock/{ingress_id}");
    let steward = trellis_api.dex.token("steward").await;
    assert_eq!(
        trellis_api
            .call(
                Method::POST,
                &format!("{ingress_base}/submit"),
                Some(&alice),
                None
            )
            .await
            .0,
        200
    );
    let inputs = dir.join("inputs");
    let early = trellis(
        &env,
        &["inputs", "sync", "--to", inputs.to_str().expect("UTF-8")],
    );
    assert!(
        early.ok && early.stdout.contains("0 fetched"),
        "nothing before release: {} {}",
        early.stdout,
        early.stderr
    );
    let (status, _) = trellis_api
        .call(
            Method::POST,
            &format!("{ingress_base}/votes"),
            Some(&steward),
            Some(json!({"votes": [{"file": "cohort.csv", "vote": "approve"}]})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, done) = trellis_api
        .call(
            Method::POST,
            &format!("{ingress_base}/outcome"),
            Some(&steward),
            Some(json!({"outcome": "approve"})),
        )
        .await;
    assert_eq!(done["state"], "released", "{done}");

    let synced = trellis(
        &env,
        &["inputs", "sync", "--to", inputs.to_str().expect("UTF-8")],
    );
    assert!(
        synced.ok && synced.stdout.contains("1 fetched"),
        "{} {}",
        synced.stdout,
        synced.stderr
    );
    let copy = inputs.join(ingress_id).join("cohort.csv");
    assert_eq!(std::fs::read(&copy).expect("the synced file"), data);
    assert!(
        std::fs::metadata(&copy)
            .expect("metadata")
            .permissions()
            .readonly(),
        "inputs are read-only"
    );
    let again = trellis(
        &env,
        &["inputs", "sync", "--to", inputs.to_str().expect("UTF-8")],
    );
    assert!(
        again.ok && again.stdout.contains("0 fetched, 1 already current"),
        "{}",
        again.stdout
    );
    // The person cannot take ingress data out of the TRE, even as a member.
    let (status, _) = trellis_api
        .call(
            Method::GET,
            &format!("{ingress_base}/files/cohort.csv"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, 403);
}
