//! DataSHIELD inside a project, end to end: two tables come in through the airlock, the
//! operator runs the project's server (its init container fetches the released files with the
//! pod's own token; the runtime stand-in runs the real `trellis` and `trellis-datashield`
//! binaries for it), and an analyst analyses them with the published Python clients through
//! `/datashield/<project>/` and a personal access token. Every refusal is checked and audited.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use reqwest::Method;
use serde_json::{Value, json};
use trellis_e2e::api::{Database, Trellis};
use trellis_e2e::datashield::{enable, released_ingress, serving_pod};
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings};
use trellis_e2e::runtime::{PodFiles, Runtime, RuntimeOptions, jupyterlab};
use trellis_e2e::{
    client, create_active_project, ensure_namespace, install_crds, repo_root, state_dir,
    target_profile_dir, unique_name, wait_for,
};
use trellis_operator::resources::names::{COMPONENT_LABEL, DATASHIELD_COMPONENT, PROJECT_LABEL};
use trellis_operator::resources::{Project, ProjectPhase};

/// The published clients (pinned in datashield/tests/clients/requirements.txt), in a cached venv.
fn client_python() -> String {
    let setup = repo_root().join("datashield/tests/clients/setup.sh");
    let output = Command::new(&setup)
        .output()
        .expect("run datashield/tests/clients/setup.sh");
    assert!(
        output.status.success(),
        "installing the DataSHIELD clients from PyPI failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("a path")
        .trim()
        .to_owned()
}

/// Runs the analyst's session (tests/e2e/datashield/analyst.py); its results by step.
async fn analyse(python: &str, url: &str, token: &str, project: &str) -> Value {
    let script = repo_root().join("tests/e2e/datashield/analyst.py");
    let output = tokio::process::Command::new(python)
        .arg(&script)
        .args([url, token, project])
        .output()
        .await
        .expect("running the analyst's script");
    assert!(
        output.status.success(),
        "the analyst's script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

fn ok<'a>(results: &'a Value, step: &str) -> &'a Value {
    let result = &results[step];
    assert!(result.get("ok").is_some(), "step {step} failed: {result}");
    &result["ok"]["trellis"]
}

fn refused(results: &Value, step: &str) -> String {
    let result = &results[step];
    assert!(
        result.get("error").is_some(),
        "step {step} should have been refused: {result}"
    );
    result.to_string()
}

/// 30 patients: ages 20..49, sex alternating, one `rare` value (a cell of one).
fn patients_csv() -> (String, f64) {
    let mut csv = String::from("age,sex,rare\n");
    let mut sum = 0.0;
    for i in 0..30 {
        let age = 20 + i;
        sum += f64::from(age);
        let sex = if i % 2 == 0 { "F" } else { "M" };
        let rare = if i == 7 { "yes" } else { "no" };
        csv.push_str(&format!("{age},{sex},{rare}\n"));
    }
    (csv, sum / 30.0)
}

const DICTIONARY: &str = "columns:\n- {name: sex, type: categorical, levels: [F, M]}\n- {name: rare, type: categorical, levels: [no, yes]}\n";

struct Setup {
    trellis: Trellis,
    project: String,
    _operator: Operator,
}

impl Setup {
    async fn call(
        &self,
        method: Method,
        path: &str,
        who: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self.trellis.dex.token(who).await;
        self.trellis.call(method, path, Some(&token), body).await
    }

    /// A personal access token of `who` for `projects`, expiring on `expires_at`.
    async fn access_token(
        &self,
        who: &str,
        projects: &[&str],
        expires_at: &str,
    ) -> (String, String) {
        let (status, made) = self
            .call(
                Method::POST,
                "/api/v1/tokens",
                who,
                Some(json!({"name": format!("{who}'s laptop"), "projects": projects, "expires_at": expires_at})),
            )
            .await;
        assert_eq!(status, 201, "{made}");
        (
            made["id"].as_str().expect("an id").to_owned(),
            made["token"].as_str().expect("the token").to_owned(),
        )
    }

    fn datashield_url(&self) -> String {
        format!("{}/datashield/{}", self.trellis.api.url, self.project)
    }

    /// One protocol call through Trellis with `token`: (status, body).
    async fn opal(&self, token: &str) -> (u16, String) {
        let answer = reqwest::Client::new()
            .get(format!("{}/ws/datashield/profiles", self.datashield_url()))
            .header("X-Opal-Auth", token)
            .send()
            .await
            .expect("an answer");
        (
            answer.status().as_u16(),
            answer.text().await.expect("a body"),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_analyses_a_projects_tables_through_trellis_and_every_call_is_audited() {
    let python = client_python();
    let kube = client().await;
    install_crds(&kube).await;
    ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let operator = Operator::start(&settings);
    let trellis = Trellis::start(&Database::Sqlite).await;
    let spec = json!({
        "title": "DataSHIELD", "purpose": "Non-disclosive analysis of a cohort.",
        "approval": {"reference": "R-DS", "approvedBy": "DAC", "approvedAt": "2026-01-05T00:00:00Z"},
        "startDate": "2026-01-05", "endDate": "2099-12-31",
        "members": [
            {"subject": "alice", "role": "owner"},
            {"subject": "bob", "role": "analyst"},
        ],
        "resources": {"cpu": "4", "memory": "8Gi", "storage": "20Gi", "maxWorkspaces": 2},
        "egress": {"reviewsRequired": 1},
    });
    let project = create_active_project(&kube, &settings.run, "e2e-ds", spec).await;
    let other = create_active_project(
        &kube,
        &settings.run,
        "e2e-ds-other",
        json!({
            "title": "Another", "purpose": "Beside it.",
            "approval": {"reference": "R-O", "approvedBy": "DAC", "approvedAt": "2026-01-05T00:00:00Z"},
            "startDate": "2026-01-05", "endDate": "2099-12-31",
            "members": [{"subject": "bob", "role": "analyst"}],
            "resources": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "maxWorkspaces": 1},
        }),
    )
    .await;
    let setup = Setup {
        trellis,
        project: project.clone(),
        _operator: operator,
    };
    let (patients, mean_age) = patients_csv();
    let visits: String = std::iter::once("visit\n".to_owned())
        .chain((0..40).map(|i| format!("{}\n", i % 5)))
        .collect();
    let request = released_ingress(
        &setup.trellis,
        &project,
        "alice",
        "steward",
        "Cohort for DataSHIELD",
        &[
            ("patients.csv", patients.as_bytes()),
            ("patients.dictionary.yaml", DICTIONARY.as_bytes()),
            ("visits.csv", visits.as_bytes()),
        ],
    )
    .await;

    // Enable DataSHIELD with the two tables; the runtime stand-in runs the pod's init container
    // and server for real (the API's Service address stands for the test's API).
    let runtime = Runtime::start(
        kube.clone(),
        RuntimeOptions {
            selector: format!("{COMPONENT_LABEL}={DATASHIELD_COMPONENT},{PROJECT_LABEL}={project}"),
            dir: state_dir(&unique_name("ds-runtime")),
            jupyterlab: jupyterlab(),
            pod_files: Some(PodFiles {
                path: vec![target_profile_dir()],
                env: vec![("TRELLIS_API_URL".into(), setup.trellis.api.url.clone())],
            }),
        },
    );
    let ready = enable(
        &kube,
        &project,
        json!({
            "tables": [
                {"name": "patients", "request": request, "file": "patients.csv",
                 "dictionary": "patients.dictionary.yaml"},
                {"name": "visits", "request": request, "file": "visits.csv"},
            ],
            "settings": {"nfilterTab": 5},
        }),
        Duration::from_secs(60),
    )
    .await;
    let status = ready.status.and_then(|s| s.datashield).expect("a status");
    let projects: Api<Project> = Api::all(kube.clone());
    assert_eq!(status.tables, ["patients", "visits"], "{status:?}");
    serving_pod(&kube, &runtime, &project).await;
    let fetched = pod_files(&runtime);
    for table in ["patients.csv", "patients.dictionary.yaml", "visits.csv"] {
        let laid_out = format!("/volumes/tables/{project}/{table}");
        assert!(
            fetched.iter().any(|f| f.ends_with(&laid_out)),
            "the init container fetched {laid_out}: {fetched:?}"
        );
    }

    // The analyst: a token of her own, the published clients, aggregates only.
    let (_, bob_token) = setup.access_token("bob", &[&project], "2099-12-31").await;
    let results = analyse(&python, &setup.datashield_url(), &bob_token, &project).await;
    ok(&results, "open");
    let tables = ok(&results, "tables").to_string();
    assert!(tables.contains(&format!("{project}.patients")), "{tables}");
    let mean = &ok(&results, "mean");
    let estimated = mean["EstimatedMean"]
        .as_f64()
        .or_else(|| mean[0]["EstimatedMean"].as_f64())
        .unwrap_or_else(|| panic!("a mean: {mean}"));
    assert!(
        (estimated - mean_age).abs() < 1e-9,
        "{estimated} vs {mean_age}"
    );
    assert!(ok(&results, "levels").to_string().contains("\"F\""));
    assert!(ok(&results, "visits_length").to_string().contains("40"));
    let refusal = refused(&results, "refused_function");
    assert!(
        refusal.contains("system"),
        "the refused function is named: {refusal}"
    );
    let small = refused(&results, "refused_small_cells");
    assert!(small.contains("invalid"), "{small}");

    // The analyst may not have a workspace or the files.
    let (status, answer) = setup
        .call(
            Method::POST,
            &format!("/api/v1/projects/{project}/workspaces"),
            "bob",
            Some(json!({"name": "nb", "template": "any"})),
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = setup
        .call(
            Method::GET,
            &format!("/api/v1/projects/{project}/airlock/{request}/files/patients.csv"),
            "bob",
            None,
        )
        .await;
    assert_eq!(status, 403, "{answer}");

    // Tokens that must not work: none, malformed, for another project, revoked, expired, and
    // one whose owner has left the project. Each refusal is audited.
    assert_eq!(setup.opal("trellis_pat_nonsense").await.0, 401);
    let unauthenticated = reqwest::Client::new()
        .get(format!("{}/ws/datashield/profiles", setup.datashield_url()))
        .send()
        .await
        .expect("an answer");
    assert_eq!(unauthenticated.status(), 401);
    let (_, other_token) = setup.access_token("bob", &[&other], "2099-12-31").await;
    let (status, body) = setup.opal(&other_token).await;
    assert_eq!(status, 403, "{body}");
    let (revoked_id, revoked) = setup.access_token("bob", &[&project], "2099-12-31").await;
    assert_eq!(setup.opal(&revoked).await.0, 200, "works before revocation");
    let (status, _) = setup
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{revoked_id}"),
            "bob",
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = setup.opal(&revoked).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("revoked"), "{body}");
    let (expired_id, expired) = setup.access_token("bob", &[&project], "2099-12-31").await;
    expire(&setup.trellis.api.database_url, &expired_id).await;
    let (status, body) = setup.opal(&expired).await;
    assert_eq!((status, body.contains("expired")), (401, true), "{body}");
    let (_, alices) = setup.access_token("alice", &[&project], "2099-12-31").await;
    assert_eq!(setup.opal(&alices).await.0, 200);
    projects
        .patch(
            &project,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"members": [{"subject": "bob", "role": "analyst"}]}})),
        )
        .await
        .expect("alice leaves");
    let started = std::time::Instant::now();
    loop {
        let (status, body) = setup.opal(&alices).await;
        if status == 403 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a former member's token still works: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The audit log: every session, assignment and aggregate with its call text and outcome;
    // each refusal with its reason; and the chain verifies.
    let records = setup.trellis.api.audit_records();
    let of = |action: &str| -> Vec<&Value> {
        records
            .iter()
            .filter(|r| r["action"] == action && r["project"] == project.as_str())
            .collect()
    };
    assert!(!of("datashield.session.open").is_empty());
    assert!(!of("datashield.session.close").is_empty());
    let assigns = of("datashield.assign");
    assert!(
        assigns
            .iter()
            .any(|r| r["actor"] == "bob" && r["detail"]["table"] == format!("{project}.patients")),
        "{assigns:?}"
    );
    let aggregates = of("datashield.aggregate");
    assert!(
        aggregates.iter().any(|r| r["actor"] == "bob"
            && r["detail"]["call"]
                .as_str()
                .is_some_and(|c| c.contains("meanDS"))),
        "{aggregates:?}"
    );
    let refused_call = aggregates
        .iter()
        .find(|r| {
            r["detail"]["call"]
                .as_str()
                .is_some_and(|c| c.contains("system("))
        })
        .unwrap_or_else(|| panic!("the refused call is recorded: {aggregates:?}"));
    assert_eq!(refused_call["outcome"], "failure", "{refused_call}");
    assert!(
        refused_call["detail"]["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("refused")),
        "{refused_call}"
    );
    let results_recorded = of("datashield.result");
    assert!(
        results_recorded.iter().any(|r| r["outcome"] == "failure"
            && r["detail"]["outcome"]
                .as_str()
                .is_some_and(|o| o.contains("invalid"))),
        "the disclosure refusal of an asynchronous call is recorded: {results_recorded:?}"
    );
    let refusals: Vec<String> = of("datashield.refused")
        .iter()
        .map(|r| {
            r["detail"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    for reason in [
        "no access token",
        "not valid",
        "not for project",
        "revoked",
        "expired",
        "member",
    ] {
        assert!(
            refusals.iter().any(|r| r.contains(reason)),
            "a refusal for `{reason}` is audited: {refusals:?}"
        );
    }
    let (verified, out, err) = setup.trellis.api.audit(&["verify"]);
    assert!(verified, "{out} {err}");

    // The public register says the project uses DataSHIELD and how many analyses ran, never who.
    let register = reqwest::get(format!("{}/register", setup.trellis.api.url))
        .await
        .expect("the register")
        .text()
        .await
        .expect("a page");
    let row = register
        .split(&format!("data-project=\"{project}\""))
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("the project's row: {register}"));
    let analyses = aggregates
        .iter()
        .filter(|r| r["outcome"] == "success")
        .count();
    assert!(
        row.contains(&format!("data-datashield-analyses=\"{analyses}\"")),
        "{analyses} analyses in {row}"
    );
    assert!(!row.contains("bob"), "{row}");

    // Suspended: the server stops and calls are refused; the token's owner is told why.
    projects
        .patch(
            &project,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspended": true}})),
        )
        .await
        .expect("suspending");
    wait_for(
        &projects,
        &project,
        Duration::from_secs(60),
        "Suspended with DataSHIELD stopped",
        |p: Option<&Project>| {
            let status = p.and_then(|p| p.status.as_ref());
            status.and_then(|s| s.phase) == Some(ProjectPhase::Suspended)
                && status
                    .and_then(|s| s.datashield.as_ref())
                    .is_some_and(|d| !d.ready)
        },
    )
    .await;
    let (status, body) = setup.opal(&bob_token).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Suspended"), "{body}");
}

/// Lets a token's last day pass, as time would.
async fn expire(database_url: &str, id: &str) {
    use sqlx::any::AnyPoolOptions;
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .expect("the API's database");
    let changed = sqlx::query("UPDATE access_tokens SET expires_on = '2020-01-01' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .expect("expiring the token")
        .rows_affected();
    assert_eq!(changed, 1);
}

/// Every file the runtime stand-in made for its pods' volumes.
fn pod_files(runtime: &Runtime) -> Vec<String> {
    let mut found = Vec::new();
    collect(&runtime.pods_dir(), &mut found);
    found
}

fn collect(dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, found);
        } else {
            found.push(path.display().to_string());
        }
    }
}
