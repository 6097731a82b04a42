//! Personal access tokens end to end, on SQLite and PostgreSQL: made, listed and revoked over
//! HTTP with real Dex tokens (the 422s naming what is wrong, someone else's token not revocable,
//! the audit records without the token in them); and the check the DataSHIELD proxy calls,
//! `tokens::AccessTokens::check`, against both real databases with every refusal.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use trellis_api::identity::Credential;
use trellis_api::identity::session::digest;
use trellis_api::store::{Store, timestamp};
use trellis_api::tokens::repo::{self, NewToken};
use trellis_api::tokens::{AccessTokens, TokenRefusal, generate};
use trellis_e2e::api::{Database, Trellis};
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings};
use trellis_e2e::{
    client, create_active_project, ensure_namespace, install_crds, state_dir, unique_name,
};
use trellis_operator::resources::{Project, ProjectPhase, ProjectStatus};

fn spec(members: Value, end: &str) -> Value {
    json!({
        "title": "DataSHIELD", "purpose": "Token tests.",
        "approval": {"reference": "R-17", "approvedBy": "DAC", "approvedAt": "2026-01-05T00:00:00Z"},
        "startDate": "2026-01-05", "endDate": end, "members": members,
        "resources": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "maxWorkspaces": 1},
    })
}

