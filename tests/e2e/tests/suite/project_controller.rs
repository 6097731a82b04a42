//! The Project controller against the real control plane, with the real operator binary.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, Pod,
    ResourceQuota, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings, RUN_LABEL};
use trellis_e2e::{
    client, create_namespace, ensure_namespace, install_crds, refusal, unique_name, wait_deleted,
    wait_for,
};
use trellis_operator::config::OperatorConfig;
use trellis_operator::project::builders;
use trellis_operator::reconcile::apply::contains;
use trellis_operator::resources::names;
use trellis_operator::resources::{Project, ProjectPhase, Workspace};

const SETTLE: Duration = Duration::from_secs(30);

/// A test's own operator and lease namespace, with its projects selected by a run label.
struct Harness {
    client: Client,
    settings: OperatorSettings,
    projects: Api<Project>,
}

impl Harness {
    async fn new() -> Self {
        let client = client().await;
        install_crds(&client).await;
        // Leases live in Trellis\'s namespace, where the operator\'s Role allows them.
        ensure_namespace(&client, CONTROL_PLANE_NAMESPACE).await;
        let projects = Api::all(client.clone());
        Self {
            settings: OperatorSettings::new(),
            client,
            projects,
        }
    }

    fn project_body(&self, name: &str) -> Value {
        json!({
            "apiVersion": "trellis.dev/v1alpha1",
            "kind": "Project",
            "metadata": {"name": name, "labels": {RUN_LABEL: self.settings.run}},
            "spec": {
                "title": "Readmissions after hip fracture",
                "purpose": "Estimate 30-day readmission rates after hip fracture surgery.",
                "approval": {"reference": "IGARD-2026-0042", "approvedBy": "DAC", "approvedAt": "2026-01-05T09:00:00Z"},
                "startDate": "2026-01-05",
                "endDate": "2099-12-31",
                "members": [{"subject": "alice", "role": "owner"}, {"subject": "bob", "role": "researcher"}],
                "resources": {"cpu": "8", "memory": "32Gi", "storage": "100Gi", "maxWorkspaces": 4},
                "templates": ["jupyter"],
            },
        })
    }

    async fn create(&self, body: Value) -> Project {
        let project: Project = serde_json::from_value(body).expect("a Project");
        self.projects
            .create(&PostParams::default(), &project)
            .await
            .expect("creating a project")
    }

    async fn create_named(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.create(self.project_body(&name)).await;
        name
    }

    async fn wait_phase(&self, name: &str, phase: ProjectPhase) -> Project {
        wait_for(
            &self.projects,
            name,
            SETTLE,
            &format!("phase {phase:?}"),
            move |p: Option<&Project>| p.and_then(|p| p.status.as_ref()?.phase) == Some(phase),
        )
        .await
    }

    /// Whether the project's namespace exists.
    async fn has_namespace(&self, project: &str) -> bool {
        Api::<Namespace>::all(self.client.clone())
            .get_opt(&names::namespace_name(project))
            .await
            .expect("reading a namespace")
            .is_some()
    }

    async fn patch_spec(&self, name: &str, spec: Value) {
        self.projects
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .expect("patching a project");
    }

    fn namespaced<K>(&self, project: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &names::namespace_name(project))
    }
}

fn condition<'a>(
    project: &'a Project,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    project
        .status
        .as_ref()
        .and_then(|status| status.conditions.iter().find(|c| c.type_ == type_))
        .unwrap_or_else(|| panic!("no {type_} condition on {project:#?}"))
}

async fn assert_guardrails(harness: &Harness, project: &Project, allow_workloads: bool) {
    let name = project.name_any();
    let wanted = builders::guardrails(project, allow_workloads, &OperatorConfig::default());
    let json = |object: &dyn erased::Json| object.json();
    let namespaces: Api<Namespace> = Api::all(harness.client.clone());
    let namespace = namespaces
        .get(&names::namespace_name(&name))
        .await
        .expect("the project namespace");
    assert!(
        contains(&json(&namespace), &json(&wanted.namespace)),
        "namespace drifted: {namespace:#?}"
    );
    let labels = namespace.labels();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted")
    );
    assert_eq!(labels.get("trellis.dev/project"), Some(&name));
    assert_eq!(
        namespace.owner_references()[0].uid,
        project.uid().expect("a uid")
    );

    let quota = harness
        .namespaced::<ResourceQuota>(&name)
        .get(names::QUOTA_NAME)
        .await
        .expect("the quota");
    assert!(
        contains(&json(&quota), &json(&wanted.quota)),
        "quota drifted: {quota:#?}"
    );
    let hard = quota.spec.and_then(|s| s.hard).expect("hard limits");
    assert_eq!(hard["pods"].0, if allow_workloads { "4" } else { "0" });
    assert_eq!(hard["requests.memory"].0, "32Gi");
    let limits = harness
        .namespaced::<LimitRange>(&name)
        .get(names::LIMIT_RANGE_NAME)
        .await
        .expect("limits");
    assert!(
        contains(&json(&limits), &json(&wanted.limits)),
        "limit range drifted: {limits:#?}"
    );

    let policies = harness
        .namespaced::<NetworkPolicy>(&name)
        .list(&ListParams::default())
        .await
        .expect("policies");
    let mut names: Vec<_> = policies.iter().map(ResourceExt::name_any).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "trellis-allow-airlock",
            "trellis-allow-dns",
            "trellis-allow-gateway",
            "trellis-default-deny"
        ]
    );
    for policy in &wanted.network_policies {
        let live = policies
            .iter()
            .find(|p| p.name_any() == policy.name_any())
            .expect("listed");
        assert!(
            contains(&json(live), &json(policy)),
            "{} drifted: {live:#?}",
            policy.name_any()
        );
    }
    let account = harness
        .namespaced::<ServiceAccount>(&name)
        .get("workspace")
        .await
        .expect("the workspace SA");
    assert_eq!(account.automount_service_account_token, Some(false));
    let bindings = harness
        .namespaced::<RoleBinding>(&name)
        .list(&ListParams::default())
        .await
        .expect("bindings");
    assert!(
        bindings.items.is_empty(),
        "no RoleBinding may grant Kubernetes access: {bindings:?}"
    );
}

