//! Proves that the local control plane is a real one: scheduling onto simulated nodes, namespace
//! finalisation, service-account tokens, and admission policies all behave as on a cluster.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenReview};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use trellis_e2e::{client, create_namespace, refusal, unique_name, wait_deleted, wait_for};

fn pod(name: &str, security_context: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "main",
                "image": "registry.example/trellis/probe:1",
                "securityContext": security_context,
            }],
        },
    }))
    .expect("a valid pod")
}

fn restricted() -> serde_json::Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

#[tokio::test]
async fn apiserver_reports_the_pinned_kubernetes_release() {
    let client = client().await;
    let version = client.apiserver_version().await.expect("reading /version");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "36"),
        "{version:?}"
    );
    assert!(version.git_version.starts_with("v1.36."), "{version:?}");
}

#[tokio::test]
async fn a_pod_on_a_simulated_node_reaches_running_with_a_loopback_address() {
    let client = client().await;
    let namespace = unique_name("e2e-pod");
    create_namespace(&client, &namespace, &[]).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    pods.create(&PostParams::default(), &pod("probe", restricted()))
        .await
        .expect("creating a pod");
    let running = wait_for(
        &pods,
        "probe",
        Duration::from_secs(30),
        "phase Running",
        |pod: Option<&Pod>| {
            pod.and_then(|pod| pod.status.as_ref()?.phase.as_deref()) == Some("Running")
        },
    )
    .await;
    let spec = running.spec.expect("a pod has a spec");
    assert!(
        spec.node_name
            .as_deref()
            .is_some_and(|node| node.starts_with("kwok-node-")),
        "scheduled onto a simulated node: {:?}",
        spec.node_name
    );
    let ip: std::net::Ipv4Addr = running
        .status
        .and_then(|status| status.pod_ip)
        .expect("a running pod has an address")
        .parse()
        .expect("an IPv4 pod address");
    assert!(
        ip.is_loopback(),
        "pod addresses must be on loopback, got {ip}"
    );
    Api::<Namespace>::all(client)
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn deleting_a_namespace_removes_it_and_its_contents() {
    let client = client().await;
    let name = unique_name("e2e-ns");
    create_namespace(&client, &name, &[]).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    let config_map: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "content"}, "data": {"k": "v"}}))
            .expect("a config map");
    config_maps
        .create(&PostParams::default(), &config_map)
        .await
        .expect("creating content");

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&name, &DeleteParams::default())
        .await
        .expect("deleting the namespace");
    wait_deleted(&namespaces, &name, Duration::from_secs(60)).await;
    assert!(
        config_maps
            .get_opt("content")
            .await
            .expect("listing a deleted namespace")
            .is_none(),
        "the namespace's contents must go with it"
    );
}

#[tokio::test]
async fn a_token_request_token_passes_token_review_and_a_forged_one_does_not() {
    let client = client().await;
    let namespace = unique_name("e2e-token");
    create_namespace(&client, &namespace, &[]).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    let account: ServiceAccount = serde_json::from_value(
        json!({"metadata": {"name": "workspace"}, "automountServiceAccountToken": false}),
    )
    .expect("a service account");
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("creating a service account");

    let request: TokenRequest = serde_json::from_value(
        json!({"spec": {"audiences": ["trellis"], "expirationSeconds": 600}}),
    )
    .expect("a token request");
    let issued = accounts
        .create_token_request("workspace", &PostParams::default(), &request)
        .await
        .expect("requesting a token");
    let token = issued
        .status
        .and_then(|status| status.token)
        .expect("an issued token");

    let reviews: Api<TokenReview> = Api::all(client.clone());
    let review = |token: String| -> TokenReview {
        serde_json::from_value(json!({"spec": {"token": token, "audiences": ["trellis"]}}))
            .expect("a token review")
    };
    let accepted = reviews
        .create(&PostParams::default(), &review(token.clone()))
        .await
        .expect("reviewing the token")
        .status
        .expect("a review has a status");
    assert_eq!(accepted.authenticated, Some(true), "{accepted:?}");
    assert_eq!(
        accepted.user.and_then(|user| user.username).as_deref(),
        Some(format!("system:serviceaccount:{namespace}:workspace").as_str())
    );
    assert_eq!(accepted.audiences, Some(vec!["trellis".to_string()]));

    // Same token, one signature byte changed: must not authenticate.
    let mut forged = token.into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let rejected = reviews
        .create(
            &PostParams::default(),
            &review(String::from_utf8(forged).expect("ASCII token")),
        )
        .await
        .expect("reviewing the forged token")
        .status
        .expect("a review has a status");
    assert_ne!(
        rejected.authenticated,
        Some(true),
        "a forged token authenticated: {rejected:?}"
    );
    Api::<Namespace>::all(client)
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn a_validating_admission_policy_rejects_a_privileged_pod() {
    let client = client().await;
    let name = unique_name("e2e-vap");
    let namespace = name.clone();
    create_namespace(
        &client,
        &namespace,
        &[("e2e.trellis.dev/policy", name.as_str())],
    )
    .await;

    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods"],
            }]},
            "validations": [{
                "expression": "object.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || c.securityContext.privileged == false)",
                "message": "privileged containers are not allowed",
            }],
        },
    }))
    .expect("a policy");
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"e2e.trellis.dev/policy": name}}},
        },
    }))
    .expect("a binding");
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    policies
        .create(&PostParams::default(), &policy)
        .await
        .expect("creating the policy");
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("creating the binding");

    // The apiserver loads policies asynchronously: keep offering the privileged pod until refused.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let mut privileged = restricted();
    privileged["privileged"] = json!(true);
    privileged["allowPrivilegeEscalation"] = json!(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (code, message) = loop {
        let attempt = pods
            .create(
                &PostParams::default(),
                &pod("privileged", privileged.clone()),
            )
            .await;
        match attempt {
            Ok(_) => {
                pods.delete("privileged", &DeleteParams::default().grace_period(0))
                    .await
                    .expect("removing");
                wait_deleted(&pods, "privileged", Duration::from_secs(30)).await;
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the policy never started refusing privileged pods"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            refused => break refusal(refused),
        }
    };
    assert_eq!(code, 422, "{message}");
    assert!(
        message.contains("privileged containers are not allowed"),
        "{message}"
    );
    assert!(
        message.contains(&name),
        "the refusal names the policy: {message}"
    );

    // The same namespace still admits a pod that follows the policy.
    pods.create(&PostParams::default(), &pod("unprivileged", restricted()))
        .await
        .expect("a compliant pod is admitted");

    bindings
        .delete(&name, &DeleteParams::default())
        .await
        .expect("cleanup");
    policies
        .delete(&name, &DeleteParams::default())
        .await
        .expect("cleanup");
    Api::<Namespace>::all(client)
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("cleanup");
}
