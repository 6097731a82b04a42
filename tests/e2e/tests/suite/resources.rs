//! The Trellis CRDs on a real apiserver: they install, round-trip, and the validation written in
//! the schema (CEL rules, enums, bounds) refuses what it should with a message a person can act on.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use trellis_e2e::{client, create_namespace, install_crds, refusal, unique_name};
use trellis_operator::resources::{
    MemberRole, Project, ProjectPhase, Workspace, WorkspaceTemplate,
};

fn project(name: &str) -> Value {
    json!({
        "apiVersion": "trellis.dev/v1alpha1",
        "kind": "Project",
        "metadata": {"name": name},
        "spec": {
            "title": "Readmissions after hip fracture",
            "purpose": "Estimate 30-day readmission rates after hip fracture surgery by region.",
            "approval": {"reference": "IGARD-2026-0042", "approvedBy": "Data Access Committee", "approvedAt": "2026-10-01T09:00:00Z"},
            "startDate": "2026-10-01",
            "endDate": "2027-09-30",
            "members": [{"subject": "alice", "role": "owner"}, {"subject": "bob", "role": "researcher"}],
            "datasets": [{"name": "HES APC 2015-2025"}],
            "resources": {"cpu": "8", "memory": "32Gi", "storage": 100, "maxWorkspaces": 4},
            "templates": ["jupyter"],
        },
    })
}

fn template(name: &str) -> Value {
    json!({
        "apiVersion": "trellis.dev/v1alpha1",
        "kind": "WorkspaceTemplate",
        "metadata": {"name": name},
        "spec": {
            "displayName": "JupyterLab",
            "image": "quay.io/jupyter/scipy-notebook:2026-10-01",
            "port": 8888,
            "resources": {"default": {"cpu": "1", "memory": "4Gi"}, "max": {"cpu": "4", "memory": "16Gi"}},
            "defaultStorage": "10Gi",
            "gateway": {"blockedPaths": ["/files/", "/nbconvert/"]},
        },
    })
}

/// A change that makes a valid Project body invalid.
type Mutation = fn(&mut Value);

/// Creates a Project from raw JSON, so that bodies the Rust types could not even express (an
/// unknown enum value, a missing field) reach the apiserver's own validation.
async fn create(api: &Api<Project>, body: &Value) -> Result<Project, kube::Error> {
    let raw: Api<DynamicObject> = Api::all_with(
        api.clone().into_client(),
        &ApiResource::erase::<Project>(&()),
    );
    let object: DynamicObject = serde_json::from_value(body.clone()).expect("an object");
    let created = raw.create(&PostParams::default(), &object).await?;
    Ok(serde_json::from_value(serde_json::to_value(created).expect("JSON")).expect("a Project"))
}

#[tokio::test]
async fn crds_install_and_become_established_with_their_names_and_columns() {
    let client = client().await;
    let installed = install_crds(&client).await;
    let names: Vec<_> = installed
        .iter()
        .map(|crd| {
            (
                crd.spec.names.kind.clone(),
                crd.spec.names.short_names.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("Project".to_string(), vec!["proj".to_string()]),
            ("Workspace".to_string(), vec!["ws".to_string()]),
            ("WorkspaceTemplate".to_string(), vec!["wst".to_string()]),
        ]
    );
    for crd in &installed {
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|column| column.name.as_str())
            .collect();
        assert!(
            columns.contains(&"Age"),
            "{}: {columns:?}",
            crd.spec.names.kind
        );
        if crd.spec.names.kind != "WorkspaceTemplate" {
            assert!(
                columns.contains(&"Phase"),
                "{}: {columns:?}",
                crd.spec.names.kind
            );
            assert!(
                version
                    .subresources
                    .as_ref()
                    .and_then(|s| s.status.as_ref())
                    .is_some(),
                "status subresource"
            );
        }
    }
}