/// Serialises any Kubernetes object for [`contains`].
mod erased {
    pub trait Json {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("objects serialise")
        }
    }
}

#[tokio::test]
async fn a_project_becomes_active_with_every_guardrail_and_restricted_pods() {
    let harness = Harness::new().await;
    let _operator = Operator::start(&harness.settings);
    let name = harness.create_named("e2e-active").await;
    let project = harness.wait_phase(&name, ProjectPhase::Active).await;

    let status = project.status.as_ref().expect("status");
    assert_eq!(
        status.namespace.as_deref(),
        Some(names::namespace_name(&name).as_str())
    );
    assert_eq!(status.observed_generation, project.metadata.generation);
    for type_ in ["Ready", "NamespaceReady", "IsolationReady", "QuotaReady"] {
        let condition = condition(&project, type_);
        assert_eq!(condition.status, "True", "{condition:?}");
        assert_eq!(condition.observed_generation, project.metadata.generation);
    }
    assert!(
        project
            .finalizers()
            .contains(&"trellis.dev/teardown".to_string())
    );
    assert_guardrails(&harness, &project, true).await;

    // Restricted pod security is enforced by the apiserver in the project namespace.
    let pods = harness.namespaced::<Pod>(&name);
    let root: Pod = serde_json::from_value(json!({
        "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": "registry.example/x:1"}]},
    }))
    .expect("a pod");
    let (code, message) = refusal(pods.create(&PostParams::default(), &root).await);
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("violates PodSecurity \"restricted:latest\""),
        "{message}"
    );

    let events: Api<Event> = Api::namespaced(harness.client.clone(), "default");
    let events = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .expect("events");
    assert!(
        events
            .items
            .iter()
            .any(|event| event.reason.as_deref() == Some("Active")),
        "a phase transition is published as an Event: {events:?}"
    );
}

