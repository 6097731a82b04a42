//! The web UI in a real browser (Debian's headless Chromium, driven by playwright-core from
//! tests/browser/journey.mjs), end to end: an admin creates and approves a project; an analyst
//! makes a personal access token for DataSHIELD and sees it once; a researcher
//! requests a workspace, sees it Running, opens JupyterLab through the gateway and runs a cell;
//! the workspace sends results out with the CLI; two output checkers review them in the browser;
//! the researcher downloads the released file; a data steward brings a file in, which becomes the
//! project's DataSHIELD table, and the analyst sees the server and her calls on the project's
//! page; the admin closes the project and the public register shows it closed. Screenshots of every main page go to
//! target/screenshots/.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use trellis_e2e::api::{ApiOptions, Database, Trellis};
use trellis_e2e::datashield::{Opal, enable, released_ingress, serving_pod};
use trellis_e2e::identity::DexOptions;
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings, RUN_LABEL};
use trellis_e2e::runtime::{PodFiles, Runtime, RuntimeOptions, jupyterlab, project_selector};
use trellis_e2e::{
    client, ensure_namespace, install_crds, repo_root, state_dir, target_profile_dir, unique_name,
    wait_for, workspace_token,
};
use trellis_operator::resources::names::LAST_ACTIVITY_ANNOTATION;
use trellis_operator::resources::names::namespace_name;
use trellis_operator::resources::{Project, Workspace};

/// Where every run leaves its screenshots (named in the README and the closing notes).
fn screenshots() -> PathBuf {
    repo_root().join("target/screenshots")
}