#[tokio::test]
async fn tokens_are_made_listed_and_revoked_by_their_owner() {
    let kube = client().await;
    install_crds(&kube).await;
    ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    let ends = (Utc::now() + Duration::days(40)).date_naive();
    let project = create_active_project(
        &kube,
        &settings.run,
        "e2e-pat",
        spec(
            json!([{"subject": "ann", "role": "analyst"}, {"subject": "alice", "role": "researcher"}]),
            &ends.to_string(),
        ),
    )
    .await;
    let elsewhere = create_active_project(
        &kube,
        &settings.run,
        "e2e-pat",
        spec(json!([{"subject": "alice", "role": "owner"}]), "2099-12-31"),
    )
    .await;
    let today = Utc::now().date_naive();

    for database in Database::both().await {
        let trellis = Trellis::start(&database).await;
        let ann = trellis.dex.token("ann").await;
        let alice = trellis.dex.token("alice").await;
        let call = |method: Method, path: String, token: String, body: Option<Value>| {
            let trellis = &trellis;
            async move { trellis.call(method, &path, Some(&token), body).await }
        };
        let post = |body: Value| {
            call(
                Method::POST,
                "/api/v1/tokens".into(),
                ann.clone(),
                Some(body),
            )
        };

        // Each mistake is a 422 that says what is wrong.
        let good = json!({"name": "laptop", "projects": [project], "expiresAt": ends});
        let with = |field: &str, value: Value| {
            let mut body = good.clone();
            body[field] = value;
            body
        };
        for (body, says) in [
            (with("name", json!("")), "1–100 characters"),
            (with("name", json!("   ")), "1–100 characters"),
            (with("name", json!("x".repeat(101))), "1–100 characters"),
            (with("projects", json!([])), "at least one project"),
            (with("projects", json!([elsewhere])), "not a member"),
            (
                with("projects", json!(["no-such-project"])),
                "no project named",
            ),
            (
                with("expiresAt", json!(today - Duration::days(1))),
                "in the past",
            ),
            (
                with("expiresAt", json!(ends + Duration::days(1))),
                &format!("ends ({ends})"),
            ),
        ] {
            let (status, problem) = post(body.clone()).await;
            assert_eq!(status, 422, "{body}: {problem}");
            assert_eq!(problem["status"], 422);
            let detail = problem["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains(says),
                "{body}: `{detail}` should say `{says}`"
            );
        }
        let (status, problem) = post(json!({"name": "x", "projects": [project]})).await;
        assert_eq!(status, 422, "no expiry date: {problem}");
        let (status, problem) = post(with("colour", json!("red"))).await;
        assert_eq!(status, 400, "an unknown field: {problem}");

        // Made: the token once, in its shape.
        let (status, made) = post(with("name", json!("  R on my laptop "))).await;
        assert_eq!(status, 201, "{made}");
        let token = made["token"].as_str().expect("the token").to_string();
        assert!(
            token.starts_with("trellis_pat_") && token.len() == 12 + 43,
            "{token}"
        );
        assert_eq!(made["name"], "R on my laptop");
        assert_eq!(made["projects"], json!([project]));
        assert_eq!(made["expiresAt"], json!(ends));
        let id = made["id"].as_str().expect("an id").to_string();
        // Expiring today is allowed (it works to the end of the day).
        let (status, _) = post(with("expiresAt", json!(today))).await;
        assert_eq!(status, 201);

        let (status, list) = call(Method::GET, "/api/v1/tokens".into(), ann.clone(), None).await;
        assert_eq!(status, 200, "{list}");
        let list = list.as_array().expect("a list").clone();
        assert_eq!(list.len(), 2);
        let listed = list
            .iter()
            .find(|t| t["id"] == id.as_str())
            .expect("listed");
        assert_eq!(listed["name"], "R on my laptop");
        assert_eq!(listed["projects"], json!([project]));
        assert_eq!(
            (
                listed["revoked"].clone(),
                listed["expired"].clone(),
                listed["lastUsedAt"].clone()
            ),
            (json!(false), json!(false), Value::Null)
        );
        assert!(listed.get("token").is_none() && !listed.to_string().contains(&token));
        let (_, theirs) = call(Method::GET, "/api/v1/tokens".into(), alice.clone(), None).await;
        assert_eq!(theirs, json!([]), "alice sees none of ann's");

        // Not a way into the API.
        let (status, problem) = call(Method::GET, "/api/v1/me".into(), token.clone(), None).await;
        assert_eq!(status, 401, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("DataSHIELD"))
        );

        // Revoked by its owner only; someone else's is as unknown as a missing one.
        let path = format!("/api/v1/tokens/{id}");
        let (status, problem) = call(Method::DELETE, path.clone(), alice.clone(), None).await;
        assert_eq!(status, 404, "{problem}");
        let (status, _) = call(
            Method::DELETE,
            "/api/v1/tokens/nope".into(),
            ann.clone(),
            None,
        )
        .await;
        assert_eq!(status, 404);
        let (status, _) = call(Method::DELETE, path.clone(), ann.clone(), None).await;
        assert_eq!(status, 204);
        let (status, _) = call(Method::DELETE, path.clone(), ann.clone(), None).await;
        assert_eq!(status, 204, "revoking again changes nothing");
        let (_, list) = call(Method::GET, "/api/v1/tokens".into(), ann.clone(), None).await;
        let listed = list
            .as_array()
            .and_then(|l| l.iter().find(|t| t["id"] == id.as_str()))
            .expect("still listed");
        assert_eq!(listed["revoked"], true);
        assert!(listed["revokedAt"].is_string());

        // The audit log: each creation and revocation, the refused revocation, never the token.
        let records = trellis.api.audit_records();
        let of = |action: &str, outcome: &str| -> Vec<&Value> {
            records
                .iter()
                .filter(|r| r["action"] == action && r["outcome"] == outcome)
                .collect()
        };
        let created = of("token.create", "success");
        assert_eq!(created.len(), 2, "{created:?}");
        let first = created
            .iter()
            .find(|r| r["target"] == format!("token/{id}"))
            .expect("the creation");
        assert_eq!(first["actor"], "ann");
        assert_eq!(first["detail"]["name"], "R on my laptop");
        assert_eq!(first["detail"]["projects"], json!([project]));
        let revoked = of("token.revoke", "success");
        assert_eq!(revoked.len(), 1, "once: {revoked:?}");
        assert_eq!(revoked[0]["actor"], "ann");
        let refused = of("token.revoke", "denied");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0]["actor"], "alice");
        let everything = serde_json::to_string(&records).expect("records");
        assert!(!everything.contains(&token), "the token is never recorded");
        let (ok, out, err) = trellis.api.audit(&["verify"]);
        assert!(ok, "audit verify: {out} {err}");
    }
}

fn cached(name: &str, phase: ProjectPhase, members: Value) -> Project {
    let mut project: Project = serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "Project", "metadata": {"name": name},
        "spec": spec(members, "2099-12-31"),
    }))
    .expect("a project");
    project.status = Some(ProjectStatus {
        phase: Some(phase),
        ..ProjectStatus::default()
    });
    project
}