#[tokio::test]
async fn unapproved_and_not_yet_started_projects_stay_pending_with_nothing_provisioned() {
    let harness = Harness::new().await;
    let _operator = Operator::start(&harness.settings);
    let unapproved = unique_name("e2e-unapproved");
    let mut body = harness.project_body(&unapproved);
    body["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("approval");
    harness.create(body).await;
    let future = unique_name("e2e-future");
    let mut body = harness.project_body(&future);
    body["spec"]["startDate"] = json!("2098-01-01");
    harness.create(body).await;

    for (name, reason) in [(&unapproved, "NotApproved"), (&future, "NotStarted")] {
        let project = harness.wait_phase(name, ProjectPhase::Pending).await;
        let ready = condition(&project, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", reason)
        );
        assert!(
            !harness.has_namespace(name).await,
            "{name}: nothing provisioned"
        );
    }
    let started = harness.projects.get(&future).await.expect("read");
    assert!(
        condition(&started, "Ready").message.contains("2098-01-01"),
        "says when it starts"
    );

    // Approving it provisions it.
    harness
        .patch_spec(&unapproved, json!({"approval": {"reference": "R-1", "approvedBy": "DAC", "approvedAt": "2026-02-01T00:00:00Z"}}))
        .await;
    harness.wait_phase(&unapproved, ProjectPhase::Active).await;
}

#[tokio::test]
async fn a_namespace_that_is_not_the_projects_fails_it_and_is_left_alone() {
    let harness = Harness::new().await;
    let _operator = Operator::start(&harness.settings);
    let name = unique_name("e2e-conflict");
    create_namespace(
        &harness.client,
        &names::namespace_name(&name),
        &[("owner", "someone-else")],
    )
    .await;
    harness.create(harness.project_body(&name)).await;
    let project = harness.wait_phase(&name, ProjectPhase::Failed).await;
    let ready = condition(&project, "Ready");
    assert_eq!(ready.reason, "NamespaceConflict");
    assert!(
        ready
            .message
            .contains("already exists and does not belong to this project"),
        "{ready:?}"
    );
    let namespace = Api::<Namespace>::all(harness.client.clone())
        .get(&names::namespace_name(&name))
        .await
        .expect("still there");
    assert_eq!(
        namespace.labels().get("owner").map(String::as_str),
        Some("someone-else")
    );
    assert!(
        namespace
            .labels()
            .get("pod-security.kubernetes.io/enforce")
            .is_none(),
        "not taken over"
    );
}

#[tokio::test]
async fn guardrails_deleted_or_edited_by_hand_are_put_back() {
    let harness = Harness::new().await;
    let _operator = Operator::start(&harness.settings);
    let name = harness.create_named("e2e-drift").await;
    let project = harness.wait_phase(&name, ProjectPhase::Active).await;

    let policies = harness.namespaced::<NetworkPolicy>(&name);
    policies
        .delete("trellis-default-deny", &DeleteParams::default())
        .await
        .expect("deleting a policy");
    let quotas = harness.namespaced::<ResourceQuota>(&name);
    quotas
        .patch(
            names::QUOTA_NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hard": {"pods": "1000"}}})),
        )
        .await
        .expect("editing the quota");
    let namespaces: Api<Namespace> = Api::all(harness.client.clone());
    let namespace = names::namespace_name(&name);
    namespaces
        .patch(
            &namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})),
        )
        .await
        .expect("weakening pod security");
    harness
        .namespaced::<ServiceAccount>(&name)
        .delete("workspace", &DeleteParams::default())
        .await
        .expect("delete");

    wait_for(
        &policies,
        "trellis-default-deny",
        SETTLE,
        "the policy restored",
        |p: Option<&NetworkPolicy>| p.is_some(),
    )
    .await;
    wait_for(
        &quotas,
        names::QUOTA_NAME,
        SETTLE,
        "the quota restored",
        |q: Option<&ResourceQuota>| {
            q.and_then(|q| {
                q.spec
                    .as_ref()?
                    .hard
                    .as_ref()?
                    .get("pods")
                    .map(|p| p.0 == "4")
            }) == Some(true)
        },
    )
    .await;
    wait_for(
        &namespaces,
        &namespace,
        SETTLE,
        "restricted pod security restored",
        |n: Option<&Namespace>| {
            n.is_some_and(|n| {
                n.labels()
                    .get("pod-security.kubernetes.io/enforce")
                    .map(String::as_str)
                    == Some("restricted")
            })
        },
    )
    .await;
    wait_for(
        &harness.namespaced::<ServiceAccount>(&name),
        "workspace",
        SETTLE,
        "the SA restored",
        |a: Option<&ServiceAccount>| a.is_some(),
    )
    .await;
    assert_guardrails(&harness, &project, true).await;
}

#[tokio::test]
async fn a_policy_marked_as_the_operators_that_it_does_not_build_is_removed() {
    let harness = Harness::new().await;
    let _operator = Operator::start(&harness.settings);
    let name = harness.create_named("e2e-orphan").await;
    let project = harness.wait_phase(&name, ProjectPhase::Active).await;
    // E.g. left behind by an older operator version that built one more policy.
    let policies = harness.namespaced::<NetworkPolicy>(&name);
    let orphan: NetworkPolicy = serde_json::from_value(json!({
        "metadata": {
            "name": "trellis-allow-legacy",
            "labels": {"app.kubernetes.io/managed-by": "trellis-operator", "trellis.dev/project": name},
            "ownerReferences": [{
                "apiVersion": "trellis.dev/v1alpha1", "kind": "Project", "name": name,
                "uid": project.uid().expect("a uid"), "controller": true,
            }],
        },
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
    }))
    .expect("a policy");
    policies
        .create(&PostParams::default(), &orphan)
        .await
        .expect("creating the orphan");
    wait_deleted(&policies, "trellis-allow-legacy", SETTLE).await;

    // A policy someone else manages in the namespace is not the operator's to remove.
    let foreign: NetworkPolicy = serde_json::from_value(json!({
        "metadata": {"name": "site-monitoring", "labels": {"team": "platform"}},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }))
    .expect("a policy");
    policies
        .create(&PostParams::default(), &foreign)
        .await
        .expect("creating a foreign policy");
    // Give the operator a reason to reconcile, then check the foreign policy is still there.
    policies
        .delete("trellis-default-deny", &DeleteParams::default())
        .await
        .expect("deleting");
    wait_for(
        &policies,
        "trellis-default-deny",
        SETTLE,
        "restored",
        |p: Option<&NetworkPolicy>| p.is_some(),
    )
    .await;
    assert!(
        policies
            .get_opt("site-monitoring")
            .await
            .expect("get")
            .is_some()
    );
}

