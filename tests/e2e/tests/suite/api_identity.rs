//! Identity end to end: bearer tokens from a real Dex (good, tampered, for another audience,
//! from another issuer, expired, after a key rotation) and the browser sign-in (authorization
//! code + PKCE) driven over HTTP, on SQLite and PostgreSQL.

use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use trellis_e2e::api::{ApiOptions, Database, Trellis};
use trellis_e2e::identity::{Dex, DexOptions, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET};
use trellis_e2e::{client, install_crds};

fn b64(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(value).expect("JSON"))
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64"),
    )
    .expect("JSON")
}

async fn me(trellis: &Trellis, token: &str) -> (u16, Value) {
    trellis
        .call(Method::GET, "/api/v1/me", Some(token), None)
        .await
}

fn failures(trellis: &Trellis) -> Vec<String> {
    trellis
        .api
        .audit_records()
        .iter()
        .filter(|r| r["outcome"] == "failure")
        .map(|r| {
            format!(
                "{}:{}",
                r["action"].as_str().unwrap_or(""),
                r["detail"]["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn bearer_tokens_are_validated_against_the_provider() {
    install_crds(&client().await).await;
    let trellis = Trellis::start(&Database::Sqlite).await;
    let token = trellis.dex.token("carol").await;
    let (status, body) = me(&trellis, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], "carol");
    assert_eq!(body["roles"], json!(["output-checker"]));
    assert_eq!(body["name"], "Carol");

    let parts: Vec<&str> = token.split('.').collect();
    // The same claims, re-signed by nobody: a flipped signature byte.
    let mut signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[2])
        .expect("signature");
    signature[10] ^= 0x55;
    let tampered_signature = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
    );
    // Claims changed under the original signature (carol makes herself an admin).
    let mut claims = decode(parts[1]);
    claims["groups"] = json!(["trellis-admins"]);
    let tampered_claims = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    // `alg: none` with the real key id and claims, and no signature.
    let mut header = decode(parts[0]);
    header["alg"] = json!("none");
    let unsigned = format!("{}.{}.", b64(&header), parts[1]);
    let other_audience = trellis
        .dex
        .token_as("carol", OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
        .await;
    // A real token from another provider (its own issuer and keys).
    let stranger = Dex::start(DexOptions::default()).await;
    let foreign = stranger.token("carol").await;

    for (what, bad, detail) in [
        (
            "flipped signature",
            tampered_signature.as_str(),
            "signature is invalid",
        ),
        (
            "changed claims",
            tampered_claims.as_str(),
            "signature is invalid",
        ),
        ("alg none", unsigned.as_str(), "algorithm is not accepted"),
        (
            "other audience",
            other_audience.as_str(),
            "another audience",
        ),
        (
            "another issuer",
            foreign.as_str(),
            "not accepted by the cluster",
        ),
        ("garbage", "not-a-token", "not a well-formed JWT"),
    ] {
        let (status, body) = me(&trellis, bad).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(detail),
            "{what}: {body}"
        );
    }
    let refused = failures(&trellis);
    for reason in [
        "auth.bearer:signature",
        "auth.bearer:algorithm",
        "auth.bearer:audience",
        "auth.workspace-token:workspace-token",
        "auth.bearer:malformed",
    ] {
        assert!(
            refused.iter().any(|r| r == reason),
            "{reason} not audited in {refused:?}"
        );
    }
    assert_eq!(refused.len(), 6, "{refused:?}");
    let (status, _) = trellis.call(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn expired_tokens_and_rotated_keys() {
    install_crds(&client().await).await;
    let trellis = Trellis::start_with(
        &Database::Sqlite,
        DexOptions {
            token_lifetime: Some("3s".into()),
            ..Default::default()
        },
        ApiOptions {
            leeway: Some("0s".into()),
            ..Default::default()
        },
    )
    .await;
    let early = trellis.dex.token("alice").await;
    assert_eq!(me(&trellis, &early).await.0, 200);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (status, body) = me(&trellis, &early).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{body}"
    );

    // A restarted in-memory Dex signs with a new key the API has never seen: it fetches the
    // provider's keys again and accepts the token; tokens signed by the retired key now fail.
    let Trellis { dex, api, http } = trellis;
    let before_rotation = dex.token("alice").await;
    let dex = dex.restart().await;
    let trellis = Trellis { dex, api, http };
    let after_rotation = trellis.dex.token("alice").await;
    let kid = |t: &str| decode(t.split('.').next().unwrap_or_default())["kid"].clone();
    assert_ne!(
        kid(&before_rotation),
        kid(&after_rotation),
        "Dex should have a new key"
    );
    let (status, body) = me(&trellis, &after_rotation).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = me(&trellis, &before_rotation).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("key the provider does not publish"),
        "{body}"
    );
}

#[tokio::test]
async fn browser_sign_in_with_authorization_code_and_pkce() {
    install_crds(&client().await).await;
    for database in Database::both().await {
        let trellis = Trellis::start(&database).await;
        let browser = Trellis::browser();
        let landed = trellis.sign_in(&browser, "admin", "/api/v1/me").await;
        assert_eq!(landed.url().path(), "/api/v1/me", "{database:?}");
        let me: Value = landed.json().await.expect("me as JSON");
        assert_eq!(me["subject"], "admin");
        assert_eq!(me["credential"], json!({"kind": "session"}));
        assert_eq!(me["roles"], json!(["admin"]));
        let csrf = me["csrfToken"]
            .as_str()
            .expect("a CSRF token for the session")
            .to_string();

        // Unsafe requests with a session need the CSRF token.
        let body = json!({"reference": "x"});
        let refused = browser
            .post(format!("{}/api/v1/projects/nope/approve", trellis.api.url))
            .json(&body)
            .send()
            .await
            .expect("an answer");
        assert_eq!(refused.status(), 403);
        let with_token = browser
            .post(format!("{}/api/v1/projects/nope/approve", trellis.api.url))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
            .await
            .expect("an answer");
        assert_eq!(
            with_token.status(),
            404,
            "past CSRF, the project does not exist"
        );

        // The home page shows the session; signing out needs the form's CSRF token.
        let home = browser
            .get(&trellis.api.url)
            .send()
            .await
            .expect("home")
            .text()
            .await
            .expect("html");
        assert!(
            home.contains("<span id=\"signed-in-as\">Trellis Admin</span>")
                && home.contains(&format!("name=\"csrf\" value=\"{csrf}\"")),
            "{home}"
        );
        let forged = browser
            .post(format!("{}/auth/logout", trellis.api.url))
            .form(&[("csrf", "forged")])
            .send()
            .await
            .expect("an answer");
        assert_eq!(forged.status(), 403);
        let out = browser
            .post(format!("{}/auth/logout", trellis.api.url))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .expect("signed out");
        assert!(out.status().is_success());
        let after = browser
            .get(format!("{}/api/v1/me", trellis.api.url))
            .send()
            .await
            .expect("an answer");
        assert_eq!(after.status(), 401);

        // A callback this browser did not start, or one replayed, signs nobody in.
        let stranger = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        let forged_callback = stranger
            .get(format!(
                "{}/auth/callback?code=abc&state=def",
                trellis.api.url
            ))
            .send()
            .await
            .expect("an answer");
        assert_eq!(forged_callback.status(), 400);
        let refused_by_provider = stranger
            .get(format!(
                "{}/auth/callback?error=access_denied&error_description=no",
                trellis.api.url
            ))
            .send()
            .await
            .expect("an answer");
        assert_eq!(refused_by_provider.status(), 401);

        let records = trellis.api.audit_records();
        let actions: Vec<(String, String)> = records
            .iter()
            .map(|r| {
                (
                    r["action"].as_str().unwrap_or("").into(),
                    r["outcome"].as_str().unwrap_or("").into(),
                )
            })
            .collect();
        let has = |action: &str, outcome: &str| {
            actions
                .iter()
                .filter(|(a, o)| a == action && o == outcome)
                .count()
        };
        assert_eq!(has("auth.login", "success"), 1, "{actions:?}");
        assert_eq!(has("auth.logout", "success"), 1, "{actions:?}");
        assert_eq!(has("auth.login", "failure"), 2, "{actions:?}");
        assert_eq!(has("csrf", "denied"), 1, "{actions:?}");
        assert_eq!(has("auth.logout", "denied"), 1, "{actions:?}");
        let (ok, out, err) = trellis.api.audit(&["verify"]);
        assert!(ok, "{database:?}: {out} {err}");
    }
}

/// A GET as a browser sends it (asking for HTML), without following redirects.
async fn browser_get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .get(url)
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("an answer")
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn failed_sign_ins_show_people_a_page_and_programs_a_problem() {
    install_crds(&client().await).await;

    // Dex lists `groups` in scopes_supported, so sign-in asks for all four scopes.
    let trellis = Trellis::start(&Database::Sqlite).await;
    let no_redirects = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let start = browser_get(&no_redirects, &format!("{}/auth/login", trellis.api.url)).await;
    let location =
        url::Url::parse(start.headers()["location"].to_str().expect("a location")).expect("a URL");
    let scope = location
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned());
    assert_eq!(scope.as_deref(), Some("openid profile email groups"));

    // A callback this browser did not start: a page for a person, problem+json for a program.
    let forged = format!("{}/auth/callback?code=abc&state=def", trellis.api.url);
    let page = browser_get(&no_redirects, &forged).await;
    assert_eq!(page.status(), 400);
    assert!(content_type(&page).starts_with("text/html"), "{page:?}");
    let html = page.text().await.expect("a page");
    assert!(html.contains("<h1>Sign-in failed</h1>"), "{html}");
    assert!(html.contains("started in this browser"), "{html}");
    assert!(
        html.contains(r#"<dd id="reason">state-mismatch</dd>"#),
        "{html}"
    );
    assert!(html.contains(&trellis.dex.issuer), "{html}");
    assert!(html.contains(r#"href="/auth/login""#), "{html}");
    let program = no_redirects
        .get(&forged)
        .header("accept", "application/json")
        .send()
        .await
        .expect("an answer");
    assert_eq!(program.status(), 400);
    assert_eq!(content_type(&program), "application/problem+json");

    // A person who declines at the provider (as Keycloak and others send it back).
    let declined = browser_get(
        &no_redirects,
        &format!(
            "{}/auth/callback?error=access_denied&error_description=The+user+declined",
            trellis.api.url
        ),
    )
    .await;
    assert_eq!(declined.status(), 401);
    let html = declined.text().await.expect("a page");
    assert!(html.contains("The sign-in was declined"), "{html}");
    assert!(
        html.contains(r#"<dd id="provider-error"><code>access_denied</code></dd>"#)
            && html.contains("The user declined"),
        "{html}"
    );
    drop(trellis);

    // A provider that refuses what Trellis asks for: Dex, asked for a scope it does not know
    // (through the `oidc.scopes` override), sends the browser back with an error, and the person
    // gets a page naming it, the issuer and the client.
    let trellis = Trellis::start_with(
        &Database::Sqlite,
        DexOptions::default(),
        ApiOptions {
            oidc_extra: Some("  scopes: [openid, profile, nonsense]\n".into()),
            ..ApiOptions::default()
        },
    )
    .await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a client");
    let refused = browser_get(&browser, &format!("{}/auth/login", trellis.api.url)).await;
    assert_eq!(refused.url().path(), "/auth/callback", "{}", refused.url());
    assert_eq!(refused.status(), 401);
    assert!(content_type(&refused).starts_with("text/html"));
    let html = refused.text().await.expect("a page");
    assert!(html.contains("<h1>Sign-in failed</h1>"), "{html}");
    assert!(html.contains(r#"<dd id="provider-error">"#), "{html}");
    assert!(
        html.contains("nonsense"),
        "Dex's description names the scope: {html}"
    );
    assert!(html.contains(&trellis.dex.issuer), "{html}");
    assert!(
        html.contains(r#"<dd id="client-id"><code>trellis</code></dd>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<dd id="scopes"><code>openid profile nonsense</code></dd>"#),
        "{html}"
    );
    let reasons = failures(&trellis);
    assert_eq!(reasons, ["auth.login:provider-error"], "{reasons:?}");
}
