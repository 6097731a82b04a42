//! The authorization matrix, end to end: every endpoint × every kind of caller (admin, project
//! owner, researcher member, analyst member, output checker member and non-member, data steward,
//! a workspace's own token, a personal access token, anonymous), with real Dex tokens, the real API binary, the real operator making
//! the project Active, and a real projected service-account token bound to a workspace pod.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use reqwest::Method;
use serde_json::{Value, json};
use trellis_e2e::api::{Database, Trellis};
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings, RUN_LABEL};
use trellis_e2e::{
    client, create_template, ensure_namespace, install_crds, unique_name, wait_for, workspace_token,
};
use trellis_operator::resources::{Project, ProjectPhase};

/// Callers by name, each with the bearer token it presents (`None`: anonymous).
struct Callers {
    tokens: BTreeMap<&'static str, Option<String>>,
}

impl Callers {
    fn token(&self, who: &str) -> Option<&str> {
        self.tokens
            .get(who)
            .unwrap_or_else(|| panic!("no caller {who}"))
            .as_deref()
    }
}

/// Tallies what the audit log must contain afterwards.
#[derive(Default)]
struct Expected {
    denied: usize,
    changes: usize,
}

async fn check(
    trellis: &Trellis,
    callers: &Callers,
    expected: &mut Expected,
    method: Method,
    path: &str,
    body: Option<Value>,
    cells: &[(&str, u16)],
) -> BTreeMap<String, Value> {
    let mut answers = BTreeMap::new();
    for (who, status) in cells {
        let (got, answer) = trellis
            .call(method.clone(), path, callers.token(who), body.clone())
            .await;
        assert_eq!(got, *status, "{who}: {method} {path} → {got} {answer}");
        if got == 403 {
            expected.denied += 1;
            assert_eq!(answer["status"], 403, "a problem document: {answer}");
            assert!(
                answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
                "{answer}"
            );
        }
        if method != Method::GET && (200..300).contains(&got) {
            expected.changes += 1;
        }
        answers.insert(who.to_string(), answer);
    }
    answers
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item["name"].as_str().expect("a name").to_string())
        .collect()
}