#[tokio::test]
async fn suspension_stops_workspaces_and_admits_no_pods_until_resumed() {
    let harness = Harness::new().await;
    let _operator = Operator::start(&harness.settings);
    let name = harness.create_named("e2e-suspend").await;
    harness.wait_phase(&name, ProjectPhase::Active).await;
    let workspaces = harness.namespaced::<Workspace>(&name);
    let workspace: Workspace = serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "Workspace",
        "metadata": {"name": "analysis"}, "spec": {"owner": "alice", "template": "jupyter"},
    }))
    .expect("a workspace");
    workspaces
        .create(&PostParams::default(), &workspace)
        .await
        .expect("creating a workspace");

    harness.patch_spec(&name, json!({"suspended": true})).await;
    let project = harness.wait_phase(&name, ProjectPhase::Suspended).await;
    let ready = condition(&project, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Suspended")
    );
    wait_for(
        &workspaces,
        "analysis",
        SETTLE,
        "the workspace stopped",
        |w: Option<&Workspace>| w.is_some_and(|w| !w.spec.running),
    )
    .await;
    assert_guardrails(&harness, &project, false).await;

    harness.patch_spec(&name, json!({"suspended": false})).await;
    let project = harness.wait_phase(&name, ProjectPhase::Active).await;
    assert_eq!(condition(&project, "Ready").status, "True");
    assert_guardrails(&harness, &project, true).await;
}

#[tokio::test]
async fn a_project_past_its_end_date_expires_and_its_workspaces_stop() {
    let harness = Harness::new().await;
    let _operator = Operator::start(&harness.settings);
    let name = harness.create_named("e2e-expire").await;
    harness.wait_phase(&name, ProjectPhase::Active).await;
    let workspaces = harness.namespaced::<Workspace>(&name);
    let workspace: Workspace = serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "Workspace",
        "metadata": {"name": "analysis"}, "spec": {"owner": "bob", "template": "jupyter", "running": true},
    }))
    .expect("a workspace");
    workspaces
        .create(&PostParams::default(), &workspace)
        .await
        .expect("creating a workspace");

    let yesterday = (chrono::Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    harness
        .patch_spec(&name, json!({"endDate": yesterday}))
        .await;
    let project = harness.wait_phase(&name, ProjectPhase::Expired).await;
    assert!(
        condition(&project, "Ready").message.contains(&yesterday),
        "says when it ended"
    );
    wait_for(
        &workspaces,
        "analysis",
        SETTLE,
        "the workspace stopped",
        |w: Option<&Workspace>| w.is_some_and(|w| !w.spec.running),
    )
    .await;
    assert_guardrails(&harness, &project, false).await;
}

#[tokio::test]
async fn closing_deletes_the_namespace_and_everything_in_it_and_keeps_a_record() {
    let harness = Harness::new().await;
    let _operator = Operator::start(&harness.settings);
    let name = harness.create_named("e2e-close").await;
    harness.wait_phase(&name, ProjectPhase::Active).await;
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "home-analysis"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("a claim");
    let claims = harness.namespaced::<PersistentVolumeClaim>(&name);
    claims
        .create(&PostParams::default(), &claim)
        .await
        .expect("a PVC");
    // kwok's simulated provisioner gives the claim a volume, as a real storage driver would.
    let bound = wait_for(
        &claims,
        "home-analysis",
        SETTLE,
        "the claim bound",
        |c: Option<&PersistentVolumeClaim>| {
            c.and_then(|c| c.status.as_ref()?.phase.as_deref()) == Some("Bound")
        },
    )
    .await;
    let volume = bound
        .spec
        .and_then(|spec| spec.volume_name)
        .expect("a bound claim names its volume");
    let data: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "results"}, "data": {"n": "42"}}))
            .expect("cm");
    harness
        .namespaced::<ConfigMap>(&name)
        .create(&PostParams::default(), &data)
        .await
        .expect("a ConfigMap");

    harness.patch_spec(&name, json!({"closed": true})).await;
    let project = harness.wait_phase(&name, ProjectPhase::Closed).await;
    let namespace = names::namespace_name(&name);
    assert!(
        !harness.has_namespace(&name).await,
        "the namespace is confirmed gone"
    );

    let record = project
        .status
        .as_ref()
        .and_then(|s| s.teardown.clone())
        .expect("a teardown record");
    assert_eq!(record.namespace, namespace);
    let completed = record.completed_at.expect("completed");
    assert!(completed >= record.started_at);
    for entry in [
        format!("Namespace/{namespace}"),
        "PersistentVolumeClaim/home-analysis".to_owned(),
        "ConfigMap/results".to_owned(),
        "NetworkPolicy/trellis-default-deny".to_owned(),
        format!("PersistentVolume/{volume}"),
    ] {
        assert!(
            record.deleted.contains(&entry),
            "{entry} missing from {:?}",
            record.deleted
        );
    }
    assert_eq!(condition(&project, "Ready").reason, "Closed");
    let volumes: Api<PersistentVolume> = Api::all(harness.client.clone());
    assert!(
        volumes.get_opt(&volume).await.expect("get").is_none(),
        "the volume is confirmed gone too"
    );
    let events: Api<Event> = Api::namespaced(harness.client.clone(), "default");
    let reasons: Vec<_> = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .expect("events")
        .items
        .into_iter()
        .filter_map(|event| event.reason)
        .collect();
    for reason in ["TeardownStarted", "TeardownCompleted", "Closed"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} not in {reasons:?}"
        );
    }
    // The closed Project stays as the record that the project existed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        harness
            .projects
            .get_opt(&name)
            .await
            .expect("get")
            .is_some()
    );
    assert!(!harness.has_namespace(&name).await, "never re-provisioned");
}

