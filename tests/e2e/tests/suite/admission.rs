//! The admission policies in `policies/admission/` on the real apiserver: a catalogue of unsafe
//! pods and Services is refused in a project namespace even when its Pod Security label has been
//! weakened, while the pods the operator builds are admitted.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings};
use trellis_e2e::{
    client, create_namespace, ensure_namespace, install_admission_policies, install_crds, refusal,
    unique_name, wait_for,
};
use trellis_operator::config::OperatorConfig;
use trellis_operator::resources::{Project, Workspace, WorkspaceTemplate};
use trellis_operator::workspace::builders::build;
use trellis_operator::workspace::images::ALLOWED_IMAGES;
use trellis_operator::workspace::validate::validate;

const IMAGE: &str = "quay.io/jupyter/scipy-notebook:2026-10-20";

/// The pod the operator builds for a workspace, as a plain Pod in `namespace`.
fn operator_pod(namespace: &str) -> Value {
    let template: WorkspaceTemplate = serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "WorkspaceTemplate", "metadata": {"name": "jupyter"},
        "spec": {"displayName": "JupyterLab", "image": IMAGE, "port": 8888,
                 "resources": {"default": {"cpu": "1", "memory": "1Gi"}, "max": {"cpu": "1", "memory": "1Gi"}},
                 "defaultStorage": "1Gi"},
    }))
    .expect("a template");
    let project: Project = serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "Project", "metadata": {"name": "catalogue"},
        "spec": {"title": "t", "purpose": "p", "startDate": "2026-01-01", "endDate": "2099-01-01",
                 "members": [{"subject": "alice", "role": "owner"}], "templates": ["jupyter"],
                 "resources": {"cpu": "4", "memory": "8Gi", "storage": "10Gi", "maxWorkspaces": 2}},
    }))
    .expect("a project");
    let mut workspace: Workspace = serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "Workspace",
        "metadata": {"name": "probe", "namespace": namespace, "uid": "00000000-0000-4000-8000-000000000000"},
        "spec": {"owner": "alice", "template": "jupyter"},
    }))
    .expect("a workspace");
    workspace.metadata.namespace = Some(namespace.to_owned());
    let valid =
        validate(&workspace, Some(&project), Some(&template), &[]).expect("a valid workspace");
    let objects = build(
        &workspace,
        "catalogue",
        &template,
        &valid.resolved,
        1,
        &OperatorConfig::default(),
    );
    let pod_template = objects.statefulset.spec.expect("a spec").template;
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "probe", "labels": pod_template.metadata.and_then(|m| m.labels)},
        "spec": pod_template.spec,
    })
}

async fn admit(pods: &Api<Pod>, body: &Value) -> Result<Pod, kube::Error> {
    let pod: Pod = serde_json::from_value(body.clone()).expect("a pod");
    pods.create(
        &PostParams {
            dry_run: true,
            ..PostParams::default()
        },
        &pod,
    )
    .await
}

/// The namespace of a project whose Pod Security label an admin has weakened to privileged.
async fn weakened_project_namespace(client: &Client) -> String {
    let namespace = unique_name("e2e-admission");
    create_namespace(
        client,
        &namespace,
        &[
            ("trellis.dev/project", "catalogue"),
            ("pod-security.kubernetes.io/enforce", "privileged"),
        ],
    )
    .await;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    let account: ServiceAccount = serde_json::from_value(
        json!({"metadata": {"name": "workspace"}, "automountServiceAccountToken": false}),
    )
    .expect("an account");
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("the workspace account");
    namespace
}

type Mutation = fn(&mut Value);