#[tokio::test]
async fn every_endpoint_for_every_kind_of_caller() {
    let client = client().await;
    install_crds(&client).await;
    ensure_namespace(&client, "trellis-system").await;
    // Leases live in Trellis\'s namespace, where the operator\'s Role allows them.
    ensure_namespace(&client, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    let template = create_template(&client).await;
    let trellis = Trellis::start(&Database::Sqlite).await;
    let mut tokens = BTreeMap::new();
    for user in ["admin", "alice", "ann", "bob", "carol", "dan", "steward"] {
        tokens.insert(user, Some(trellis.dex.token(user).await));
    }
    tokens.insert("anonymous", None);
    let mut callers = Callers { tokens };
    let mut expected = Expected::default();
    let e = &mut expected;
    let t = &trellis;

    let p = unique_name("e2e-api");
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).date_naive();
    let members = json!([
        {"subject": "bob", "role": "owner"},
        {"subject": "alice", "role": "researcher"},
        {"subject": "dan", "role": "researcher"},
        {"subject": "ann", "role": "analyst"},
    ]);
    let create = json!({
        "name": p, "title": "Matrix", "purpose": "Authorization tests.",
        "startDate": yesterday, "endDate": "2099-12-31", "members": members,
        "resources": {"cpu": "8", "memory": "16Gi", "storage": "50Gi", "maxWorkspaces": 3},
        "templates": [template],
    });
    let project_path = format!("/api/v1/projects/{p}");
    check(
        t,
        &callers,
        e,
        Method::POST,
        "/api/v1/projects",
        Some(create.clone()),
        &[
            ("alice", 403),
            ("ann", 403),
            ("bob", 403),
            ("dan", 403),
            ("carol", 403),
            ("steward", 403),
            ("anonymous", 401),
            ("admin", 201),
        ],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::POST,
        "/api/v1/projects",
        Some(create),
        &[("admin", 409)],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::GET,
        &project_path,
        None,
        &[
            ("carol", 403),
            ("steward", 403),
            ("anonymous", 401),
            ("admin", 200),
            ("bob", 200),
            ("alice", 200),
            ("dan", 200),
            ("ann", 200),
        ],
    )
    .await;
    let lists = check(
        t,
        &callers,
        e,
        Method::GET,
        "/api/v1/projects",
        None,
        &[
            ("admin", 200),
            ("alice", 200),
            ("ann", 200),
            ("carol", 200),
            ("steward", 200),
            ("anonymous", 401),
        ],
    )
    .await;
    assert!(names(&lists["admin"]).contains(&p));
    assert!(names(&lists["alice"]).contains(&p));
    assert!(
        names(&lists["ann"]).contains(&p),
        "an analyst sees her project"
    );
    assert!(!names(&lists["carol"]).contains(&p) && !names(&lists["steward"]).contains(&p));

    let approve = format!("{project_path}/approve");
    check(
        t,
        &callers,
        e,
        Method::POST,
        &approve,
        Some(json!({"reference": "DAC-2026-17"})),
        &[
            ("alice", 403),
            ("ann", 403),
            ("bob", 403),
            ("dan", 403),
            ("carol", 403),
            ("steward", 403),
            ("anonymous", 401),
            ("admin", 200),
        ],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::POST,
        &approve,
        Some(json!({"reference": "again"})),
        &[("admin", 409)],
    )
    .await;

    // Hand the project to this test's operator, which makes it Active.
    let projects: Api<Project> = Api::all(client.clone());
    projects
        .patch(
            &p,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {RUN_LABEL: settings.run}}})),
        )
        .await
        .expect("labelling the project");
    wait_for(
        &projects,
        &p,
        Duration::from_secs(30),
        "Active",
        |o: Option<&Project>| {
            o.and_then(|p| p.status.as_ref()).and_then(|s| s.phase) == Some(ProjectPhase::Active)
        },
    )
    .await;

    check(
        t,
        &callers,
        e,
        Method::PUT,
        &format!("{project_path}/members"),
        Some(json!({"members": members})),
        &[
            ("alice", 403),
            ("ann", 403),
            ("bob", 403),
            ("dan", 403),
            ("carol", 403),
            ("steward", 403),
            ("anonymous", 401),
            ("admin", 200),
        ],
    )
    .await;

    let workspaces = format!("{project_path}/workspaces");
    let ws = |name: &str| json!({"name": name, "template": template});
    check(
        t,
        &callers,
        e,
        Method::POST,
        &workspaces,
        Some(ws("wa")),
        &[
            ("ann", 403),
            ("carol", 403),
            ("steward", 403),
            ("admin", 403),
            ("anonymous", 401),
            ("alice", 201),
        ],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::POST,
        &workspaces,
        Some(ws("wb")),
        &[("bob", 201)],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::POST,
        &workspaces,
        Some(ws("wd")),
        &[("dan", 201)],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::POST,
        &workspaces,
        Some(ws("wx")),
        &[("alice", 409)],
    )
    .await;

    // The workspace's own credential acts as alice, within this project only.
    callers.tokens.insert(
        "alice-workspace",
        Some(workspace_token(&client, &p, "wa").await),
    );
    let me = check(
        t,
        &callers,
        e,
        Method::GET,
        "/api/v1/me",
        None,
        &[("alice-workspace", 200), ("alice", 200), ("anonymous", 401)],
    )
    .await;
    assert_eq!(me["alice-workspace"]["subject"], "alice");
    assert_eq!(
        me["alice-workspace"]["credential"],
        json!({"kind": "workspace", "project": p, "workspace": "wa"})
    );
    assert_eq!(me["alice-workspace"]["roles"], json!([]));
    assert_eq!(me["alice"]["credential"], json!({"kind": "bearer"}));
    let memberships = me["alice"]["projects"].as_array().expect("memberships");
    assert!(
        memberships.contains(&json!({"project": p, "subject": "alice", "role": "researcher"})),
        "{memberships:?}"
    );
    assert_eq!(
        me["alice-workspace"]["projects"],
        json!([{"project": p, "subject": "alice", "role": "researcher"}])
    );

    // Another project alice belongs to: her person sees it, her workspace's credential does not.
    let other = unique_name("e2e-api");
    let other_body = json!({
        "name": other, "title": "Other", "purpose": "p", "startDate": yesterday, "endDate": "2099-12-31",
        "members": [{"subject": "alice", "role": "owner"}],
        "resources": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "maxWorkspaces": 1},
    });
    check(
        t,
        &callers,
        e,
        Method::POST,
        "/api/v1/projects",
        Some(other_body.clone()),
        &[("alice-workspace", 403), ("admin", 201)],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::GET,
        &format!("/api/v1/projects/{other}"),
        None,
        &[("alice-workspace", 403), ("alice", 200)],
    )
    .await;
    let listed = check(
        t,
        &callers,
        e,
        Method::GET,
        "/api/v1/projects",
        None,
        &[("alice-workspace", 200), ("alice", 200)],
    )
    .await;
    assert_eq!(names(&listed["alice-workspace"]), vec![p.clone()]);
    assert!(names(&listed["alice"]).contains(&other));

    let lists = check(
        t,
        &callers,
        e,
        Method::GET,
        &workspaces,
        None,
        &[
            ("carol", 403),
            ("steward", 403),
            ("anonymous", 401),
            ("alice", 200),
            ("bob", 200),
            ("dan", 200),
            ("admin", 200),
            ("alice-workspace", 200),
            ("ann", 200),
        ],
    )
    .await;
    assert_eq!(names(&lists["alice"]), vec!["wa"]);
    assert!(
        names(&lists["ann"]).is_empty(),
        "an analyst has no workspaces"
    );
    assert_eq!(names(&lists["dan"]), vec!["wd"]);
    assert_eq!(names(&lists["bob"]), vec!["wa", "wb", "wd"]);
    assert_eq!(names(&lists["admin"]), vec!["wa", "wb", "wd"]);

    let wa = format!("{workspaces}/wa");
    check(
        t,
        &callers,
        e,
        Method::GET,
        &wa,
        None,
        &[
            ("dan", 403),
            ("ann", 403),
            ("carol", 403),
            ("steward", 403),
            ("anonymous", 401),
            ("alice", 200),
            ("bob", 200),
            ("admin", 200),
            ("alice-workspace", 200),
        ],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::POST,
        &format!("{wa}/stop"),
        None,
        &[
            ("bob", 403),
            ("dan", 403),
            ("carol", 403),
            ("steward", 403),
            ("anonymous", 401),
            ("alice", 200),
        ],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::POST,
        &format!("{wa}/start"),
        None,
        &[
            ("admin", 403),
            ("ann", 403),
            ("bob", 403),
            ("dan", 403),
            ("carol", 403),
            ("steward", 403),
            ("anonymous", 401),
            ("alice", 200),
        ],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::POST,
        &format!("{wa}/stop"),
        None,
        &[("admin", 200)],
    )
    .await;
    let started = check(
        t,
        &callers,
        e,
        Method::POST,
        &format!("{wa}/start"),
        None,
        &[("alice-workspace", 200)],
    )
    .await;
    assert_eq!(started["alice-workspace"]["running"], true);
    check(
        t,
        &callers,
        e,
        Method::DELETE,
        &format!("{workspaces}/wd"),
        None,
        &[
            ("alice", 403),
            ("bob", 403),
            ("carol", 403),
            ("steward", 403),
            ("anonymous", 401),
            ("dan", 204),
        ],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::DELETE,
        &format!("{workspaces}/wb"),
        None,
        &[("admin", 204)],
    )
    .await;
    check(
        t,
        &callers,
        e,
        Method::GET,
        &format!("{workspaces}/nope"),
        None,
        &[("alice", 404)],
    )
    .await;

    // The airlock is not for analysts, in either direction.
    let airlock = format!("{project_path}/airlock");
    for direction in ["egress", "ingress"] {
        check(
            t,
            &callers,
            e,
            Method::POST,
            &airlock,
            Some(json!({"direction": direction, "title": "Counts"})),
            &[("ann", 403)],
        )
        .await;
    }
    check(
        t,
        &callers,
        e,
        Method::GET,
        &airlock,
        None,
        &[("ann", 403), ("carol", 403), ("alice", 200), ("bob", 200)],
    )
    .await;

    // Personal access tokens for DataSHIELD: members of every role make them for the project;
    // others may not name it (422, not audited: a bad request, not a refused one); a workspace's
    // credential makes none.
    let token_body = json!({"name": "laptop", "projects": [p], "expiresAt": "2099-12-31"});
    let made = check(
        t,
        &callers,
        e,
        Method::POST,
        "/api/v1/tokens",
        Some(token_body),
        &[
            ("alice-workspace", 403),
            ("anonymous", 401),
            ("admin", 422),
            ("carol", 422),
            ("steward", 422),
            ("ann", 201),
            ("alice", 201),
            ("bob", 201),
            ("dan", 201),
        ],
    )
    .await;
    let ann_token = made["ann"]["token"]
        .as_str()
        .expect("the token")
        .to_string();
    assert!(ann_token.starts_with("trellis_pat_"), "{ann_token}");
    assert_eq!(made["ann"]["projects"], json!([p]));
    assert!(
        made["admin"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&p) && d.contains("not a member")),
        "{}",
        made["admin"]
    );
    let ann_id = made["ann"]["id"].as_str().expect("an id").to_string();
    let lists = check(
        t,
        &callers,
        e,
        Method::GET,
        "/api/v1/tokens",
        None,
        &[
            ("alice-workspace", 403),
            ("anonymous", 401),
            ("ann", 200),
            ("admin", 200),
        ],
    )
    .await;
    assert_eq!(lists["ann"][0]["id"], ann_id.as_str());
    assert_eq!(
        lists["ann"].as_array().map(Vec::len),
        Some(1),
        "her own only"
    );
    assert!(lists["ann"][0].get("token").is_none(), "never listed again");
    assert_eq!(
        lists["admin"],
        json!([]),
        "an admin lists their own tokens only"
    );
    // The token is for DataSHIELD only: every other endpoint refuses it.
    callers.tokens.insert("ann-token", Some(ann_token));
    for path in ["/api/v1/me", "/api/v1/projects", "/api/v1/tokens"] {
        check(
            t,
            &callers,
            e,
            Method::GET,
            path,
            None,
            &[("ann-token", 401)],
        )
        .await;
    }
    // Someone else's token is as unknown as a missing one; those refusals are audited.
    let revoke = format!("/api/v1/tokens/{ann_id}");
    check(
        t,
        &callers,
        e,
        Method::DELETE,
        &revoke,
        None,
        &[
            ("ann-token", 401),
            ("anonymous", 401),
            ("alice-workspace", 403),
            ("bob", 404),
            ("admin", 404),
            ("ann", 204),
        ],
    )
    .await;
    e.denied += 2;

    for verb in ["suspend", "resume"] {
        check(
            t,
            &callers,
            e,
            Method::POST,
            &format!("{project_path}/{verb}"),
            None,
            &[
                ("alice", 403),
                ("bob", 403),
                ("dan", 403),
                ("carol", 403),
                ("steward", 403),
                ("alice-workspace", 403),
                ("ann", 403),
                ("anonymous", 401),
                ("admin", 200),
            ],
        )
        .await;
    }
    let closed = check(
        t,
        &callers,
        e,
        Method::POST,
        &format!("{project_path}/close"),
        None,
        &[
            ("alice", 403),
            ("bob", 403),
            ("dan", 403),
            ("carol", 403),
            ("steward", 403),
            ("alice-workspace", 403),
            ("ann", 403),
            ("anonymous", 401),
            ("admin", 200),
        ],
    )
    .await;
    assert_eq!(closed["admin"]["closed"], true);
    check(
        t,
        &callers,
        e,
        Method::POST,
        &format!("{project_path}/suspend"),
        None,
        &[("admin", 409)],
    )
    .await;

    // The audit log: admins only, filtered, exported as JSON Lines.
    let everyone_but_admin = [
        ("alice", 403),
        ("bob", 403),
        ("dan", 403),
        ("carol", 403),
        ("steward", 403),
        ("alice-workspace", 403),
        ("ann", 403),
        ("anonymous", 401),
    ];
    let mut cells = everyone_but_admin.to_vec();
    cells.push(("admin", 200));
    let found = check(
        t,
        &callers,
        e,
        Method::GET,
        &format!("/api/v1/audit?project={p}&action=project"),
        None,
        &cells,
    )
    .await;
    let found = found["admin"].as_array().expect("records");
    assert!(
        found.iter().any(|r| r["action"] == "project.create")
            && found.iter().all(|r| r["project"] == p.as_str()
                && r["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("project."))),
        "{found:?}"
    );
    assert!(
        found
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() > w[1]["seq"].as_i64()),
        "newest first"
    );
    for bad in [
        "outcome=maybe",
        "limit=0",
        "limit=501",
        "before=x",
        "colour=red",
    ] {
        let (status, problem) = t
            .call(
                Method::GET,
                &format!("/api/v1/audit?{bad}"),
                callers.token("admin"),
                None,
            )
            .await;
        assert_eq!(status, 400, "{bad}: {problem}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let exported = check(
        t,
        &callers,
        e,
        Method::GET,
        &format!("/api/v1/audit/export?project={p}"),
        None,
        &cells,
    )
    .await;
    // The export itself is recorded.
    e.changes += 1;
    let lines: Vec<Value> = exported["admin"]
        .as_str()
        .expect("JSON Lines, not one JSON document")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a record"))
        .collect();
    assert!(
        lines.len() > found.len(),
        "every record of the project, not one page"
    );
    assert!(lines.iter().all(|r| r["project"] == p.as_str()));

    // Every denial and every change left exactly one record; the chain is intact.
    let records = trellis.api.audit_records();
    let count = |outcome: &str| records.iter().filter(|r| r["outcome"] == outcome).count();
    assert_eq!(count("denied"), expected.denied, "denied records");
    assert_eq!(count("success"), expected.changes, "change records");
    let creates: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "workspace.create")
        .collect();
    assert!(creates.iter().all(|r| r["project"] == p.as_str()));
    assert_eq!(
        creates.iter().filter(|r| r["outcome"] == "success").count(),
        3
    );
    let denial = records
        .iter()
        .find(|r| r["outcome"] == "denied" && r["actor"] == "carol")
        .expect("carol's denial");
    assert_eq!(denial["roles"], json!(["output-checker"]));
    let (ok, out, err) = trellis.api.audit(&["verify"]);
    assert!(ok, "audit verify: {out} {err}");
}
