//! The Workspace controller against the real control plane, with the real operator binary.
//! kwok makes pods Running and provisions volumes, so everything up to the program is real.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings, RUN_LABEL};
use trellis_e2e::{
    client, create_template, ensure_namespace, install_crds, unique_name, wait_deleted, wait_for,
};
use trellis_operator::resources::names::namespace_name;
use trellis_operator::resources::{Project, ProjectPhase, Workspace, WorkspacePhase};

const SETTLE: Duration = Duration::from_secs(45);

struct Harness {
    client: Client,
    settings: OperatorSettings,
    project: String,
    template: String,
    workspaces: Api<Workspace>,
    operator: Option<Operator>,
}

impl Harness {
    /// An operator, a template and an Active project allowing it, with the given spec changes.
    async fn new(project_changes: Value) -> Self {
        let client = client().await;
        install_crds(&client).await;
        // Leases live in Trellis\'s namespace, where the operator\'s Role allows them.
        ensure_namespace(&client, CONTROL_PLANE_NAMESPACE).await;
        // Where the operator publishes the images workspaces may run.
        ensure_namespace(&client, "trellis-system").await;
        let settings = OperatorSettings::new();
        let operator = Operator::start(&settings);

        let template = create_template(&client).await;

        let project = unique_name("e2e-wsp");
        let mut body = json!({
            "apiVersion": "trellis.dev/v1alpha1", "kind": "Project",
            "metadata": {"name": project, "labels": {RUN_LABEL: settings.run}},
            "spec": {
                "title": "Workspaces", "purpose": "Workspace controller tests.",
                "approval": {"reference": "R-1", "approvedBy": "DAC", "approvedAt": "2026-01-05T00:00:00Z"},
                "startDate": "2026-01-05", "endDate": "2099-12-31",
                "members": [{"subject": "alice", "role": "owner"}, {"subject": "bob", "role": "researcher"}],
                "resources": {"cpu": "8", "memory": "16Gi", "storage": "50Gi", "maxWorkspaces": 2},
                "templates": [template],
            },
        });
        merge(&mut body["spec"], &project_changes);
        let projects: Api<Project> = Api::all(client.clone());
        projects
            .create(
                &PostParams::default(),
                &serde_json::from_value(body).expect("a project"),
            )
            .await
            .expect("creating a project");
        wait_for(
            &projects,
            &project,
            SETTLE,
            "Active",
            |p: Option<&Project>| {
                p.and_then(|p| p.status.as_ref()?.phase) == Some(ProjectPhase::Active)
            },
        )
        .await;
        let workspaces = Api::namespaced(client.clone(), &namespace_name(&project));
        Self {
            client,
            settings,
            project,
            template,
            workspaces,
            operator: Some(operator),
        }
    }

    async fn create(&self, name: &str, spec: Value) -> Workspace {
        let mut full = json!({"owner": "alice", "template": self.template});
        merge(&mut full, &spec);
        let body: Workspace = serde_json::from_value(json!({
            "apiVersion": "trellis.dev/v1alpha1", "kind": "Workspace", "metadata": {"name": name}, "spec": full,
        }))
        .expect("a workspace");
        self.workspaces
            .create(&PostParams::default(), &body)
            .await
            .expect("creating a workspace")
    }

    async fn wait_phase(&self, name: &str, phase: WorkspacePhase) -> Workspace {
        wait_for(
            &self.workspaces,
            name,
            SETTLE,
            &format!("phase {phase:?}"),
            move |w: Option<&Workspace>| w.and_then(|w| w.status.as_ref()?.phase) == Some(phase),
        )
        .await
    }

    async fn set_running(&self, name: &str, running: bool) {
        self.workspaces
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"running": running}})),
            )
            .await
            .expect("patching a workspace");
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &namespace_name(&self.project))
    }
}

fn merge(target: &mut Value, changes: &Value) {
    if let (Some(target), Some(changes)) = (target.as_object_mut(), changes.as_object()) {
        for (key, value) in changes {
            target.insert(key.clone(), value.clone());
        }
    }
}

fn ready(workspace: &Workspace) -> (String, String, String) {
    let condition = workspace
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .expect("a Ready condition");
    (
        condition.status.clone(),
        condition.reason.clone(),
        condition.message.clone(),
    )
}