/// Holds a namespace's deletion open (as a slow volume would) until released.
const HOLD: &str = "e2e.trellis.dev/hold";

async fn hold_namespace(client: &Client, namespace: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": [HOLD]}})),
        )
        .await
        .expect("holding the namespace");
}

async fn release_namespace(client: &Client, namespace: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("releasing the namespace");
}

#[tokio::test]
async fn a_deleted_project_keeps_its_finalizer_until_the_namespace_is_really_gone() {
    let harness = Harness::new().await;
    let _operator = Operator::start(&harness.settings);
    let name = harness.create_named("e2e-delete").await;
    harness.wait_phase(&name, ProjectPhase::Active).await;
    let namespace = names::namespace_name(&name);
    hold_namespace(&harness.client, &namespace).await;

    harness
        .projects
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleting the project");
    let closing = harness.wait_phase(&name, ProjectPhase::Closing).await;
    assert!(closing.metadata.deletion_timestamp.is_some());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = harness
        .projects
        .get(&name)
        .await
        .expect("held by its finalizer while the namespace remains");
    assert_eq!(
        still.status.and_then(|s| s.phase),
        Some(ProjectPhase::Closing)
    );

    release_namespace(&harness.client, &namespace).await;
    wait_deleted(&harness.projects, &name, SETTLE).await;
    assert!(!harness.has_namespace(&name).await, "the namespace is gone");
}

#[tokio::test]
async fn an_operator_killed_while_provisioning_converges_when_restarted_with_nothing_leaked() {
    let harness = Harness::new().await;
    let operator = Operator::start(&harness.settings);
    let mut names = Vec::new();
    for _ in 0..12 {
        names.push(harness.create_named("e2e-crash").await);
    }
    // Kill it as soon as it has started writing, mid-way through the batch.
    let deadline = tokio::time::Instant::now() + SETTLE;
    while operator
        .metric("trellis_operator_writes_total{controller=\"project\"}")
        .await
        < 3.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the operator never started provisioning"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    operator.kill();
    let _restarted = Operator::start(&harness.settings);
    for name in &names {
        let project = harness.wait_phase(name, ProjectPhase::Active).await;
        assert_guardrails(&harness, &project, true).await;
    }
    // Nothing leaked: every namespace the operator made for this batch belongs to a live Project.
    let namespaces: Api<Namespace> = Api::all(harness.client.clone());
    let managed = namespaces
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=trellis-operator"))
        .await
        .expect("namespaces");
    let ours: Vec<_> = managed
        .iter()
        .map(ResourceExt::name_any)
        .filter(|ns| ns.starts_with("trellis-e2e-crash-"))
        .collect();
    for namespace in &ours {
        let project = namespace.trim_start_matches("trellis-");
        assert!(
            harness
                .projects
                .get_opt(project)
                .await
                .expect("get")
                .is_some(),
            "{namespace} leaked"
        );
    }
    for name in &names {
        assert!(
            ours.contains(&names::namespace_name(name)),
            "{name} has its namespace"
        );
    }
}

#[tokio::test]
async fn an_operator_killed_during_teardown_finishes_it_when_restarted() {
    let harness = Harness::new().await;
    let operator = Operator::start(&harness.settings);
    let name = harness.create_named("e2e-crash-close").await;
    harness.wait_phase(&name, ProjectPhase::Active).await;
    let namespace = names::namespace_name(&name);
    hold_namespace(&harness.client, &namespace).await;
    harness.patch_spec(&name, json!({"closed": true})).await;
    harness.wait_phase(&name, ProjectPhase::Closing).await;
    operator.kill();

    release_namespace(&harness.client, &namespace).await;
    let _restarted = Operator::start(&harness.settings);
    let project = harness.wait_phase(&name, ProjectPhase::Closed).await;
    let record = project
        .status
        .and_then(|s| s.teardown)
        .expect("a teardown record");
    assert!(record.completed_at.is_some());
    assert!(
        record.deleted.contains(&format!("Namespace/{namespace}")),
        "{:?}",
        record.deleted
    );
    assert!(!harness.has_namespace(&name).await, "the namespace is gone");
}

