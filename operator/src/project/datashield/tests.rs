use k8s_openapi::api::apps::v1::DeploymentStatus;
use serde_json::{Value, json};

use super::*;
use crate::project::builders::guardrails;
use crate::project::tests::spec;
use crate::resources::DataShieldTable;

fn table(name: &str, file: &str, dictionary: Option<&str>) -> DataShieldTable {
    DataShieldTable {
        name: name.into(),
        request: "req-7".into(),
        file: file.into(),
        dictionary: dictionary.map(str::to_owned),
    }
}

fn datashield() -> DataShieldSpec {
    DataShieldSpec {
        enabled: true,
        tables: vec![
            table(
                "admissions",
                "admissions.csv",
                Some("admissions.dictionary.yaml"),
            ),
            table("outcomes", "outcomes.parquet", None),
        ],
        settings: DataShieldSettings::default(),
    }
}

fn project(datashield: Option<DataShieldSpec>) -> Project {
    let mut spec = spec();
    spec.datashield = datashield;
    let mut project = Project::new("hip", spec);
    project.metadata.uid = Some("5f0c7a4e-0000-4000-8000-000000000001".into());
    project
}

fn values() -> SecretValues {
    SecretValues::from_random([7; 36])
}

fn built(spec: &DataShieldSpec) -> DataShieldObjects {
    build(
        &project(Some(spec.clone())),
        spec,
        &values(),
        &OperatorConfig::default(),
    )
}

fn to_json<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap()
}

#[test]
fn every_object_is_the_projects_labelled_as_datashield_in_its_namespace() {
    let objects = built(&datashield());
    let all = [
        to_json(&objects.service_account),
        to_json(&objects.config_map),
        to_json(&objects.secret),
        to_json(&objects.service),
        to_json(&objects.deployment),
    ];
    for object in &all {
        let metadata = &object["metadata"];
        assert_eq!(metadata["name"], "trellis-datashield");
        assert_eq!(metadata["namespace"], "trellis-hip");
        assert_eq!(
            metadata["labels"],
            json!({"app.kubernetes.io/managed-by": "trellis-operator", "trellis.dev/project": "hip",
                   "trellis.dev/component": "datashield"})
        );
        assert_eq!(
            metadata["ownerReferences"],
            json!([{"apiVersion": "trellis.dev/v1alpha1", "kind": "Project", "name": "hip",
                    "uid": "5f0c7a4e-0000-4000-8000-000000000001", "controller": true}])
        );
    }
    assert_eq!(all[0]["automountServiceAccountToken"], false);
    assert_eq!(
        all[3]["spec"],
        json!({"type": "ClusterIP",
               "selector": {"trellis.dev/project": "hip", "trellis.dev/component": "datashield"},
               "ports": [{"name": "http", "port": 8095, "targetPort": 8095, "protocol": "TCP"}]})
    );
}

#[test]
fn the_profile_names_only_the_settings_the_project_sets_and_the_server_parses_it() {
    let default = profile_yaml(&DataShieldSettings::default());
    assert_eq!(default, "name: default\nsettings: {}\n");
    let parsed = trellis_datashield::profile::Profile::parse(&default).unwrap();
    assert_eq!(parsed.settings.nfilter_tab, 3.0, "dsBase's default");

    let stricter = DataShieldSettings {
        nfilter_tab: Some(5),
        nfilter_subset: Some(10),
        nfilter_glm: Some(0.2),
        nfilter_string: Some(60),
        nfilter_string_short: Some(10),
        nfilter_knn: Some(4),
        nfilter_noise: Some(0.5),
        nfilter_levels_density: Some(0.25),
        nfilter_levels_max: Some(30),
        looser_approval: None,
    };
    let yaml = profile_yaml(&stricter);
    assert_eq!(
        yaml,
        "name: default\nsettings:\n  nfilter.tab: 5\n  nfilter.subset: 10\n  nfilter.glm: 0.2\n  \
         nfilter.string: 60\n  nfilter.stringShort: 10\n  nfilter.kNN: 4\n  nfilter.noise: 0.5\n  \
         nfilter.levels.density: 0.25\n  nfilter.levels.max: 30\n"
    );
    let settings = trellis_datashield::profile::Profile::parse(&yaml)
        .unwrap()
        .settings;
    assert_eq!(
        (
            settings.nfilter_tab,
            settings.nfilter_subset,
            settings.nfilter_glm,
            settings.nfilter_string,
            settings.nfilter_string_short,
            settings.nfilter_knn,
            settings.nfilter_noise,
            settings.nfilter_levels_density,
            settings.nfilter_levels_max,
        ),
        (5.0, 10.0, 0.2, 60.0, 10.0, 4.0, 0.5, 0.25, 30.0)
    );
}