#[tokio::test]
async fn a_workspace_runs_hardened_with_its_url_stops_to_zero_and_restarts_on_the_same_home() {
    let harness = Harness::new(json!({})).await;
    harness.create("analysis", json!({})).await;
    let running = harness
        .wait_phase("analysis", WorkspacePhase::Running)
        .await;
    let status = running.status.clone().expect("status");
    assert_eq!(
        status.url.as_deref(),
        Some(format!("/w/{}/analysis/", harness.project).as_str())
    );
    assert!(status.started_at.is_some());
    assert_eq!(ready(&running).0, "True");

    // The pod as the apiserver admitted it (PodSecurity restricted, quota, LimitRange).
    let pods: Api<Pod> = harness.api();
    let pod = pods.get("analysis-0").await.expect("the workspace pod");
    let spec = pod.spec.clone().expect("a pod spec");
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(spec.service_account_name.as_deref(), Some("workspace"));
    let security = spec
        .security_context
        .clone()
        .expect("a pod security context");
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(
        security.seccomp_profile.map(|p| p.type_).as_deref(),
        Some("RuntimeDefault")
    );
    for container in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let context = container
            .security_context
            .clone()
            .expect("a container security context");
        assert_eq!(
            context.allow_privilege_escalation,
            Some(false),
            "{}",
            container.name
        );
        assert_eq!(context.privileged, Some(false), "{}", container.name);
        assert_eq!(
            context.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_string()]),
            "{}",
            container.name
        );
    }
    let init = &spec.init_containers.clone().expect("an init container")[0];
    assert_eq!(
        init.command.clone().unwrap_or_default()[..3],
        ["trellis", "inputs", "sync"]
    );
    let workspace = &spec.containers[0];
    let mounts: Vec<(String, bool)> = workspace
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.mount_path.clone(), m.read_only.unwrap_or(false)))
        .collect();
    assert!(
        mounts.contains(&("/data/inputs".to_string(), true)),
        "{mounts:?}"
    );
    assert!(
        mounts.contains(&("/data/outputs".to_string(), false)),
        "{mounts:?}"
    );
    let env: Vec<String> = workspace
        .env
        .iter()
        .flatten()
        .map(|e| e.name.clone())
        .collect();
    assert!(env.contains(&"TRELLIS_API_URL".to_string()), "{env:?}");
    let token = spec
        .volumes
        .iter()
        .flatten()
        .find_map(|v| {
            v.projected
                .as_ref()?
                .sources
                .as_ref()?
                .iter()
                .find_map(|s| s.service_account_token.clone())
        })
        .expect("a projected service-account token");
    assert_eq!(token.audience.as_deref(), Some("trellis"));
    assert!(token.expiration_seconds.is_some_and(|s| s <= 3600));
    let limits = workspace
        .resources
        .clone()
        .and_then(|r| r.limits)
        .expect("limits");
    assert_eq!(
        (limits["cpu"].0.as_str(), limits["memory"].0.as_str()),
        ("1", "2Gi"),
        "template defaults"
    );
    let labels = pod.labels();
    assert_eq!(
        labels.get("trellis.dev/component").map(String::as_str),
        Some("workspace")
    );
    let ip: std::net::Ipv4Addr = pod
        .status
        .and_then(|s| s.pod_ip)
        .expect("an address")
        .parse()
        .expect("IPv4");
    assert!(ip.is_loopback(), "{ip}");
    let service: Service = harness.api().get("analysis").await.expect("the Service");
    assert_eq!(
        service.spec.and_then(|s| s.ports).expect("ports")[0].port,
        8888
    );
    let claims: Api<PersistentVolumeClaim> = harness.api();
    let home = claims.get("home-analysis").await.expect("the home volume");
    let home_uid = home.uid();

    harness.set_running("analysis", false).await;
    harness
        .wait_phase("analysis", WorkspacePhase::Stopped)
        .await;
    let statefulsets: Api<StatefulSet> = harness.api();
    let statefulset = statefulsets.get("analysis").await.expect("the StatefulSet");
    assert_eq!(statefulset.spec.and_then(|s| s.replicas), Some(0));
    wait_deleted(&pods, "analysis-0", SETTLE).await;

    harness.set_running("analysis", true).await;
    harness
        .wait_phase("analysis", WorkspacePhase::Running)
        .await;
    assert_eq!(
        claims
            .get("home-analysis")
            .await
            .expect("the home volume")
            .uid(),
        home_uid,
        "same home volume"
    );
}