/// The check the DataSHIELD proxy calls, on each real database: a good token, then each way a
/// token is refused, then a database that is gone.
#[tokio::test]
async fn the_datashield_check_on_both_databases() {
    for database in Database::both().await {
        let url = match &database {
            Database::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                state_dir(&unique_name("pat")).join("trellis.db").display()
            ),
            Database::Postgres(url) => url.clone(),
        };
        let store = Store::open(&url, 4).await.expect("the store");
        let today = Utc::now().date_naive();
        let mut secrets = Vec::new();
        let mut conn = store.connection().await.expect("a connection");
        for (id, owner, days) in [
            ("good", "ann", 0),
            ("old", "ann", -1),
            ("gone", "ann", 30),
            ("bobs", "bob", 30),
        ] {
            let secret = generate();
            repo::insert(
                &mut conn,
                &NewToken {
                    id,
                    token_hash: &digest(&secret),
                    owner,
                    owner_name: Some("Ann Analyst"),
                    owner_email: Some("ann@trellis.example"),
                    name: "laptop",
                    projects: &["demo".to_string()],
                    created_at: &timestamp(Utc::now()),
                    expires_on: today + Duration::days(days),
                },
            )
            .await
            .expect("a token");
            secrets.push(secret);
        }
        assert!(
            repo::revoke(&mut conn, "gone", &timestamp(Utc::now()))
                .await
                .expect("revoked")
        );
        drop(conn);
        let members = json!([{"subject": "ann", "role": "analyst"}]);
        let active = cached("demo", ProjectPhase::Active, members.clone());
        let tokens = AccessTokens::new(store.clone());

        let who = tokens
            .check(&secrets[0], "demo", Some(&active))
            .await
            .unwrap_or_else(|e| panic!("{database:?}: {e}"));
        assert_eq!(who.subject, "ann");
        assert_eq!(who.email.as_deref(), Some("ann@trellis.example"));
        assert!(who.roles.is_empty());
        assert_eq!(
            who.credential,
            Credential::AccessToken { id: "good".into() }
        );
        let mut conn = store.connection().await.expect("a connection");
        let used = repo::get(&mut conn, "good")
            .await
            .expect("read")
            .expect("there");
        assert!(
            used.last_used_at.is_some(),
            "{database:?}: the use is recorded"
        );
        drop(conn);

        let refused = |secret: &str, project: &str, cached: Option<&Project>| {
            let (tokens, secret, project, cached) = (
                tokens.clone(),
                secret.to_string(),
                project.to_string(),
                cached.cloned(),
            );
            async move {
                tokens
                    .check(&secret, &project, cached.as_ref())
                    .await
                    .expect_err("refused")
            }
        };
        assert_eq!(
            refused(&generate(), "demo", Some(&active)).await,
            TokenRefusal::Unknown
        );
        assert_eq!(
            refused("trellis_pat_short", "demo", Some(&active)).await,
            TokenRefusal::Unknown
        );
        assert_eq!(
            refused(&secrets[2], "demo", Some(&active)).await,
            TokenRefusal::Revoked
        );
        assert_eq!(
            refused(&secrets[1], "demo", Some(&active)).await,
            TokenRefusal::Expired(today - Duration::days(1))
        );
        let other = cached("other", ProjectPhase::Active, members.clone());
        assert_eq!(
            refused(&secrets[0], "other", Some(&other)).await,
            TokenRefusal::NotForProject("other".into())
        );
        assert_eq!(
            refused(&secrets[0], "demo", None).await,
            TokenRefusal::ProjectUnknown("demo".into())
        );
        let not_member = refused(&secrets[3], "demo", Some(&active)).await;
        assert!(
            matches!(&not_member, TokenRefusal::NotPermitted(why) if why.contains("not a member")),
            "{not_member:?}"
        );
        let suspended = cached("demo", ProjectPhase::Suspended, members);
        let inactive = refused(&secrets[0], "demo", Some(&suspended)).await;
        assert!(
            matches!(&inactive, TokenRefusal::NotPermitted(why) if why.contains("Suspended")),
            "{inactive:?}"
        );
        store.pool().close().await;
        assert_eq!(
            refused(&secrets[0], "demo", Some(&active)).await,
            TokenRefusal::Unavailable,
            "{database:?}"
        );
    }
}