#[tokio::test]
async fn a_project_is_created_read_back_with_defaults_and_status_is_a_subresource() {
    let client = client().await;
    install_crds(&client).await;
    let projects: Api<Project> = Api::all(client.clone());
    let name = unique_name("e2e-proj");
    create(&projects, &project(&name))
        .await
        .expect("creating a valid project");

    let read = projects.get(&name).await.expect("reading it back");
    assert_eq!(read.spec.title, "Readmissions after hip fracture");
    assert_eq!(read.spec.members[0].role, MemberRole::Owner);
    assert_eq!(
        read.spec.resources.storage.0, "100",
        "integer quantities are accepted"
    );
    assert_eq!(
        read.spec.egress.reviews_required, 2,
        "the apiserver applies the default of two reviewers"
    );
    assert_eq!(read.spec.egress.policy, "default");
    assert!(!read.spec.closed && !read.spec.suspended);
    assert!(read.status.is_none());

    // Status is only written through the status subresource.
    let params = PatchParams::default();
    let status = json!({"status": {"phase": "Active", "namespace": format!("trellis-{name}")}});
    projects
        .patch(&name, &params, &Patch::Merge(&status))
        .await
        .expect("patching the main resource");
    assert!(
        projects.get(&name).await.expect("read").status.is_none(),
        "status ignored on the main resource"
    );
    projects
        .patch_status(&name, &params, &Patch::Merge(&status))
        .await
        .expect("patching status");
    let status = projects
        .get(&name)
        .await
        .expect("read")
        .status
        .expect("status written");
    assert_eq!(status.phase, Some(ProjectPhase::Active));

    projects
        .delete(&name, &DeleteParams::default())
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn invalid_projects_are_refused_with_the_reason() {
    let client = client().await;
    install_crds(&client).await;
    let projects: Api<Project> = Api::all(client.clone());

    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "end before start",
            |p| p["spec"]["endDate"] = json!("2026-09-01"),
            "endDate must be after startDate",
        ),
        (
            "end equals start",
            |p| p["spec"]["endDate"] = json!("2026-10-01"),
            "endDate must be after startDate",
        ),
        (
            "unknown member role",
            |p| p["spec"]["members"][1]["role"] = json!("admin"),
            "supported values: \"owner\", \"researcher\"",
        ),
        (
            "duplicate member",
            |p| p["spec"]["members"][1]["subject"] = json!("alice"),
            "Duplicate value",
        ),
        (
            "malformed cpu",
            |p| p["spec"]["resources"]["cpu"] = json!("lots"),
            "must be a non-negative Kubernetes quantity",
        ),
        (
            "negative memory",
            |p| p["spec"]["resources"]["memory"] = json!("-1Gi"),
            "must be a non-negative Kubernetes quantity",
        ),
        (
            "negative integer storage",
            |p| p["spec"]["resources"]["storage"] = json!(-5),
            "must be a non-negative Kubernetes quantity",
        ),
        (
            "no workspaces",
            |p| p["spec"]["resources"]["maxWorkspaces"] = json!(0),
            "should be greater than or equal to 1",
        ),
        (
            "empty title",
            |p| p["spec"]["title"] = json!(""),
            "spec.title",
        ),
        (
            "missing purpose",
            |p| {
                p["spec"].as_object_mut().expect("object").remove("purpose");
            },
            "spec.purpose: Required value",
        ),
        (
            "bad template name",
            |p| p["spec"]["templates"] = json!(["Jupyter Lab"]),
            "spec.templates[0]",
        ),
        (
            "one reviewer too many",
            |p| p["spec"]["egress"] = json!({"reviewsRequired": 11}),
            "should be less than or equal to 10",
        ),
        (
            "malformed date",
            |p| p["spec"]["startDate"] = json!("1st October"),
            "spec.startDate",
        ),
        (
            "a looser DataSHIELD count without an approval",
            |p| p["spec"]["datashield"] = json!({"enabled": true, "settings": {"nfilterTab": 2}}),
            "nfilterTab is looser than dsBase's default of 3: a recorded approval reference (looserApproval) is required",
        ),
        (
            "a looser DataSHIELD fraction without an approval",
            |p| p["spec"]["datashield"] = json!({"settings": {"nfilterGlm": 0.5}}),
            "nfilterGlm is looser than dsBase's default of 0.33: a recorded approval reference",
        ),
        (
            "a looser DataSHIELD level cap without an approval",
            |p| {
                p["spec"]["datashield"] =
                    json!({"settings": {"nfilterTab": 5, "nfilterLevelsMax": 41}})
            },
            "nfilterLevelsMax is looser than dsBase's default of 40",
        ),
        (
            "a zero DataSHIELD count",
            |p| p["spec"]["datashield"] = json!({"settings": {"nfilterSubset": 0}}),
            "spec.datashield.settings.nfilterSubset",
        ),
        (
            "a non-positive DataSHIELD fraction",
            |p| p["spec"]["datashield"] = json!({"settings": {"nfilterNoise": 0}}),
            "spec.datashield.settings.nfilterNoise",
        ),
        (
            "a DataSHIELD table name R cannot use",
            |p| {
                p["spec"]["datashield"] = json!({"tables": [
                    {"name": "1st table", "request": "r-1", "file": "a.csv"}]})
            },
            "spec.datashield.tables[0].name",
        ),
        (
            "a DataSHIELD table that is neither CSV nor Parquet",
            |p| {
                p["spec"]["datashield"] = json!({"tables": [
                    {"name": "a", "request": "r-1", "file": "a.xlsx"}]})
            },
            "spec.datashield.tables[0].file",
        ),
        (
            "two DataSHIELD tables of one name",
            |p| {
                p["spec"]["datashield"] = json!({"tables": [
                    {"name": "a", "request": "r-1", "file": "a.csv"},
                    {"name": "a", "request": "r-2", "file": "b.csv"}]})
            },
            "Duplicate value",
        ),
    ];
    for (case, mutate, expected) in cases {
        let mut body = project(&unique_name("e2e-bad"));
        mutate(&mut body);
        let (code, message) = refusal(create(&projects, &body).await);
        assert_eq!(code, 422, "{case}: {message}");
        assert!(
            message.contains(expected),
            "{case}: expected {expected:?} in {message:?}"
        );
    }

    let long_name = "p".repeat(55);
    let (code, message) = refusal(create(&projects, &project(&long_name)).await);
    assert_eq!(code, 422, "{message}");
    assert!(message.contains("at most 54 characters"), "{message}");

    // Stricter than dsBase needs nothing; looser needs a recorded approval, and then passes.
    for (case, settings) in [
        (
            "stricter",
            json!({"nfilterTab": 5, "nfilterGlm": 0.2, "nfilterNoise": 0.5, "nfilterString": 40}),
        ),
        (
            "looser with an approval",
            json!({"nfilterTab": 2, "nfilterLevelsMax": 60, "looserApproval": "DAC-2026-17"}),
        ),
    ] {
        let name = unique_name("e2e-ds");
        let mut body = project(&name);
        body["spec"]["datashield"] = json!({"enabled": false, "settings": settings,
            "tables": [{"name": "admissions", "request": "r-1", "file": "admissions.csv",
                        "dictionary": "admissions.dictionary.yaml"}]});
        let created = create(&projects, &body)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        let datashield = created.spec.datashield.expect("spec.datashield");
        assert_eq!(datashield.tables[0].name, "admissions", "{case}");
        projects
            .delete(&name, &DeleteParams::default())
            .await
            .expect("deleting");
    }
}

