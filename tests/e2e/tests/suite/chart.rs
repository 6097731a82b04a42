//! The Helm chart: lint and render with minimal and production values, refuse bad values, keep
//! one source of truth for the admission policies, install into the local control plane
//! (tests/cluster/install-trellis.sh, before the suite), and grant its components no more than
//! they use. (Upgrade and uninstall run after the suite: tests/cluster/chart-lifecycle.sh.)

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde::Deserialize;
use serde_yaml::Value;
use trellis_e2e::operator::CONTROL_PLANE_NAMESPACE;
use trellis_e2e::{client, repo_root, wait_for};

fn chart() -> PathBuf {
    repo_root().join("charts/trellis")
}

fn helm(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(repo_root().join("target/cluster/bin/helm"))
        .args(args)
        .output()
        .expect("running helm (built by tests/cluster/build-tools.sh)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn values(name: &str) -> String {
    chart()
        .join(format!("ci/{name}-values.yaml"))
        .display()
        .to_string()
}

fn render(extra: &[&str]) -> Result<Vec<Value>, String> {
    let chart = chart().display().to_string();
    let mut args = vec![
        "template",
        "trellis",
        chart.as_str(),
        "--namespace",
        "trellis-system",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = helm(&args);
    if !ok {
        return Err(err);
    }
    Ok(serde_yaml::Deserializer::from_str(&out)
        .filter_map(|doc| {
            let value = Value::deserialize(doc).expect("helm renders YAML");
            (!value.is_null()).then_some(value)
        })
        .collect())
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn lint_and_render_with_minimal_and_production_values() {
    for name in ["minimal", "production"] {
        let file = values(name);
        let chart = chart().display().to_string();
        let (ok, out, err) = helm(&["lint", &chart, "-f", &file, "--strict"]);
        assert!(ok, "helm lint with {name} values: {out} {err}");
    }
    let minimal = render(&["-f", &values("minimal")]).expect("minimal values render");
    let production = render(&["-f", &values("production")]).expect("production values render");
    for kind in [
        "ClusterRole",
        "Deployment",
        "NetworkPolicy",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "WorkspaceTemplate",
    ] {
        assert!(
            kinds(&minimal).iter().any(|k| k == kind),
            "minimal install lacks a {kind}"
        );
    }
    for kind in ["Ingress", "ServiceMonitor"] {
        assert!(
            !kinds(&minimal).iter().any(|k| k == kind),
            "{kind} is opt-in or for several replicas"
        );
        assert!(
            kinds(&production).iter().any(|k| k == kind),
            "production lacks a {kind}"
        );
    }
    let api_budget = |docs: &[Value]| {
        docs.iter()
            .any(|d| d["kind"] == "PodDisruptionBudget" && d["metadata"]["name"] == "trellis-api")
    };
    assert!(
        !api_budget(&minimal) && api_budget(&production),
        "a disruption budget for several API replicas"
    );
    let claim = |docs: &[Value], name: &str| {
        docs.iter()
            .any(|d| d["kind"] == "PersistentVolumeClaim" && d["metadata"]["name"] == name)
    };
    assert!(
        claim(&minimal, "trellis-api-data"),
        "SQLite needs its volume"
    );
    assert!(
        !claim(&production, "trellis-api-data"),
        "PostgreSQL needs no volume"
    );
    assert!(
        claim(&minimal, "trellis-airlock"),
        "the airlock's files need theirs"
    );
    assert!(
        !claim(&production, "trellis-airlock"),
        "files in S3 need no volume"
    );
    let api_egress = |docs: &[Value]| {
        docs.iter()
            .find(|d| d["kind"] == "NetworkPolicy" && d["metadata"]["name"] == "trellis-api")
            .map(|d| serde_yaml::to_string(&d["spec"]["egress"]).expect("YAML"))
            .expect("the API's NetworkPolicy")
    };
    assert!(
        api_egress(&production).contains("port: 9000") && !api_egress(&minimal).contains("9000"),
        "the API may reach its S3 store's port: {}",
        api_egress(&production)
    );

    for doc in minimal.iter().chain(&production) {
        // Least privilege: no wildcard anywhere in any rule.
        if let Some(rules) = doc["rules"].as_sequence() {
            for rule in rules {
                for field in ["apiGroups", "resources", "verbs"] {
                    for item in rule[field].as_sequence().into_iter().flatten() {
                        assert_ne!(
                            item.as_str(),
                            Some("*"),
                            "a wildcard in {}",
                            doc["metadata"]["name"].as_str().unwrap_or_default()
                        );
                    }
                }
            }
        }
        // Every container of Trellis's own pods runs restricted.
        if doc["kind"] == "Deployment" {
            let pod = &doc["spec"]["template"]["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::Bool(true));
            for container in pod["containers"].as_sequence().expect("containers") {
                let context = &container["securityContext"];
                assert_eq!(context["allowPrivilegeEscalation"], Value::Bool(false));
                assert_eq!(context["readOnlyRootFilesystem"], Value::Bool(true));
                assert_eq!(context["capabilities"]["drop"][0], "ALL");
                assert_eq!(context["seccompProfile"]["type"], "RuntimeDefault");
                assert!(
                    container["resources"]["requests"].is_mapping(),
                    "resource requests"
                );
                assert!(
                    container["readinessProbe"].is_mapping()
                        && container["livenessProbe"].is_mapping()
                );
            }
        }
    }
    let operator = production
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "trellis-operator")
        .expect("the operator");
    assert_eq!(
        operator["spec"]["replicas"], 2,
        "two operator replicas, one leading"
    );
    let api = production
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "trellis-api")
        .expect("the API");
    assert_eq!(api["spec"]["replicas"], 3);
    let env = &api["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(
        env["name"], "TRELLIS_API__DATABASE__URL",
        "the database URL comes from a Secret"
    );
}

#[test]
fn the_rendered_api_configuration_is_one_the_api_accepts() {
    for name in ["minimal", "production"] {
        let docs = render(&["-f", &values(name)]).expect("renders");
        let config = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "trellis-api")
            .expect("the API's ConfigMap");
        let dir = trellis_e2e::state_dir(&trellis_e2e::unique_name("chart-config"));
        // The files the Deployment mounts, placed where this test can put them.
        let secret = dir.join("client-secret");
        let policy = dir.join("policy.yaml");
        std::fs::write(&secret, "s3cret").expect("the secret");
        let smtp_password = dir.join("smtp-password");
        std::fs::write(&smtp_password, "mail-s3cret").expect("the SMTP password");
        let s3_secret = dir.join("s3-secret");
        std::fs::write(&s3_secret, "s3-s3cret").expect("the S3 secret key");
        // A CA certificate for the S3 store's, made for the purpose.
        let ca = dir.join("ca.crt");
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=Storage CA", "-keyout"])
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(&ca)
            .output()
            .expect("running openssl");
        assert!(made.status.success(), "openssl: {made:?}");
        std::fs::write(
            &policy,
            config["data"]["policy.yaml"].as_str().expect("the policy"),
        )
        .expect("the policy");
        let yaml = config["data"]["trellis.yaml"]
            .as_str()
            .expect("the configuration")
            .replace(
                "/etc/trellis/oidc/client-secret",
                secret.to_str().expect("UTF-8"),
            )
            .replace(
                "/etc/trellis/egress/policy.yaml",
                policy.to_str().expect("UTF-8"),
            )
            .replace(
                "/etc/trellis/smtp/password",
                smtp_password.to_str().expect("UTF-8"),
            )
            .replace(
                "/etc/trellis/s3/secret-access-key",
                s3_secret.to_str().expect("UTF-8"),
            )
            .replace("/etc/trellis/s3-ca/ca.crt", ca.to_str().expect("UTF-8"));
        // The production values send mail and keep files in S3 (the minimal ones only log mail
        // and use a volume).
        for section in ["smtp:", "s3:"] {
            assert_eq!(
                yaml.contains(section),
                name == "production",
                "{name}: {yaml}"
            );
        }
        let file = dir.join("trellis.yaml");
        std::fs::write(&file, yaml).expect("the configuration");
        let output = Command::new(trellis_e2e::target_profile_dir().join("trellis-api"))
            .args(["check-config", "--config"])
            .arg(&file)
            .env(
                "TRELLIS_API__DATABASE__URL",
                "postgres://trellis@db.example.org/trellis",
            )
            .output()
            .expect("running trellis-api");
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_chart_installs_this_version_of_trellis() {
    // The images' default tag is the chart's appVersion; `make images` tags them with the
    // workspace version, so the two must be one.
    let chart: Value = serde_yaml::from_str(
        &std::fs::read_to_string(chart().join("Chart.yaml")).expect("Chart.yaml"),
    )
    .expect("Chart.yaml is YAML");
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "charts/trellis/Chart.yaml appVersion is the workspace version (Cargo.toml)"
    );
}

/// The operator's and the API's images, the CLI image the operator gives workspaces, and the
/// DataSHIELD server's image it gives projects.
fn images(docs: &[Value]) -> [String; 4] {
    let container = |name: &str| {
        docs.iter()
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == name)
            .map(|d| d["spec"]["template"]["spec"]["containers"][0].clone())
            .unwrap_or_else(|| panic!("the {name} Deployment"))
    };
    let image = |name: &str| {
        container(name)["image"]
            .as_str()
            .expect("image")
            .to_string()
    };
    let flag = |prefix: &str| {
        container("trellis-operator")["args"]
            .as_sequence()
            .expect("operator args")
            .iter()
            .find_map(|a| a.as_str()?.strip_prefix(prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("{prefix}"))
    };
    [
        image("trellis-operator"),
        image("trellis-api"),
        flag("--cli-image="),
        flag("--datashield-image="),
    ]
}

#[test]
fn images_default_to_this_version_and_can_be_pinned_by_digest() {
    let version = env!("CARGO_PKG_VERSION");
    let minimal = values("minimal");
    let docs = render(&["-f", &minimal]).expect("minimal values render");
    assert_eq!(
        images(&docs),
        [
            "trellis-operator",
            "trellis-api",
            "trellis-cli",
            "trellis-datashield"
        ]
        .map(|name| format!("ghcr.io/trellis-tre/{name}:{version}"))
    );
    assert_eq!(
        images(&docs)[3],
        trellis_operator::config::DEFAULT_DATASHIELD_IMAGE,
        "the chart and the operator agree on the DataSHIELD image"
    );
    let digests = ["a", "b", "c", "d"].map(|d| format!("sha256:{}", d.repeat(64)));
    let docs = render(&[
        "-f",
        &minimal,
        "--set",
        "image.registry=registry.example.org/tre/",
        "--set",
        &format!("operator.image.digest={}", digests[0]),
        "--set",
        &format!("api.image.digest={}", digests[1]),
        "--set",
        &format!("cli.image.digest={}", digests[2]),
        "--set",
        &format!("datashield.image.digest={}", digests[3]),
    ])
    .expect("digests render");
    assert_eq!(
        images(&docs),
        [
            format!("registry.example.org/tre/trellis-operator@{}", digests[0]),
            format!("registry.example.org/tre/trellis-api@{}", digests[1]),
            format!("registry.example.org/tre/trellis-cli@{}", digests[2]),
            format!("registry.example.org/tre/trellis-datashield@{}", digests[3]),
        ]
    );
    // No registry: the repository names its own.
    let docs = render(&[
        "-f",
        &minimal,
        "--set",
        "image.registry=",
        "--set",
        "api.image.repository=mirror.example.org/trellis-api",
        "--set",
        "api.image.tag=0.1.0-rc1",
    ])
    .expect("own repositories render");
    assert_eq!(images(&docs)[1], "mirror.example.org/trellis-api:0.1.0-rc1");
}

#[test]
fn bad_values_are_refused_with_the_field_named() {
    let minimal = values("minimal");
    let cases: [(&[&str], &str); 18] = [
        (&[], "publicUrl"),
        (
            &["-f", &minimal, "--set", "operator.replicas=two"],
            "replicas",
        ),
        (&["-f", &minimal, "--set", "logFormat=xml"], "logFormat"),
        (
            &["-f", &minimal, "--set", "operater.replicas=1"],
            "operater",
        ),
        (
            &["-f", &minimal, "--set", "oidc.issuer=not-a-url"],
            "issuer",
        ),
        (
            &["-f", &minimal, "--set", "database.url=mysql://db/trellis"],
            "url",
        ),
        (
            &["-f", &minimal, "--set", "api.ingress.enabled=true"],
            "host",
        ),
        (
            &[
                "-f",
                &minimal,
                "--set",
                "workspaceTemplates.Bad_Name.image=x",
            ],
            "Bad_Name",
        ),
        (
            &["-f", &minimal, "--set", "api.replicas=2"],
            "needs PostgreSQL",
        ),
        (
            &[
                "-f",
                &minimal,
                "--set",
                "api.replicas=2",
                "--set",
                "database.existingSecret=db",
            ],
            "ReadWriteMany",
        ),
        (
            &["-f", &minimal, "--set", "notifications.smtp.host=mail"],
            "notifications.smtp.from",
        ),
        (
            &["-f", &minimal, "--set", "notifications.smtp.tls=maybe"],
            "tls",
        ),
        (
            &["-f", &minimal, "--set", "airlock.s3.bucket=tre-airlock"],
            "airlock.s3.accessKeyId",
        ),
        (
            &[
                "-f",
                &minimal,
                "--set",
                "airlock.s3.bucket=tre-airlock",
                "--set",
                "airlock.s3.accessKeyId=trellis",
            ],
            "airlock.s3.existingSecret",
        ),
        (
            &["-f", &minimal, "--set", "airlock.s3.bucket=Tre_Airlock"],
            "bucket",
        ),
        (
            &["-f", &minimal, "--set", "api.image.digest=sha256:abc"],
            "digest",
        ),
        (
            &[
                "-f",
                &minimal,
                "--set",
                "datashield.resources.limits.cpu=lots",
            ],
            "datashield/resources/limits/cpu",
        ),
        (
            &["-f", &minimal, "--set", "cli.image.digest=latest"],
            "digest",
        ),
    ];
    for (args, field) in cases {
        let error = render(args).expect_err(&format!("{args:?} should be refused"));
        assert!(error.contains(field), "{args:?}: {error}");
    }
}

#[test]
fn the_chart_carries_the_policies_of_policies_unchanged() {
    for kind in ["admission", "egress"] {
        same_files(
            &repo_root().join("policies").join(kind),
            &chart().join("files").join(kind),
        );
    }
    let docs = render(&["-f", &values("minimal")]).expect("renders");
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "trellis-api")
        .expect("the API's ConfigMap");
    let shipped = std::fs::read_to_string(repo_root().join("policies/egress/default.yaml"))
        .expect("the egress policy");
    assert_eq!(
        config["data"]["policy.yaml"].as_str().map(str::trim_end),
        Some(shipped.trim_end()),
        "the egress policy as shipped"
    );
    let bindings: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ValidatingAdmissionPolicyBinding")
        .collect();
    let with_parameters: Vec<&&Value> = bindings
        .iter()
        .filter(|b| !b["spec"]["paramRef"].is_null())
        .collect();
    assert!(
        !with_parameters.is_empty(),
        "the pod policy reads the image list"
    );
    for binding in with_parameters {
        assert_eq!(
            binding["spec"]["paramRef"]["namespace"], "trellis-system",
            "parameters from the release namespace"
        );
    }
}

fn same_files(source: &std::path::Path, copy: &std::path::Path) {
    let names = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("a policy directory")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(source),
        names(copy),
        "copy {} into {}",
        source.display(),
        copy.display()
    );
    for name in names(source) {
        assert_eq!(
            std::fs::read(source.join(&name)).expect("the policy"),
            std::fs::read(copy.join(&name)).expect("the chart's copy"),
            "{} differs from {}; copy it again",
            copy.join(&name).display(),
            source.join(&name).display()
        );
    }
}