/// Runs one step of the journey in a fresh browser; panics with the step's own account of what
/// it expected and saw.
async fn step(name: &str, env: &[(&str, &str)]) {
    let browser = repo_root().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` (tests/run-e2e.sh does)"
    );
    // Awaited, not blocking: the runtime stand-in's watch runs on this test's executor.
    let output = tokio::process::Command::new("node")
        .arg(browser.join("journey.mjs"))
        .arg(name)
        .envs(env.iter().copied())
        .env("TRELLIS_SCREENSHOTS", screenshots())
        .output()
        .await
        .expect("running node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser step {name} failed (screenshot: target/screenshots/failed-{name}.png)\n{stdout}\n{stderr}"
    );
}

fn cli(env: &[(&str, &str)], args: &[&str]) -> String {
    let output = Command::new(target_profile_dir().join("trellis"))
        .args(args)
        .env_remove("TRELLIS_TOKEN")
        .envs(env.iter().copied())
        .output()
        .expect("running trellis");
    assert!(
        output.status.success(),
        "trellis {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[tokio::test]
async fn researchers_checkers_stewards_and_admins_work_in_the_browser() {
    let kube = client().await;
    install_crds(&kube).await;
    ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    // Workspaces on an origin of their own (localhost; Trellis on 127.0.0.1), as in production.
    let trellis = Trellis::start_with(
        &Database::Sqlite,
        DexOptions::default(),
        ApiOptions {
            extra: Some("gateway:\n  public_url: http://localhost:{port}\n".into()),
            ..ApiOptions::default()
        },
    )
    .await;
    let project = unique_name("e2e-web");
    let base = trellis.api.url.clone();
    let common = [
        ("TRELLIS_URL", base.as_str()),
        ("TRELLIS_PROJECT", project.as_str()),
    ];

    step("admin-create", &common).await;
    // The project the admin made is this test's: its operator handles only labelled projects.
    let projects: Api<Project> = Api::all(kube.clone());
    projects
        .patch(
            &project,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {RUN_LABEL: settings.run}}})),
        )
        .await
        .expect("labelling the project for this test's operator");
    let runtime = Runtime::start(
        kube.clone(),
        RuntimeOptions {
            selector: project_selector(&project),
            dir: state_dir(&unique_name("runtime")),
            jupyterlab: jupyterlab(),
            // Pods get their volumes and init containers (the workspace's inputs, the DataSHIELD
            // server's tables); the API's Service address stands for this test's API.
            pod_files: Some(PodFiles {
                path: vec![target_profile_dir()],
                env: vec![("TRELLIS_API_URL".into(), base.clone())],
            }),
        },
    );
    step("admin-approve", &common).await;
    step("analyst-token", &common).await;

    step("researcher-workspace", &common).await;
    let namespace = namespace_name(&project);
    let workspaces: Api<Workspace> = Api::namespaced(kube.clone(), &namespace);
    // Using JupyterLab through the gateway counts as activity (for idle shutdown).
    wait_for(
        &workspaces,
        "analysis",
        Duration::from_secs(10),
        "activity recorded",
        |w: Option<&Workspace>| {
            w.and_then(|w| w.metadata.annotations.as_ref())
                .is_some_and(|a| a.contains_key(LAST_ACTIVITY_ANNOTATION))
        },
    )
    .await;
    assert_eq!(runtime.running(), vec![format!("{namespace}/analysis-0")]);

    // Inside the workspace: results go out through the CLI with the pod's projected token.
    let dir = state_dir(&unique_name("web-cli"));
    let token_file = dir.join("token");
    write(
        &token_file,
        workspace_token(&kube, &project, "analysis")
            .await
            .as_bytes(),
    );
    let env = [
        ("TRELLIS_API_URL", base.as_str()),
        ("TRELLIS_PROJECT", project.as_str()),
        ("TRELLIS_TOKEN_FILE", token_file.to_str().expect("UTF-8")),
    ];
    // 87 is not a multiple of 5: the rounding check (inform) flags that cell for the reviewers.
    let results = b"region,admissions\nNorth,120\nSouth,87\nEast,245\n";
    let results_file = dir.join("admissions.csv");
    write(&results_file, results);
    let title = "Admissions by region";
    let id = cli(
        &env,
        &[
            "egress",
            "new",
            "--title",
            title,
            "--context",
            "Counts of respiratory admissions, 2024.",
        ],
    )
    .trim()
    .to_string();
    cli(
        &env,
        &["egress", "add", &id, results_file.to_str().expect("UTF-8")],
    );
    let submitted = cli(&env, &["egress", "submit", &id]);
    assert!(submitted.contains("state: in_review"), "{submitted}");

    let review = [common[0], common[1], ("TRELLIS_REQUEST_TITLE", title)];
    step(
        "checker-vote",
        &[review.as_slice(), &[("TRELLIS_USER", "carol")]].concat(),
    )
    .await;
    step(
        "checker-vote",
        &[
            review.as_slice(),
            &[("TRELLIS_USER", "dan"), ("TRELLIS_DECIDE", "1")],
        ]
        .concat(),
    )
    .await;
    step(
        "researcher-download",
        &[
            common.as_slice(),
            &[("TRELLIS_EXPECT_FILE", results_file.to_str().expect("UTF-8"))],
        ]
        .concat(),
    )
    .await;
    let ingress_file = dir.join("air-quality.csv");
    write(&ingress_file, b"district,pm25\nLS1,9.1\nLS2,11.4\n");
    step(
        "steward-ingress",
        &[
            common.as_slice(),
            &[(
                "TRELLIS_INGRESS_FILE",
                ingress_file.to_str().expect("UTF-8"),
            )],
        ]
        .concat(),
    )
    .await;
    datashield_on_the_stewards_file(&trellis, &kube, &runtime, &project).await;
    step("analyst-datashield", &common).await;
    step("admin-close", &common).await;
    step(
        "register",
        &[common.as_slice(), &[("TRELLIS_EXPECT_RELEASED", "1")]].concat(),
    )
    .await;

    // What the browser did is in the audit log, chained.
    let records = trellis.api.audit_records();
    let did = |actor: &str, action: &str| {
        records.iter().any(|r: &Value| {
            r["actor"] == actor && r["action"] == action && r["outcome"] == "success"
        })
    };
    assert!(did("admin", "project.create") && did("admin", "project.approve"));
    assert!(did("admin", "project.close"));
    assert!(did("alice", "workspace.create"));
    assert!(did("ann", "token.create"), "the analyst's token is audited");
    for checker in ["carol", "dan"] {
        assert!(
            did(checker, "airlock.file.view"),
            "{checker} viewed the file on the review screen"
        );
    }
    assert!(
        did("alice", "airlock.file.download"),
        "alice's download is audited"
    );
    let (ok, out, err) = trellis.api.audit(&["verify"]);
    assert!(ok, "audit verify: {out} {err}");

    for shot in [
        "01-admin-home",
        "03-admin-project",
        "05-admin-audit",
        "07-researcher-workspace-running",
        "09-jupyterlab-cell",
        "tokens",
        "11-dan-review-screen",
        "13-released",
        "16-steward-ingress",
        "18-public-register",
    ] {
        let file = screenshots().join(format!("{shot}.png"));
        let size = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .len();
        assert!(
            size > 10_000,
            "{} looks empty ({size} bytes)",
            file.display()
        );
    }
}

/// The steward's file, once released, becomes a table of the project's DataSHIELD server; the
/// analyst (ann) opens a session and makes one call that the disclosure rules refuse (two rows
/// are fewer than `nfilter.tab`), so that the project page has calls to show.
async fn datashield_on_the_stewards_file(
    trellis: &Trellis,
    kube: &kube::Client,
    runtime: &Runtime,
    project: &str,
) {
    use reqwest::Method;
    // The demo identities hold one data steward: from here on this project's requests need one
    // review. The steward cannot review her own request; alice, a member, brings the table in.
    let projects: Api<Project> = Api::all(kube.clone());
    projects
        .patch(
            project,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"egress": {"reviewsRequired": 1}}})),
        )
        .await
        .expect("one review");
    let id = released_ingress(
        trellis,
        project,
        "alice",
        "steward",
        "Air quality for DataSHIELD",
        &[("air-quality.csv", b"district,pm25\nLS1,9.1\nLS2,11.4\n")],
    )
    .await;

    enable(
        kube,
        project,
        json!({"tables": [{"name": "air_quality", "request": id, "file": "air-quality.csv"}]}),
        Duration::from_secs(60),
    )
    .await;
    serving_pod(kube, runtime, project).await;

    // Ann's DataSHIELD client, spoken by hand: the protocol the published clients use.
    let ann = trellis.dex.token("ann").await;
    let (status, made) = trellis
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&ann),
            Some(json!({
                "name": "notebook", "projects": [project],
                "expiresAt": (chrono::Utc::now().date_naive() + chrono::Days::new(30)).to_string(),
            })),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let opal = Opal::new(
        &trellis.api.url,
        project,
        made["token"].as_str().expect("a token"),
    );
    let session = opal.open().await;
    opal.assign_table(&session, "D", &format!("{project}.air_quality"))
        .await;
    let refused = opal.aggregate(&session, "meanDS(D$pm25)").await;
    assert_eq!(refused.status(), 400, "two rows are too few for a mean");
}