#[tokio::test]
async fn in_steady_state_a_restarted_operator_writes_nothing() {
    let harness = Harness::new().await;
    let operator = Operator::start(&harness.settings);
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(harness.create_named("e2e-steady").await);
    }
    // Quantities the apiserver stores spelled otherwise (8 and 32Gi) are not drift.
    let spelled = unique_name("e2e-steady");
    let mut body = harness.project_body(&spelled);
    body["spec"]["resources"]["cpu"] = json!("8000m");
    body["spec"]["resources"]["memory"] = json!("32768Mi");
    harness.create(body).await;
    names.push(spelled);
    // One running DataSHIELD server, and one stopped with its project.
    let server = unique_name("e2e-steady");
    harness
        .create(with_datashield(harness.project_body(&server)))
        .await;
    names.push(server.clone());
    let suspended = unique_name("e2e-steady");
    let mut body = with_datashield(harness.project_body(&suspended));
    body["spec"]["suspended"] = json!(true);
    harness.create(body).await;
    for name in &names {
        harness.wait_phase(name, ProjectPhase::Active).await;
    }
    harness
        .wait_phase(&suspended, ProjectPhase::Suspended)
        .await;
    wait_datashield(&harness, &server, true).await;
    wait_datashield(&harness, &suspended, false).await;
    assert_eq!(
        operator.terminate().code(),
        Some(0),
        "a clean exit on SIGTERM"
    );

    let restarted = Operator::start(&harness.settings);
    let reconciles =
        "trellis_operator_reconciles_total{controller=\"project\",outcome=\"success\"}";
    let deadline = tokio::time::Instant::now() + SETTLE;
    while restarted.metric(reconciles).await < 6.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted operator never reconciled everything"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        restarted
            .metric("trellis_operator_writes_total{controller=\"project\"}")
            .await,
        0.0
    );
    assert_eq!(
        restarted
            .metric("trellis_operator_projects{phase=\"Active\"}")
            .await,
        5.0
    );
    assert_eq!(
        restarted
            .metric("trellis_operator_projects{phase=\"Suspended\"}")
            .await,
        1.0
    );
    let (code, _) = restarted.get("/healthz").await;
    assert_eq!(code, 200);
    let (code, body) = restarted.get("/readyz").await;
    assert_eq!((code, body.as_str()), (200, "ready"));
}

#[tokio::test]
async fn of_two_replicas_only_the_leader_writes_and_the_standby_takes_over_when_it_dies() {
    let mut harness = Harness::new().await;
    harness.settings.lease_duration_seconds = 4;
    let first = Operator::start(&harness.settings);
    let deadline = tokio::time::Instant::now() + SETTLE;
    while first.metric("trellis_operator_leader").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first replica never led"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = Operator::start(&harness.settings);
    let name = harness.create_named("e2e-ha").await;
    harness.wait_phase(&name, ProjectPhase::Active).await;
    assert_eq!(second.metric("trellis_operator_leader").await, 0.0);
    let writes = "trellis_operator_writes_total{controller=\"project\"}";
    assert_eq!(
        second.metric(writes).await,
        0.0,
        "the standby must not write"
    );
    assert!(first.metric(writes).await > 0.0);
    let (code, body) = second.get("/readyz").await;
    assert_eq!((code, body.as_str()), (200, "ready"), "a standby is ready");

    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(harness.client.clone(), &harness.settings.lease_namespace);
    let holder = |lease: &k8s_openapi::api::coordination::v1::Lease| {
        lease
            .spec
            .as_ref()
            .and_then(|spec| spec.holder_identity.clone())
    };
    let lease = leases.get(&harness.settings.run).await.expect("the lease");
    assert_eq!(holder(&lease).as_deref(), Some(first.identity.as_str()));

    first.kill();
    let second_identity = second.identity.clone();
    wait_for(
        &leases,
        &harness.settings.run,
        SETTLE,
        "the standby to take the lease",
        move |l: Option<&k8s_openapi::api::coordination::v1::Lease>| {
            l.and_then(holder).as_deref() == Some(second_identity.as_str())
        },
    )
    .await;
    let after = harness.create_named("e2e-ha").await;
    harness.wait_phase(&after, ProjectPhase::Active).await;
    assert_eq!(second.metric("trellis_operator_leader").await, 1.0);
    assert!(second.metric(writes).await > 0.0);
}

/// A project body with a DataSHIELD server holding two tables.
fn with_datashield(mut body: Value) -> Value {
    body["spec"]["datashield"] = json!({
        "enabled": true,
        "tables": [
            {"name": "admissions", "request": "req-1", "file": "admissions.csv",
             "dictionary": "admissions.dictionary.yaml"},
            {"name": "outcomes", "request": "req-1", "file": "outcomes.parquet"},
        ],
        "settings": {"nfilterTab": 5},
    });
    body
}

/// Waits for the project's `status.datashield` to say `ready`.
async fn wait_datashield(harness: &Harness, name: &str, ready: bool) -> Project {
    wait_for(
        &harness.projects,
        name,
        Duration::from_secs(60),
        &format!("status.datashield.ready == {ready}"),
        move |p: Option<&Project>| {
            p.and_then(|p| p.status.as_ref()?.datashield.as_ref())
                .is_some_and(|d| d.ready == ready)
        },
    )
    .await
}

fn config_hash(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref()?.annotations.as_ref())
        .and_then(|a| a.get("trellis.dev/config-sha256").cloned())
        .expect("the config-sha256 annotation")
}