#[tokio::test]
async fn workspaces_that_may_not_run_fail_with_a_reason() {
    let harness = Harness::new(json!({})).await;
    let cases = [
        (
            "stranger",
            json!({"owner": "mallory"}),
            "OwnerNotMember",
            "mallory is not a member",
        ),
        (
            "other-template",
            json!({"template": "rstudio"}),
            "TemplateNotAllowed",
            "template rstudio is not allowed",
        ),
        (
            "too-big",
            json!({"resources": {"memory": "8Gi"}}),
            "ResourcesOverMaximum",
            "memory 8Gi is more than template",
        ),
        (
            "too-much-disk",
            json!({"storage": "60Gi"}),
            "ResourcesOverQuota",
            "storage 60Gi is more than project",
        ),
    ];
    for (name, spec, _, _) in &cases {
        harness.create(name, spec.clone()).await;
    }
    for (name, _, reason, message) in cases {
        let failed = harness.wait_phase(name, WorkspacePhase::Failed).await;
        let (status, actual_reason, actual_message) = ready(&failed);
        assert_eq!(
            (status.as_str(), actual_reason.as_str()),
            ("False", reason),
            "{name}"
        );
        assert!(actual_message.contains(message), "{name}: {actual_message}");
        let statefulsets: Api<StatefulSet> = harness.api();
        assert!(
            statefulsets.get_opt(name).await.expect("get").is_none(),
            "{name} must not run"
        );
    }

    // maxWorkspaces is 2: the third valid workspace is refused, the first two run.
    harness.create("first", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    harness.create("second", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    harness.create("third", json!({})).await;
    harness.wait_phase("first", WorkspacePhase::Running).await;
    harness.wait_phase("second", WorkspacePhase::Running).await;
    let third = harness.wait_phase("third", WorkspacePhase::Failed).await;
    assert_eq!(ready(&third).1, "TooManyWorkspaces");

    // Fixing the cause recovers: deleting one makes room for the third.
    harness
        .workspaces
        .delete("first", &DeleteParams::default())
        .await
        .expect("deleting");
    harness.wait_phase("third", WorkspacePhase::Running).await;

    // A member removed from the project: their workspace stops and says why.
    let projects: Api<Project> = Api::all(harness.client.clone());
    projects
        .patch(
            &harness.project,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"members": [{"subject": "bob", "role": "owner"}]}})),
        )
        .await
        .expect("removing alice");
    let removed = harness.wait_phase("second", WorkspacePhase::Failed).await;
    assert_eq!(ready(&removed).1, "OwnerNotMember");
    let statefulsets: Api<StatefulSet> = harness.api();
    wait_for(
        &statefulsets,
        "second",
        SETTLE,
        "scaled to zero",
        |s: Option<&StatefulSet>| s.and_then(|s| s.spec.as_ref()?.replicas) == Some(0),
    )
    .await;
}

#[tokio::test]
async fn a_suspended_project_stops_its_workspaces_and_refuses_to_start_them() {
    let harness = Harness::new(json!({})).await;
    harness.create("analysis", json!({})).await;
    harness
        .wait_phase("analysis", WorkspacePhase::Running)
        .await;
    let projects: Api<Project> = Api::all(harness.client.clone());
    projects
        .patch(
            &harness.project,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspended": true}})),
        )
        .await
        .expect("suspending");
    harness
        .wait_phase("analysis", WorkspacePhase::Stopped)
        .await;
    let pods: Api<Pod> = harness.api();
    wait_deleted(&pods, "analysis-0", SETTLE).await;

    // Asking to start it while suspended is refused, with the reason.
    harness.set_running("analysis", true).await;
    let refused = wait_for(
        &harness.workspaces,
        "analysis",
        SETTLE,
        "start refused",
        |w: Option<&Workspace>| {
            w.is_some_and(|w| w.spec.running && ready(w).1 == "ProjectNotActive")
        },
    )
    .await;
    assert_eq!(
        refused.status.and_then(|s| s.phase),
        Some(WorkspacePhase::Failed)
    );
    let statefulsets: Api<StatefulSet> = harness.api();
    let statefulset = statefulsets.get("analysis").await.expect("the StatefulSet");
    assert_eq!(statefulset.spec.and_then(|s| s.replicas), Some(0));
    // A new workspace is refused the same way.
    harness.create("late", json!({})).await;
    let late = harness.wait_phase("late", WorkspacePhase::Failed).await;
    assert_eq!(ready(&late).1, "ProjectNotActive");

    // Resumed, the project runs what its members asked for.
    projects
        .patch(
            &harness.project,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspended": false}})),
        )
        .await
        .expect("resuming");
    harness
        .wait_phase("analysis", WorkspacePhase::Running)
        .await;
}