#[tokio::test]
async fn unsafe_pods_are_refused_in_project_namespaces_and_the_operators_own_are_admitted() {
    let client = client().await;
    install_crds(&client).await;
    install_admission_policies(&client).await;
    // The operator publishes the images the templates offer; the policy reads that list.
    // Leases live in Trellis\'s namespace, where the operator\'s Role allows them.
    ensure_namespace(&client, CONTROL_PLANE_NAMESPACE).await;
    let _operator = Operator::start(&OperatorSettings::new());
    let templates: Api<WorkspaceTemplate> = Api::all(client.clone());
    let template_name = unique_name("e2e-admission-tpl");
    let template: WorkspaceTemplate = serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "WorkspaceTemplate", "metadata": {"name": template_name},
        "spec": {"displayName": "JupyterLab", "image": IMAGE, "port": 8888,
                 "resources": {"default": {"cpu": "1", "memory": "1Gi"}, "max": {"cpu": "1", "memory": "1Gi"}},
                 "defaultStorage": "1Gi"},
    }))
    .expect("a template");
    templates
        .create(&PostParams::default(), &template)
        .await
        .expect("creating a template");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "trellis-system");
    wait_for(
        &config_maps,
        ALLOWED_IMAGES,
        Duration::from_secs(30),
        "the allowed images",
        |c: Option<&ConfigMap>| {
            c.and_then(|c| c.data.as_ref()?.get("images"))
                .is_some_and(|images| images.lines().any(|i| i == IMAGE))
        },
    )
    .await;

    let namespace = weakened_project_namespace(&client).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let safe = operator_pod(&namespace);
    // Policies load asynchronously: wait until a pod only the policy objects to is refused.
    let mut host_ipc = safe.clone();
    host_ipc["spec"]["hostIPC"] = json!(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while admit(&pods, &host_ipc).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the admission policy never took effect"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    admit(&pods, &safe)
        .await
        .expect("the pod the operator builds is admitted");

    let catalogue: Vec<(&str, Mutation, &str)> = vec![
        // The apiserver itself refuses privileged with allowPrivilegeEscalation: false, so both change.
        (
            "privileged",
            |p| {
                p["spec"]["containers"][0]["securityContext"] =
                    json!({"privileged": true, "allowPrivilegeEscalation": true})
            },
            "privileged containers are not allowed",
        ),
        (
            "privileged init container",
            |p| {
                p["spec"]["initContainers"][0]["securityContext"] =
                    json!({"privileged": true, "allowPrivilegeEscalation": true})
            },
            "privileged containers are not allowed",
        ),
        (
            "host network",
            |p| p["spec"]["hostNetwork"] = json!(true),
            "the host network is not available",
        ),
        (
            "host PID",
            |p| p["spec"]["hostPID"] = json!(true),
            "the host PID namespace is not available",
        ),
        (
            "host IPC",
            |p| p["spec"]["hostIPC"] = json!(true),
            "the host IPC namespace is not available",
        ),
        (
            "hostPath volume",
            |p| {
                p["spec"]["volumes"]
                    .as_array_mut()
                    .expect("volumes")
                    .push(json!({"name": "root", "hostPath": {"path": "/"}}))
            },
            "hostPath volumes are not allowed",
        ),
        (
            "host port",
            |p| p["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(8888),
            "host ports are not allowed",
        ),
        (
            "added capability",
            |p| {
                p["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] =
                    json!(["NET_ADMIN"])
            },
            "may not add capabilities",
        ),
        (
            "privilege escalation",
            |p| {
                p["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
                    json!(true)
            },
            "must set allowPrivilegeEscalation: false",
        ),
        (
            "escalation left unset",
            |p| {
                p["spec"]["initContainers"][0]["securityContext"]
                    .as_object_mut()
                    .expect("context")
                    .remove("allowPrivilegeEscalation");
            },
            "must set allowPrivilegeEscalation: false",
        ),
        (
            "root user",
            |p| p["spec"]["containers"][0]["securityContext"]["runAsUser"] = json!(0),
            "must run as a non-root user",
        ),
        (
            "runAsNonRoot off",
            |p| {
                p["spec"]["securityContext"]["runAsNonRoot"] = json!(false);
                p["spec"]["containers"][0]["securityContext"]
                    .as_object_mut()
                    .expect("context")
                    .remove("runAsNonRoot");
            },
            "must run as a non-root user",
        ),
        (
            "unconfined seccomp",
            |p| {
                p["spec"]["containers"][0]["securityContext"]["seccompProfile"] =
                    json!({"type": "Unconfined"})
            },
            "seccomp profile",
        ),
        (
            "automounted token",
            |p| p["spec"]["automountServiceAccountToken"] = json!(true),
            "automountServiceAccountToken: false",
        ),
        (
            "token mount left to the default",
            |p| {
                p["spec"]
                    .as_object_mut()
                    .expect("spec")
                    .remove("automountServiceAccountToken");
            },
            "automountServiceAccountToken: false",
        ),
        (
            "token for the Kubernetes API",
            |p| {
                p["spec"]["volumes"][2]["projected"]["sources"][0]["serviceAccountToken"]["audience"] =
                    json!("https://kubernetes.default.svc")
            },
            "only be for the audience trellis",
        ),
        (
            "image no template offers",
            |p| p["spec"]["containers"][0]["image"] = json!("docker.io/library/alpine:3.20"),
            "image docker.io/library/alpine:3.20 is not offered by any WorkspaceTemplate",
        ),
        (
            "unknown init image",
            |p| p["spec"]["initContainers"][0]["image"] = json!("registry.example/exfiltrate:1"),
            "image registry.example/exfiltrate:1 is not offered",
        ),
    ];
    assert!(catalogue.len() >= 15);
    for (case, mutate, expected) in catalogue {
        let mut pod = safe.clone();
        mutate(&mut pod);
        let (code, message) = refusal(admit(&pods, &pod).await);
        assert_eq!(code, 422, "{case}: {message}");
        assert!(
            message.contains(expected),
            "{case}: expected {expected:?} in {message:?}"
        );
    }

    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let service = |spec: Value| -> Service {
        let mut body = json!({"metadata": {"name": "probe"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 8888}]}});
        for (key, value) in spec.as_object().expect("an object") {
            body["spec"][key] = value.clone();
        }
        serde_json::from_value(body).expect("a service")
    };
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    services
        .create(&dry_run, &service(json!({})))
        .await
        .expect("a ClusterIP Service is admitted");
    for (spec, expected) in [
        (
            json!({"type": "NodePort"}),
            "Services of type NodePort are not allowed",
        ),
        (
            json!({"type": "LoadBalancer"}),
            "Services of type LoadBalancer are not allowed",
        ),
        // A documentation address (RFC 5737), in a dry run: stored nowhere, never contacted.
        (
            json!({"externalIPs": ["192.0.2.10"]}),
            "external IPs are not allowed",
        ),
    ] {
        let (code, message) = refusal(services.create(&dry_run, &service(spec.clone())).await);
        assert_eq!(code, 422, "{spec}: {message}");
        assert!(message.contains(expected), "{spec}: {message}");
    }

    // Outside project namespaces the policies do not apply.
    let outside = unique_name("e2e-outside");
    create_namespace(&client, &outside, &[]).await;
    let mut plain = safe.clone();
    plain["spec"]["serviceAccountName"] = json!("default");
    plain["spec"]["containers"][0]["image"] = json!("docker.io/library/alpine:3.20");
    admit(&Api::namespaced(client.clone(), &outside), &plain)
        .await
        .expect("not a project namespace");

    templates
        .delete(&template.name_any(), &DeleteParams::default())
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn a_secret_named_trellis_datashield_can_only_be_the_servers_proxy_secret_and_seed() {
    use k8s_openapi::api::core::v1::Secret;
    let client = client().await;
    install_admission_policies(&client).await;
    let namespace = unique_name("e2e-ds-secret");
    create_namespace(&client, &namespace, &[]).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret = |body: Value| -> Secret { serde_json::from_value(body).expect("a Secret") };
    // What would make the right to read it a way to read a token or another credential.
    for (case, body, expected) in [
        (
            "a service-account token",
            json!({"metadata": {"name": "trellis-datashield",
                                "annotations": {"kubernetes.io/service-account.name": "default"}},
                   "type": "kubernetes.io/service-account-token"}),
            "may only be of type Opaque",
        ),
        (
            "another key",
            json!({"metadata": {"name": "trellis-datashield"}, "type": "Opaque",
                   "stringData": {"password": "x"}}),
            "may only hold the keys proxy-secret and seed",
        ),
    ] {
        let (code, message) = refusal(secrets.create(&PostParams::default(), &secret(body)).await);
        assert!(code == 422 || code == 403, "{case}: {code} {message}");
        assert!(message.contains(expected), "{case}: {message}");
    }
    // The operator's own, and any other Secret, pass.
    let ours = secret(
        json!({"metadata": {"name": "trellis-datashield"}, "type": "Opaque",
                             "data": {"proxy-secret": "YWJj", "seed": "NDI="}}),
    );
    secrets
        .create(&PostParams::default(), &ours)
        .await
        .expect("the server's Secret");
    let other = secret(json!({"metadata": {"name": "elsewhere"},
                              "type": "kubernetes.io/basic-auth", "stringData": {"username": "u"}}));
    secrets
        .create(&PostParams::default(), &other)
        .await
        .expect("another Secret");
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("deleting the namespace");
}