#[tokio::test]
async fn a_closed_project_cannot_be_reopened_nor_its_approval_removed() {
    let client = client().await;
    install_crds(&client).await;
    let projects: Api<Project> = Api::all(client.clone());
    let name = unique_name("e2e-close");
    create(&projects, &project(&name)).await.expect("creating");
    let params = PatchParams::default();

    let (code, message) = refusal(
        projects
            .patch(
                &name,
                &params,
                &Patch::Merge(json!({"spec": {"approval": null}})),
            )
            .await,
    );
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("an approval cannot be removed"),
        "{message}"
    );

    projects
        .patch(
            &name,
            &params,
            &Patch::Merge(json!({"spec": {"closed": true}})),
        )
        .await
        .expect("closing");
    let (code, message) = refusal(
        projects
            .patch(
                &name,
                &params,
                &Patch::Merge(json!({"spec": {"closed": false}})),
            )
            .await,
    );
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("a closed project cannot be reopened"),
        "{message}"
    );
    assert!(
        projects.get(&name).await.expect("read").spec.closed,
        "still closed"
    );

    projects
        .delete(&name, &DeleteParams::default())
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn workspace_templates_and_workspaces_validate_their_fields() {
    let client = client().await;
    install_crds(&client).await;
    let templates: Api<WorkspaceTemplate> = Api::all(client.clone());
    let name = unique_name("e2e-wst");
    let create_template = |body: Value| {
        let templates = templates.clone();
        async move {
            templates
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(body).expect("a template body"),
                )
                .await
        }
    };
    let created = create_template(template(&name))
        .await
        .expect("creating a valid template");
    assert_eq!(created.spec.gateway.blocked_paths.len(), 2);

    let mut too_generous = template(&unique_name("e2e-wst"));
    too_generous["spec"]["resources"]["default"]["memory"] = json!("32Gi");
    let (code, message) = refusal(create_template(too_generous).await);
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("resources.default.memory must not exceed resources.max.memory"),
        "{message}"
    );

    let mut bad_path = template(&unique_name("e2e-wst"));
    bad_path["spec"]["gateway"]["blockedPaths"] = json!(["files/"]);
    let (code, message) = refusal(create_template(bad_path).await);
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("spec.gateway.blockedPaths[0]"),
        "{message}"
    );

    let mut privileged_port = template(&unique_name("e2e-wst"));
    privileged_port["spec"]["port"] = json!(80);
    let (code, message) = refusal(create_template(privileged_port).await);
    assert_eq!(code, 422, "{message}");
    assert!(message.contains("spec.port"), "{message}");

    let namespace = unique_name("e2e-ws");
    create_namespace(&client, &namespace, &[]).await;
    let workspaces: Api<Workspace> = Api::namespaced(client.clone(), &namespace);
    let workspace = |idle: &str| -> Workspace {
        serde_json::from_value(json!({
            "apiVersion": "trellis.dev/v1alpha1",
            "kind": "Workspace",
            "metadata": {"name": "analysis"},
            "spec": {"owner": "alice", "template": name, "idleTimeout": idle},
        }))
        .expect("a workspace body")
    };
    let (code, message) = refusal(
        workspaces
            .create(&PostParams::default(), &workspace("1s"))
            .await,
    );
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("must be a duration between 1m and 720h"),
        "{message}"
    );

    let created = workspaces
        .create(&PostParams::default(), &workspace("2h"))
        .await
        .expect("creating a workspace");
    assert!(created.spec.running, "workspaces run unless told otherwise");
    let (code, message) = refusal(
        workspaces
            .patch(
                "analysis",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"owner": "mallory"}})),
            )
            .await,
    );
    assert_eq!(code, 422, "{message}");
    assert!(message.contains("owner is immutable"), "{message}");

    templates
        .delete(&name, &DeleteParams::default())
        .await
        .expect("cleanup");
    Api::<Namespace>::all(client)
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn the_charts_example_workspace_templates_render_and_are_accepted() {
    let client = client().await;
    install_crds(&client).await;
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = std::process::Command::new(repo.join("target/cluster/bin/helm"))
        .args(["template", "trellis"])
        .arg(repo.join("charts/trellis"))
        .args(["--show-only", "templates/workspace-templates.yaml", "-f"])
        .arg(repo.join("charts/trellis/ci/minimal-values.yaml"))
        .output()
        .expect("running helm (built by tests/cluster)");
    assert!(
        output.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = String::from_utf8(output.stdout).expect("UTF-8");
    let templates: Api<WorkspaceTemplate> = Api::all(client.clone());
    // A dry-run apply: the chart installed by tests/run-e2e.sh may already hold these names.
    let dry_run = PatchParams::apply("trellis-e2e-dry-run").dry_run().force();
    let mut names = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&rendered) {
        let template: WorkspaceTemplate =
            serde::Deserialize::deserialize(document).expect("a WorkspaceTemplate");
        let name = template.metadata.name.clone().unwrap_or_default();
        let accepted = templates
            .patch(&name, &dry_run, &Patch::Apply(&template))
            .await
            .expect("the CRD accepts the chart's template");
        assert!(
            !accepted.spec.gateway.blocked_paths.is_empty(),
            "{}: blocks its download paths",
            template.metadata.name.clone().unwrap_or_default()
        );
        names.push(accepted.metadata.name.unwrap_or_default());
    }
    names.sort();
    assert_eq!(names, ["jupyter", "rstudio", "vscode"]);
}