async fn identity(variable: &str) -> kube::Client {
    let path = std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: tests/run-e2e.sh installs the chart and sets it (run `make test`)")
    });
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&path).expect("the identity's kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("a client configuration");
    kube::Client::try_from(config).expect("a client")
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

#[tokio::test]
async fn the_installed_chart_is_available_and_its_identities_are_confined() {
    let admin = client().await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), CONTROL_PLANE_NAMESPACE);
    for name in ["trellis-operator", "trellis-api"] {
        wait_for(
            &deployments,
            name,
            Duration::from_secs(60),
            "Available",
            |d: Option<&Deployment>| {
                d.and_then(|d| d.status.as_ref())
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c.type_ == "Available" && c.status == "True")
                    })
            },
        )
        .await;
    }

    // Its CRDs are established and its admission policies in force.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(admin.clone());
    for name in [
        "projects.trellis.dev",
        "workspaces.trellis.dev",
        "workspacetemplates.trellis.dev",
    ] {
        let crd = crds.get(name).await.expect("a Trellis CRD");
        let established = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(
            established
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True"),
            "{name}"
        );
    }
    let policies: Api<
        k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    > = Api::all(admin.clone());
    for name in [
        "trellis-workspace-pods",
        "trellis-workspace-services",
        "trellis-datashield-secrets",
    ] {
        let binding = policies
            .get(name)
            .await
            .expect("an admission policy binding");
        assert_eq!(
            binding
                .metadata
                .annotations
                .unwrap_or_default()
                .get("meta.helm.sh/release-name")
                .map(String::as_str),
            Some("trellis"),
            "{name} is the chart's"
        );
    }

    // What the operator's and the API's identities may not do.
    let operator = identity("TRELLIS_E2E_OPERATOR_KUBECONFIG").await;
    let api = identity("TRELLIS_E2E_API_KUBECONFIG").await;
    for who in [&operator, &api] {
        let secrets: Api<Secret> = Api::namespaced(who.clone(), CONTROL_PLANE_NAMESPACE);
        assert!(
            forbidden(secrets.list(&ListParams::default()).await),
            "reading Secrets"
        );
        // Both may read a DataSHIELD server's Secret by its name, and no other.
        assert!(
            forbidden(secrets.get("trellis-oidc").await),
            "reading a Secret by another name"
        );
        let roles: Api<ClusterRole> = Api::all(who.clone());
        let role: ClusterRole = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "trellis-escalation"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
        }))
        .expect("a role");
        assert!(
            forbidden(roles.create(&PostParams::default(), &role).await),
            "creating ClusterRoles"
        );
        let pods: Api<Pod> = Api::namespaced(who.clone(), "kube-system");
        assert!(
            forbidden(pods.delete("anything", &DeleteParams::default()).await),
            "deleting pods"
        );
    }
    let namespaces: Api<Namespace> = Api::all(api.clone());
    assert!(
        forbidden(
            namespaces
                .delete(CONTROL_PLANE_NAMESPACE, &DeleteParams::default())
                .await
        ),
        "the API deleting namespaces"
    );
    assert!(
        forbidden(namespaces.list(&ListParams::default()).await),
        "the API listing namespaces"
    );
    // The operator runs Deployments in project namespaces (DataSHIELD servers), so it watches
    // them everywhere, as it does StatefulSets; workloads it does not run stay out of its reach.
    let foreign: Api<k8s_openapi::api::apps::v1::DaemonSet> =
        Api::namespaced(operator.clone(), CONTROL_PLANE_NAMESPACE);
    assert!(
        forbidden(foreign.list(&ListParams::default()).await),
        "the operator reading DaemonSets"
    );
    // The API lists pods (to find a project's DataSHIELD server) but changes none.
    let pods: Api<Pod> = Api::all(api.clone());
    assert!(
        forbidden(pods.delete("anything", &DeleteParams::default()).await),
        "the API deleting pods"
    );
}