fn secret_value(secret: &Secret, key: &str) -> String {
    let bytes = &secret.data.as_ref().expect("data")[key].0;
    String::from_utf8(bytes.clone()).expect("text")
}

#[tokio::test]
async fn a_project_with_datashield_runs_a_hardened_server_that_stops_with_the_project() {
    let harness = Harness::new().await;
    let _operator = Operator::start(&harness.settings);
    let name = unique_name("e2e-ds");
    harness
        .create(with_datashield(harness.project_body(&name)))
        .await;
    harness.wait_phase(&name, ProjectPhase::Active).await;

    // Its objects, in the project's namespace.
    let config = harness
        .namespaced::<ConfigMap>(&name)
        .get(names::DATASHIELD_NAME)
        .await
        .expect("the DataSHIELD ConfigMap");
    let data = config.data.clone().expect("data");
    assert_eq!(
        data[names::DATASHIELD_PROFILE_KEY],
        "name: default\nsettings:\n  nfilter.tab: 5\n"
    );
    let tables: Value = serde_yaml::from_str(&data[names::DATASHIELD_TABLES_KEY]).expect("YAML");
    assert_eq!(tables["project"], json!(name));
    assert_eq!(tables["tables"][1]["file"], "outcomes.parquet");
    let secrets = harness.namespaced::<Secret>(&name);
    let secret = secrets
        .get(names::DATASHIELD_NAME)
        .await
        .expect("the DataSHIELD Secret");
    let proxy = secret_value(&secret, names::DATASHIELD_PROXY_SECRET_KEY);
    assert!(
        proxy.len() == 64 && proxy.bytes().all(|b| b.is_ascii_hexdigit()),
        "{proxy}"
    );
    let seed = secret_value(&secret, names::DATASHIELD_SEED_KEY);
    assert!(seed.parse::<i32>().expect("an i32") > 0);
    let account = harness
        .namespaced::<ServiceAccount>(&name)
        .get(names::DATASHIELD_NAME)
        .await
        .expect("the DataSHIELD ServiceAccount");
    assert_eq!(account.automount_service_account_token, Some(false));
    let service = harness
        .namespaced::<Service>(&name)
        .get(names::DATASHIELD_NAME)
        .await
        .expect("the DataSHIELD Service");
    let port = &service
        .spec
        .as_ref()
        .expect("spec")
        .ports
        .as_ref()
        .expect("ports")[0];
    assert_eq!(port.port, i32::from(names::DATASHIELD_PORT));
    let policies = harness.namespaced::<NetworkPolicy>(&name);
    for policy in ["trellis-datashield-ingress", "trellis-datashield-egress"] {
        policies.get(policy).await.expect(policy);
    }

    // The Deployment's pod is hardened; the token is only the init container's.
    let deployments = harness.namespaced::<Deployment>(&name);
    let deployment = deployments
        .get(names::DATASHIELD_NAME)
        .await
        .expect("the DataSHIELD Deployment");
    let pod =
        serde_json::to_value(&deployment.spec.as_ref().expect("spec").template.spec).expect("JSON");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["serviceAccountName"], names::DATASHIELD_NAME);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    for container in [&pod["initContainers"][0], &pod["containers"][0]] {
        let security = &container["securityContext"];
        assert_eq!(security["allowPrivilegeEscalation"], false, "{container}");
        assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(security["runAsNonRoot"], true);
        assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    }
    let mounts = |container: &Value| -> Vec<(String, bool)> {
        container["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().expect("name").to_owned(),
                    m["readOnly"] == true,
                )
            })
            .collect()
    };
    let init = mounts(&pod["initContainers"][0]);
    let server = mounts(&pod["containers"][0]);
    assert!(
        init.contains(&("trellis-token".to_owned(), true)),
        "{init:?}"
    );
    assert!(init.contains(&("tables".to_owned(), false)), "{init:?}");
    assert!(
        !server.iter().any(|(name, _)| name == "trellis-token"),
        "the server container has no token: {server:?}"
    );
    assert!(server.contains(&("tables".to_owned(), true)), "{server:?}");

    // kwok runs the pod, the Deployment becomes available, and the status says so.
    let project = wait_datashield(&harness, &name, true).await;
    let status = project
        .status
        .as_ref()
        .and_then(|s| s.datashield.clone())
        .expect("status.datashield");
    assert_eq!(status.tables, ["admissions", "outcomes"]);
    let ready = condition(&project, "DataShieldReady");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Running")
    );
    assert_eq!(ready.observed_generation, project.metadata.generation);

    // A changed setting rolls the pod; the seed stays.
    let before = config_hash(&deployment);
    harness
        .patch_spec(
            &name,
            json!({"datashield": {"settings": {"nfilterTab": 10}}}),
        )
        .await;
    wait_for(
        &deployments,
        names::DATASHIELD_NAME,
        SETTLE,
        "a new config hash",
        move |d: Option<&Deployment>| d.is_some_and(|d| config_hash(d) != before),
    )
    .await;
    let secret = secrets.get(names::DATASHIELD_NAME).await.expect("secret");
    assert_eq!(secret_value(&secret, names::DATASHIELD_SEED_KEY), seed);
    assert_eq!(
        secret_value(&secret, names::DATASHIELD_PROXY_SECRET_KEY),
        proxy
    );
    wait_datashield(&harness, &name, true).await;

    // Suspended: the server stops, its configuration and seed stay.
    harness.patch_spec(&name, json!({"suspended": true})).await;
    harness.wait_phase(&name, ProjectPhase::Suspended).await;
    wait_deleted(&deployments, names::DATASHIELD_NAME, SETTLE).await;
    let project = wait_datashield(&harness, &name, false).await;
    let status = project
        .status
        .as_ref()
        .and_then(|s| s.datashield.clone())
        .expect("status.datashield");
    assert_eq!(
        status.message.as_deref(),
        Some("stopped: project Suspended")
    );
    assert!(status.tables.is_empty());
    assert_eq!(condition(&project, "DataShieldReady").reason, "Stopped");
    let secret = secrets.get(names::DATASHIELD_NAME).await.expect("kept");
    assert_eq!(secret_value(&secret, names::DATASHIELD_SEED_KEY), seed);
    harness
        .namespaced::<ConfigMap>(&name)
        .get(names::DATASHIELD_NAME)
        .await
        .expect("kept");

    // Resumed: it runs again.
    harness.patch_spec(&name, json!({"suspended": false})).await;
    harness.wait_phase(&name, ProjectPhase::Active).await;
    let project = wait_datashield(&harness, &name, true).await;
    assert_eq!(condition(&project, "DataShieldReady").status, "True");

    // Closed: everything goes with the namespace, and the record says what.
    harness.patch_spec(&name, json!({"closed": true})).await;
    let project = harness.wait_phase(&name, ProjectPhase::Closed).await;
    assert!(!harness.has_namespace(&name).await);
    let record = project
        .status
        .and_then(|s| s.teardown)
        .expect("a teardown record");
    for entry in [
        "Deployment/trellis-datashield",
        "ConfigMap/trellis-datashield",
        "Secret/trellis-datashield",
        "Service/trellis-datashield",
        "NetworkPolicy/trellis-datashield-ingress",
    ] {
        assert!(
            record.deleted.iter().any(|e| e == entry),
            "{entry} missing from {:?}",
            record.deleted
        );
    }
}