#[test]
fn the_tables_file_names_the_project_and_each_released_file() {
    let yaml = tables_yaml("hip", &datashield().tables);
    let parsed: Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(
        parsed,
        json!({"project": "hip", "tables": [
            {"name": "admissions", "request": "req-7", "file": "admissions.csv",
             "dictionary": "admissions.dictionary.yaml"},
            {"name": "outcomes", "request": "req-7", "file": "outcomes.parquet"},
        ]})
    );
    let config = to_json(&built(&datashield()).config_map);
    assert_eq!(config["data"]["tables.yaml"], yaml);
    assert_eq!(
        config["data"]["profile.yaml"],
        "name: default\nsettings: {}\n"
    );
}

#[test]
fn a_changed_table_or_setting_changes_the_pod_templates_config_hash() {
    let annotation = |spec: &DataShieldSpec| {
        to_json(&built(spec).deployment)["spec"]["template"]["metadata"]["annotations"]
            ["trellis.dev/config-sha256"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let base = annotation(&datashield());
    assert_eq!(base.len(), 64);
    assert!(base.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(base, annotation(&datashield()), "stable");
    let mut setting = datashield();
    setting.settings.nfilter_tab = Some(5);
    let mut tables = datashield();
    tables.tables.pop();
    assert_ne!(annotation(&setting), base);
    assert_ne!(annotation(&tables), base);
    assert_ne!(annotation(&setting), annotation(&tables));
    // Keys and values cannot run into each other.
    let a = BTreeMap::from([("ab".to_owned(), "c".to_owned())]);
    let b = BTreeMap::from([("a".to_owned(), "bc".to_owned())]);
    assert_ne!(config_hash(&a), config_hash(&b));
}

#[test]
fn the_secret_is_made_once_and_kept_as_it_is() {
    let fresh = values();
    assert_eq!(fresh.proxy_secret, "07".repeat(32));
    assert_eq!(fresh.proxy_secret.len(), 64);
    let seed: i32 = fresh.seed.parse().unwrap();
    assert!(seed > 0);
    // Every 4-byte draw gives a positive i32, even the extremes.
    for bytes in [[0u8; 36], [255u8; 36]] {
        let seed: i64 = SecretValues::from_random(bytes).seed.parse().unwrap();
        assert!((1..=i64::from(i32::MAX)).contains(&seed), "{seed}");
    }

    let secret = built(&datashield()).secret;
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    let other = SecretValues::from_random([9; 36]);
    assert_eq!(
        SecretValues::kept(Some(&secret), other.clone()),
        fresh,
        "an existing secret keeps its values"
    );
    assert_eq!(SecretValues::kept(None, other.clone()), other);

    // A missing or malformed key is made afresh; the other one is kept.
    let mut broken = secret.clone();
    let data = broken.data.as_mut().unwrap();
    data.insert("seed".into(), ByteString(b"-4".to_vec()));
    data.remove("proxy-secret");
    assert_eq!(SecretValues::kept(Some(&broken), other.clone()), other);
    let mut seed_only_bad = secret;
    seed_only_bad
        .data
        .as_mut()
        .unwrap()
        .insert("seed".into(), ByteString(b"not a number".to_vec()));
    assert_eq!(
        SecretValues::kept(Some(&seed_only_bad), other.clone()),
        SecretValues {
            proxy_secret: fresh.proxy_secret,
            seed: other.seed
        }
    );
}

#[test]
fn the_pod_is_hardened_and_only_the_init_container_holds_a_token() {
    let deployment = to_json(&built(&datashield()).deployment);
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["strategy"], json!({"type": "Recreate"}));
    let selector = json!({"trellis.dev/project": "hip", "trellis.dev/component": "datashield"});
    assert_eq!(spec["selector"]["matchLabels"], selector);
    assert_eq!(spec["template"]["metadata"]["labels"], selector);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "trellis-datashield");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["enableServiceLinks"], false);
    assert_eq!(
        pod["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
               "seccompProfile": {"type": "RuntimeDefault"}})
    );
    let hardened = json!({"allowPrivilegeEscalation": false, "privileged": false,
        "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true, "readOnlyRootFilesystem": true,
        "seccompProfile": {"type": "RuntimeDefault"}});
    let init = &pod["initContainers"][0];
    let server = &pod["containers"][0];
    assert_eq!(init["securityContext"], hardened);
    assert_eq!(server["securityContext"], hardened);

    assert_eq!(init["name"], "tables");
    assert_eq!(init["image"], "trellis/cli:0.1.0");
    assert_eq!(
        init["command"],
        json!([
            "trellis",
            "datashield",
            "tables",
            "--spec",
            "/etc/trellis-datashield/tables.yaml",
            "--to",
            "/data/tables"
        ])
    );
    assert_eq!(
        init["env"],
        json!([{"name": "TRELLIS_API_URL", "value": "http://trellis-api.trellis-system.svc:8443"},
               {"name": "TRELLIS_PROJECT", "value": "hip"},
               {"name": "TRELLIS_TOKEN_FILE", "value": "/var/run/secrets/trellis/token"}])
    );
    assert_eq!(
        init["volumeMounts"],
        json!([{"name": "tables", "mountPath": "/data/tables"},
               {"name": "config", "mountPath": "/etc/trellis-datashield", "readOnly": true},
               {"name": "trellis-token", "mountPath": "/var/run/secrets/trellis", "readOnly": true}])
    );

    assert_eq!(server["name"], "datashield");
    assert_eq!(server["image"], crate::config::DEFAULT_DATASHIELD_IMAGE);
    assert_eq!(
        server["command"],
        json!([
            "trellis-datashield",
            "serve",
            "--data",
            "/data/tables",
            "--profile",
            "/etc/trellis-datashield/profile.yaml",
            "--trusted-proxy-secret-file",
            "/var/run/secrets/trellis-datashield/proxy-secret",
            "--seed-file",
            "/var/run/secrets/trellis-datashield/seed",
            "--listen",
            "$(POD_IP):8095",
            "--log-json"
        ])
    );
    assert_eq!(
        server["env"],
        json!([{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}])
    );
    assert_eq!(
        server["volumeMounts"],
        json!([{"name": "tables", "mountPath": "/data/tables", "readOnly": true},
               {"name": "config", "mountPath": "/etc/trellis-datashield", "readOnly": true},
               {"name": "secret", "mountPath": "/var/run/secrets/trellis-datashield", "readOnly": true}])
    );
    assert!(
        !server.to_string().contains("trellis-token") && !server.to_string().contains("TOKEN"),
        "the server container has no Trellis token"
    );
    assert_eq!(
        server["ports"],
        json!([{"name": "http", "containerPort": 8095, "protocol": "TCP"}])
    );
    let probe = json!({"httpGet": {"path": "/healthz", "port": 8095}});
    assert_eq!(server["readinessProbe"], probe);
    assert_eq!(server["livenessProbe"], probe);
    let resources = json!({"requests": {"cpu": "250m", "memory": "512Mi"},
                           "limits": {"cpu": "1", "memory": "1Gi"}});
    assert_eq!(server["resources"], resources);
    assert_eq!(init["resources"], resources);
    assert_eq!(
        pod["volumes"],
        json!([
            {"name": "tables", "emptyDir": {}},
            {"name": "config", "configMap": {"name": "trellis-datashield"}},
            {"name": "secret", "secret": {"secretName": "trellis-datashield", "defaultMode": 0o440}},
            {"name": "trellis-token", "projected": {"defaultMode": 0o440, "sources": [
                {"serviceAccountToken": {"audience": "trellis", "expirationSeconds": 3600, "path": "token"}}]}},
        ])
    );
}