#[tokio::test]
async fn an_idle_workspace_is_stopped_with_an_event() {
    let harness = Harness::new(json!({})).await;
    harness.create("idle", json!({"idleTimeout": "1m"})).await;
    let running = harness.wait_phase("idle", WorkspacePhase::Running).await;
    // Activity recorded by the gateway moves the deadline; none after this, so it stops a
    // minute after the later of this and the start.
    let activity = chrono::Utc::now().to_rfc3339();
    harness
        .workspaces
        .patch(
            "idle",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"trellis.dev/last-activity": activity}}}),
            ),
        )
        .await
        .expect("recording activity");
    let stopped = wait_for(
        &harness.workspaces,
        "idle",
        Duration::from_secs(120),
        "stopped when idle",
        |w: Option<&Workspace>| {
            w.is_some_and(|w| {
                !w.spec.running
                    && w.status.as_ref().and_then(|s| s.phase) == Some(WorkspacePhase::Stopped)
            })
        },
    )
    .await;
    let started = running.status.and_then(|s| s.started_at).expect("started");
    let last = stopped
        .status
        .as_ref()
        .and_then(|s| s.last_activity)
        .expect("activity is shown in status");
    assert!(last >= started, "{last} {started}");
    let events: Api<Event> = harness.api();
    let events = events
        .list(&ListParams::default().fields("involvedObject.name=idle"))
        .await
        .expect("events");
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("IdleShutdown")),
        "an IdleShutdown event: {events:?}"
    );
}

#[tokio::test]
async fn a_deleted_workspace_takes_its_pods_service_and_home_volume_with_it() {
    let harness = Harness::new(json!({})).await;
    harness.create("scratch", json!({})).await;
    harness.wait_phase("scratch", WorkspacePhase::Running).await;
    harness
        .workspaces
        .delete("scratch", &DeleteParams::default())
        .await
        .expect("deleting");
    wait_deleted(&harness.workspaces, "scratch", SETTLE).await;
    wait_deleted(&harness.api::<StatefulSet>(), "scratch", SETTLE).await;
    wait_deleted(&harness.api::<Service>(), "scratch", SETTLE).await;
    wait_deleted(&harness.api::<Pod>(), "scratch-0", SETTLE).await;
    wait_deleted(
        &harness.api::<PersistentVolumeClaim>(),
        "home-scratch",
        SETTLE,
    )
    .await;
}

#[tokio::test]
async fn in_steady_state_a_restarted_operator_writes_nothing_for_workspaces() {
    let mut harness = Harness::new(json!({})).await;
    harness.create("running", json!({})).await;
    harness.create("stopped", json!({"running": false})).await;
    harness.wait_phase("running", WorkspacePhase::Running).await;
    harness.wait_phase("stopped", WorkspacePhase::Stopped).await;
    let first = harness.operator.take().expect("the operator");
    assert_eq!(first.terminate().code(), Some(0));

    let restarted = Operator::start(&harness.settings);
    let reconciles = |controller: &str| {
        format!(
            "trellis_operator_reconciles_total{{controller=\"{controller}\",outcome=\"success\"}}"
        )
    };
    let deadline = tokio::time::Instant::now() + SETTLE;
    while restarted.metric(&reconciles("workspace")).await < 2.0
        || restarted.metric(&reconciles("project")).await < 1.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted operator never reconciled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for controller in ["project", "workspace"] {
        let writes = restarted
            .metric(&format!(
                "trellis_operator_writes_total{{controller=\"{controller}\"}}"
            ))
            .await;
        assert_eq!(
            writes, 0.0,
            "{controller} controller wrote after a restart with nothing to change"
        );
    }
}