#[tokio::test]
async fn disabling_datashield_removes_every_one_of_its_objects() {
    let harness = Harness::new().await;
    let _operator = Operator::start(&harness.settings);
    let name = unique_name("e2e-ds-off");
    harness
        .create(with_datashield(harness.project_body(&name)))
        .await;
    harness.wait_phase(&name, ProjectPhase::Active).await;
    let deployments = harness.namespaced::<Deployment>(&name);
    wait_for(
        &deployments,
        names::DATASHIELD_NAME,
        SETTLE,
        "the server",
        |d: Option<&Deployment>| d.is_some(),
    )
    .await;

    harness
        .patch_spec(&name, json!({"datashield": {"enabled": false}}))
        .await;
    wait_deleted(&deployments, names::DATASHIELD_NAME, SETTLE).await;
    wait_deleted(
        &harness.namespaced::<ServiceAccount>(&name),
        names::DATASHIELD_NAME,
        SETTLE,
    )
    .await;
    for (what, present) in [
        (
            "ConfigMap",
            harness
                .namespaced::<ConfigMap>(&name)
                .get_opt(names::DATASHIELD_NAME)
                .await
                .expect("get")
                .is_some(),
        ),
        (
            "Secret",
            harness
                .namespaced::<Secret>(&name)
                .get_opt(names::DATASHIELD_NAME)
                .await
                .expect("get")
                .is_some(),
        ),
        (
            "Service",
            harness
                .namespaced::<Service>(&name)
                .get_opt(names::DATASHIELD_NAME)
                .await
                .expect("get")
                .is_some(),
        ),
    ] {
        assert!(!present, "the {what} remains");
    }
    let policies = harness.namespaced::<NetworkPolicy>(&name);
    wait_deleted(&policies, "trellis-datashield-ingress", SETTLE).await;
    wait_deleted(&policies, "trellis-datashield-egress", SETTLE).await;
    let project = wait_for(
        &harness.projects,
        &name,
        SETTLE,
        "no status.datashield",
        |p: Option<&Project>| {
            p.and_then(|p| p.status.as_ref())
                .is_some_and(|s| s.datashield.is_none())
        },
    )
    .await;
    assert!(
        project
            .status
            .expect("status")
            .conditions
            .iter()
            .all(|c| c.type_ != "DataShieldReady")
    );
    // The project's quota has no room left for it.
    let quota = harness
        .namespaced::<ResourceQuota>(&name)
        .get(names::QUOTA_NAME)
        .await
        .expect("quota");
    assert_eq!(
        quota.spec.and_then(|s| s.hard).expect("hard")["pods"].0,
        "4"
    );
}
