//! Keycloak as the provider, as a new user would set it up (tests/keycloak/trellis-realm.json: no
//! `groups` scope, groups put in tokens by a mapper): browser sign-in through Keycloak's login
//! form, asking only for scopes Keycloak offers; bearer tokens from Keycloak, their groups mapped
//! to roles.

use reqwest::Method;
use serde_json::{Value, json};
use trellis_e2e::api::{ApiOptions, ApiServer, Database, call};
use trellis_e2e::keycloak::{self, Keycloak};
use trellis_e2e::{client, free_port, install_crds};

#[tokio::test]
async fn keycloak_sign_in_bearer_tokens_and_roles() {
    install_crds(&client().await).await;
    let port = free_port();
    let second_port = free_port();
    let keycloak = Keycloak::start(&[
        format!("http://127.0.0.1:{port}/auth/callback"),
        format!("http://127.0.0.1:{second_port}/auth/callback"),
    ])
    .await;
    eprintln!(
        "keycloak: ready in {:.1}s (JVM start, realm import)",
        keycloak.startup.as_secs_f64()
    );
    let api = ApiServer::start_for(
        (
            &keycloak.issuer,
            keycloak::CLIENT_ID,
            keycloak::CLIENT_SECRET,
        ),
        port,
        &Database::Sqlite,
        &ApiOptions::default(),
    )
    .await;

    // Sign-in asks only for scopes Keycloak's discovery document lists: not `groups`.
    let offered = keycloak.scopes_supported().await;
    assert!(!offered.iter().any(|s| s == "groups"), "{offered:?}");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let start = no_redirects
        .get(format!("{}/auth/login", api.url))
        .send()
        .await
        .expect("an answer");
    assert!(start.status().is_redirection(), "{}", start.status());
    let location =
        url::Url::parse(start.headers()["location"].to_str().expect("a location")).expect("a URL");
    let scope = location
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .expect("a scope parameter");
    let asked: Vec<&str> = scope.split(' ').collect();
    assert_eq!(asked, ["openid", "profile", "email"], "{scope}");
    assert!(
        asked.iter().all(|s| offered.iter().any(|o| o == s)),
        "{asked:?} within {offered:?}"
    );

    // Browser sign-in through Keycloak's form ends signed in, with the groups mapped to roles.
    for (user, roles) in [("admin", json!(["admin"])), ("alice", json!([]))] {
        let browser = trellis_e2e::api::Trellis::browser();
        let landed =
            keycloak::sign_in(&browser, &api.url, &keycloak.issuer, user, "/api/v1/me").await;
        assert_eq!(
            landed.url().path(),
            "/api/v1/me",
            "{user}: {}",
            landed.url()
        );
        let me: Value = landed.json().await.expect("me as JSON");
        assert_eq!(me["subject"], user, "{me}");
        assert_eq!(me["credential"], json!({"kind": "session"}), "{me}");
        assert_eq!(me["roles"], roles, "{me}");
        assert_eq!(me["email"], format!("{user}@trellis.example"), "{me}");
    }

    // Bearer tokens from Keycloak: accepted, and `trellis-admins` makes an admin.
    let http = reqwest::Client::new();
    let admin = keycloak.token("admin").await;
    let alice = keycloak.token("alice").await;
    let (status, me) = call(
        &http,
        &api.url,
        Method::GET,
        "/api/v1/me",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["subject"], "admin");
    assert_eq!(me["roles"], json!(["admin"]));
    let (status, records) = call(
        &http,
        &api.url,
        Method::GET,
        "/api/v1/audit?action=auth",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, 200, "{records}");
    assert!(
        records
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["action"] == "auth.login")),
        "the browser sign-ins are in the log: {records}"
    );
    let (status, problem) = call(
        &http,
        &api.url,
        Method::GET,
        "/api/v1/audit",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    let (status, _) = call(
        &http,
        &api.url,
        Method::GET,
        "/api/v1/audit",
        Some("not-a-token"),
        None,
    )
    .await;
    assert_eq!(status, 401);

    drop(api);

    // What a new user saw before: asked for `groups`, Keycloak refuses the sign-in with
    // `invalid_scope`, and the person gets a page that says so, not JSON.
    let api = ApiServer::start_for(
        (
            &keycloak.issuer,
            keycloak::CLIENT_ID,
            keycloak::CLIENT_SECRET,
        ),
        second_port,
        &Database::Sqlite,
        &ApiOptions {
            oidc_extra: Some("  scopes: [openid, profile, email, groups]\n".into()),
            ..ApiOptions::default()
        },
    )
    .await;
    let refused = trellis_e2e::api::Trellis::browser()
        .get(format!("{}/auth/login", api.url))
        .header("accept", "text/html")
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.url().path(), "/auth/callback", "{}", refused.url());
    assert_eq!(refused.status(), 401);
    let html = refused.text().await.expect("a page");
    assert!(html.contains("<h1>Sign-in failed</h1>"), "{html}");
    assert!(
        html.contains(r#"<dd id="provider-error"><code>invalid_scope</code></dd>"#),
        "{html}"
    );
    assert!(html.contains("scopes_supported"), "{html}");
    assert!(html.contains(&keycloak.issuer), "{html}");
}
