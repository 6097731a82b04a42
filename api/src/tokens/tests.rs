//! The check the DataSHIELD proxy calls, on SQLite (tests/e2e runs the same cases on PostgreSQL
//! too: `api_tokens::the_datashield_check_on_both_databases`).

use chrono::{Duration, Utc};

use super::repo::{self, NewToken};
use super::*;
use crate::identity::Credential;
use crate::identity::session::digest;
use crate::resources::{Member, MemberRole, Project, ProjectPhase, ProjectSpec, ProjectStatus};
use crate::store::{Store, timestamp};

fn project(name: &str, phase: ProjectPhase) -> Project {
    let spec: ProjectSpec = serde_json::from_value(serde_json::json!({
        "title": "t", "purpose": "p", "startDate": "2026-01-01", "endDate": "2099-01-01",
        "resources": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "maxWorkspaces": 2},
    }))
    .unwrap();
    let mut p = Project::new(name, spec);
    p.spec.members = vec![Member {
        subject: "ann".into(),
        role: MemberRole::Analyst,
    }];
    p.status = Some(ProjectStatus {
        phase: Some(phase),
        ..ProjectStatus::default()
    });
    p
}

async fn store_with(tokens: &[(&str, &str, &[&str], i64)]) -> (Store, Vec<String>) {
    let store = crate::notify::people::test_store().await;
    let mut conn = store.connection().await.unwrap();
    let mut secrets = Vec::new();
    for (id, owner, projects, days) in tokens {
        let secret = generate();
        let projects: Vec<String> = projects.iter().map(|p| p.to_string()).collect();
        repo::insert(
            &mut conn,
            &NewToken {
                id,
                token_hash: &digest(&secret),
                owner,
                owner_name: Some("Ann"),
                owner_email: Some("ann@x"),
                name: "laptop",
                projects: &projects,
                created_at: &timestamp(Utc::now()),
                expires_on: Utc::now().date_naive() + Duration::days(*days),
            },
        )
        .await
        .unwrap();
        secrets.push(secret);
    }
    (store, secrets)
}

#[test]
fn tokens_have_their_shape() {
    let token = generate();
    assert!(token.starts_with("trellis_pat_"), "{token}");
    assert_eq!(token.len(), "trellis_pat_".len() + 43);
    assert!(well_formed(&token));
    assert_ne!(generate(), token);
    for bad in [
        "",
        "trellis_pat_",
        "Bearer x",
        &token[..token.len() - 1],
        &format!("{token}x"),
        &token.replace("trellis_pat_", "trellis_pak_"),
        &format!("trellis_pat_{}", "+".repeat(43)),
    ] {
        assert!(!well_formed(bad), "{bad}");
    }
}