#[test]
fn network_policies_let_only_the_api_in_and_only_the_airlock_out() {
    let config = OperatorConfig {
        control_plane_namespace: "trellis".into(),
        gateway_pods: crate::config::Labels::from([("app".to_owned(), "api".to_owned())]),
        airlock_pods: crate::config::Labels::from([("app".to_owned(), "airlock".to_owned())]),
        airlock_port: 9443,
        ..OperatorConfig::default()
    };
    let with = guardrails(&project(Some(datashield())), true, &config);
    let without = guardrails(&project(None), true, &config);
    let names = |g: &crate::project::builders::Guardrails| {
        g.network_policies
            .iter()
            .map(|p| p.name_any())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&without).len(), 4);
    assert_eq!(
        names(&with)[4..],
        ["trellis-datashield-ingress", "trellis-datashield-egress"]
    );
    let mut disabled = datashield();
    disabled.enabled = false;
    assert_eq!(
        names(&guardrails(&project(Some(disabled)), true, &config)).len(),
        4
    );
    let specs: Vec<Value> = with.network_policies[4..]
        .iter()
        .map(|p| to_json(p)["spec"].clone())
        .collect();
    let pods = json!({"matchLabels": {"trellis.dev/component": "datashield"}});
    let trellis = json!({"matchLabels": {"kubernetes.io/metadata.name": "trellis"}});
    assert_eq!(
        specs,
        [
            json!({"podSelector": pods, "policyTypes": ["Ingress"], "ingress": [{
                "from": [{"namespaceSelector": trellis, "podSelector": {"matchLabels": {"app": "api"}}}],
                "ports": [{"protocol": "TCP", "port": 8095}]}]}),
            json!({"podSelector": pods, "policyTypes": ["Egress"], "egress": [{
                "to": [{"namespaceSelector": trellis, "podSelector": {"matchLabels": {"app": "airlock"}}}],
                "ports": [{"protocol": "TCP", "port": 9443}]}]}),
        ]
    );
}

#[test]
fn the_quota_and_limits_make_room_for_the_server_beside_the_workspaces() {
    let config = OperatorConfig::default();
    let hard = |project: &Project, allow| {
        to_json(&guardrails(project, allow, &config).quota)["spec"]["hard"].clone()
    };
    let with = hard(&project(Some(datashield())), true);
    assert_eq!(
        (
            &with["pods"],
            &with["services"],
            &with["persistentvolumeclaims"]
        ),
        (&json!("5"), &json!("5"), &json!("4"))
    );
    assert_eq!(
        (
            &with["requests.cpu"],
            &with["limits.cpu"],
            &with["requests.memory"],
            &with["limits.memory"]
        ),
        (
            &json!("8250m"),
            &json!("9"),
            &json!("33280Mi"),
            &json!("33Gi")
        ),
        "as the apiserver writes them"
    );
    assert_eq!(
        hard(&project(Some(datashield())), false)["pods"],
        "0",
        "suspended: nothing runs"
    );
    let without = hard(&project(None), true);
    assert_eq!(
        (&without["pods"], &without["requests.cpu"]),
        (&json!("4"), &json!("8"))
    );

    // A small project's per-container maximum still admits the server.
    let mut small = project(Some(datashield()));
    small.spec.resources.cpu = Quantity("500m".into());
    small.spec.resources.memory = Quantity("512Mi".into());
    let limits = to_json(&guardrails(&small, true, &config).limits)["spec"]["limits"][0].clone();
    assert_eq!(limits["max"], json!({"cpu": "1", "memory": "1Gi"}));
    let mut small_without = small.clone();
    small_without.spec.datashield = None;
    let limits =
        to_json(&guardrails(&small_without, true, &config).limits)["spec"]["limits"][0].clone();
    assert_eq!(limits["max"], json!({"cpu": "500m", "memory": "512Mi"}));
}