#[tokio::test]
async fn the_datashield_check_accepts_a_good_token_and_refuses_each_bad_one() {
    let (store, secrets) = store_with(&[
        ("good", "ann", &["demo"], 0),
        ("old", "ann", &["demo"], -1),
        ("gone", "ann", &["demo"], 30),
        ("bob", "bob", &["demo"], 30),
    ])
    .await;
    let tokens = AccessTokens::new(store.clone());
    // The test store has one connection: each step takes it and gives it back.
    let revoke = || async {
        let mut conn = store.connection().await.unwrap();
        repo::revoke(&mut conn, "gone", &timestamp(Utc::now()))
            .await
            .unwrap()
    };
    assert!(revoke().await);
    assert!(!revoke().await, "once");
    let last_used = || async {
        let mut conn = store.connection().await.unwrap();
        repo::get(&mut conn, "good")
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };
    let active = project("demo", ProjectPhase::Active);

    let who = tokens
        .check(&secrets[0], "demo", Some(&active))
        .await
        .unwrap();
    assert_eq!(who.subject, "ann");
    assert_eq!(
        (who.name.as_deref(), who.email.as_deref()),
        (Some("Ann"), Some("ann@x"))
    );
    assert!(who.roles.is_empty());
    assert_eq!(
        who.credential,
        Credential::AccessToken { id: "good".into() }
    );
    let used = last_used().await;
    assert!(used.is_some(), "the use is recorded");
    tokens
        .check(&secrets[0], "demo", Some(&active))
        .await
        .unwrap();
    assert_eq!(
        last_used().await,
        used,
        "not written again within the minute"
    );

    let refusal = |presented: String, project: &'static str, cached: Option<Project>| {
        let tokens = tokens.clone();
        async move {
            tokens
                .check(&presented, project, cached.as_ref())
                .await
                .unwrap_err()
        }
    };
    let unknown = generate();
    assert_eq!(
        refusal(unknown, "demo", Some(active.clone())).await,
        TokenRefusal::Unknown
    );
    assert_eq!(
        refusal("not a token".into(), "demo", Some(active.clone())).await,
        TokenRefusal::Unknown
    );
    assert_eq!(
        refusal(secrets[2].clone(), "demo", Some(active.clone())).await,
        TokenRefusal::Revoked
    );
    assert_eq!(
        refusal(secrets[1].clone(), "demo", Some(active.clone())).await,
        TokenRefusal::Expired(Utc::now().date_naive() - Duration::days(1))
    );
    assert_eq!(
        refusal(
            secrets[0].clone(),
            "other",
            Some(project("other", ProjectPhase::Active))
        )
        .await,
        TokenRefusal::NotForProject("other".into())
    );
    assert_eq!(
        refusal(secrets[0].clone(), "demo", None).await,
        TokenRefusal::ProjectUnknown("demo".into())
    );
    // The policy, as it stands at the call: bob is not a member; the project is suspended.
    let TokenRefusal::NotPermitted(why) =
        refusal(secrets[3].clone(), "demo", Some(active.clone())).await
    else {
        panic!("bob is not a member")
    };
    assert!(why.contains("not a member"), "{why}");
    let TokenRefusal::NotPermitted(why) = refusal(
        secrets[0].clone(),
        "demo",
        Some(project("demo", ProjectPhase::Suspended)),
    )
    .await
    else {
        panic!("suspended")
    };
    assert!(why.contains("Suspended"), "{why}");
    // Every refusal says why without the token in it.
    let texts: Vec<String> = [
        TokenRefusal::Unknown,
        TokenRefusal::Revoked,
        TokenRefusal::Expired(chrono::NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()),
        TokenRefusal::NotForProject("demo".into()),
        TokenRefusal::NotPermitted("the project is Suspended".into()),
        TokenRefusal::ProjectUnknown("demo".into()),
        TokenRefusal::Unavailable,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    for text in &texts {
        assert!(!text.is_empty() && !text.contains("trellis_pat_"), "{text}");
    }
    let mut distinct = texts.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        texts.len(),
        "each refusal reads differently"
    );
    assert_eq!(
        texts[2],
        "the access token expired at the end of 2026-01-31"
    );
    assert_eq!(
        texts[4], "the project is Suspended",
        "the policy's own words"
    );

    store.pool().close().await;
    assert_eq!(
        refusal(secrets[0].clone(), "demo", Some(active)).await,
        TokenRefusal::Unavailable
    );
}

#[test]
fn a_new_tokens_body_is_strict_and_takes_either_spelling_of_the_expiry() {
    use crate::http::json::parse;
    for body in [
        r#"{"name": "n", "projects": ["demo"], "expiresAt": "2027-01-31"}"#,
        r#"{"name": "n", "projects": ["demo"], "expires_at": "2027-01-31"}"#,
    ] {
        let parsed: service::NewTokenBody = parse(body.as_bytes()).unwrap();
        assert_eq!(parsed.expires_at.to_string(), "2027-01-31", "{body}");
    }
    let missing = parse::<service::NewTokenBody>(br#"{"name": "n", "projects": ["demo"]}"#);
    assert_eq!(missing.unwrap_err().status, 422);
    let unknown = parse::<service::NewTokenBody>(
        br#"{"name": "n", "projects": [], "expiresAt": "2027-01-31", "scope": "all"}"#,
    );
    assert_eq!(unknown.unwrap_err().status, 400);
    let projects = parse::<service::NewTokenBody>(br#"{"name": "n", "expiresAt": "2027-01-31"}"#)
        .unwrap()
        .projects;
    assert!(
        projects.is_empty(),
        "left out: the service says to choose one"
    );
}