#[test]
fn the_server_runs_only_while_the_project_is_active_and_goes_when_disabled() {
    let enabled = datashield();
    let mut disabled = datashield();
    disabled.enabled = false;
    assert_eq!(plan(Some(&enabled), true), Plan::Running);
    assert_eq!(plan(Some(&enabled), false), Plan::Stopped);
    assert_eq!(plan(Some(&disabled), true), Plan::Absent);
    assert_eq!(plan(None, true), Plan::Absent);
}

fn deployment(generation: i64, observed: i64, updated: i32, available: i32) -> Deployment {
    let mut deployment = built(&datashield()).deployment;
    deployment.metadata.generation = Some(generation);
    deployment.status = Some(DeploymentStatus {
        observed_generation: Some(observed),
        updated_replicas: Some(updated),
        available_replicas: Some(available),
        ..DeploymentStatus::default()
    });
    deployment
}

#[test]
fn the_server_is_ready_when_an_updated_replica_of_the_current_spec_is_available() {
    assert!(deployment_ready(&deployment(2, 2, 1, 1)));
    assert!(
        !deployment_ready(&deployment(3, 2, 1, 1)),
        "spec not seen yet"
    );
    assert!(!deployment_ready(&deployment(2, 2, 0, 1)), "the old pod");
    assert!(!deployment_ready(&deployment(2, 2, 1, 0)), "not available");
    let mut fresh = deployment(1, 1, 1, 1);
    fresh.status = None;
    assert!(!deployment_ready(&fresh));
}

#[test]
fn the_status_lists_the_tables_when_ready_and_says_why_otherwise() {
    let spec = datashield();
    let ready = deployment(2, 2, 1, 1);
    let starting = deployment(2, 1, 1, 1);
    let (shown, check) = status(Some(&spec), ProjectPhase::Active, Some(&ready)).unwrap();
    assert_eq!(
        shown,
        DataShieldStatus {
            ready: true,
            tables: vec!["admissions".into(), "outcomes".into()],
            message: None
        }
    );
    assert_eq!(check, Check::new(true, "Running", "serving 2 table(s)"));
    for observed in [Some(&starting), None] {
        let (shown, check) = status(Some(&spec), ProjectPhase::Active, observed).unwrap();
        assert!(!shown.ready && shown.tables.is_empty());
        assert_eq!(shown.message.as_deref(), Some("starting"));
        assert_eq!((check.ok, check.reason.as_str()), (false, "Starting"));
    }
    for phase in [ProjectPhase::Suspended, ProjectPhase::Expired] {
        let (shown, check) = status(Some(&spec), phase, Some(&ready)).unwrap();
        assert!(!shown.ready);
        assert_eq!(
            shown.message,
            Some(format!("stopped: project {phase}")),
            "a Deployment still in the cache does not count"
        );
        assert_eq!((check.ok, check.reason.as_str()), (false, "Stopped"));
    }
    let mut disabled = spec;
    disabled.enabled = false;
    assert_eq!(
        status(Some(&disabled), ProjectPhase::Active, Some(&ready)),
        None
    );
    assert_eq!(status(None, ProjectPhase::Active, None), None);
}
