//! The web pages over HTTP, for what a browser test would only see indirectly: who is sent to sign
//! in, who is refused (with a page saying why, and an audit record), the Content-Security-Policy
//! on every page, and the public register showing approved projects only, without members.

use kube::api::{Api, PostParams};
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use reqwest::redirect::Policy;
use serde_json::json;
use trellis_e2e::api::{Database, Trellis};
use trellis_e2e::{client, install_crds, unique_name};
use trellis_operator::resources::Project;

async fn create_project(kube: &kube::Client, approved: bool) -> String {
    let name = unique_name("e2e-pages");
    let mut spec = json!({
        "title": format!("Pages {name}"), "purpose": "Checking the web pages.",
        "startDate": "2026-01-05", "endDate": "2099-12-31",
        "members": [{"subject": "alice", "role": "owner"}],
        "datasets": [{"name": "census-2021"}],
        "resources": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "maxWorkspaces": 1},
    });
    if approved {
        spec["approval"] = json!({"reference": "DAC-9", "approvedBy": "admin", "approvedAt": "2026-01-05T00:00:00Z"});
    }
    let project: Project = serde_json::from_value(json!({
        "apiVersion": "trellis.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("a project");
    Api::<Project>::all(kube.clone())
        .create(&PostParams::default(), &project)
        .await
        .expect("creating a project");
    name
}

/// Waits until the API's watch cache has the project (pages read the cache).
async fn cached(trellis: &Trellis, token: &str, project: &str) {
    for _ in 0..100 {
        let (status, _) = trellis
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/projects/{project}"),
                Some(token),
                None,
            )
            .await;
        if status == 200 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the API never saw project {project}");
}

#[tokio::test]
async fn pages_send_strangers_to_sign_in_refuse_the_unentitled_and_keep_a_strict_policy() {
    let kube = client().await;
    install_crds(&kube).await;
    let approved = create_project(&kube, true).await;
    let pending = create_project(&kube, false).await;
    let trellis = Trellis::start(&Database::Sqlite).await;
    let admin = trellis.dex.token("admin").await;
    cached(&trellis, &admin, &approved).await;
    cached(&trellis, &admin, &pending).await;
    let url = |path: &str| format!("{}{path}", trellis.api.url);

    // Anonymous: the start page and the register; anything else goes to sign-in and back.
    let anonymous = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("a client");
    let start = anonymous
        .get(url("/"))
        .send()
        .await
        .expect("the start page");
    assert_eq!(start.status(), 200);
    let csp = start
        .headers()
        .get(CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .expect("a Content-Security-Policy")
        .to_string();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(start.text().await.expect("html").contains("/auth/login"));
    for path in [
        "/projects",
        &format!("/projects/{approved}"),
        "/review",
        "/admin/audit?actor=x",
        "/tokens",
    ] {
        let answer = anonymous.get(url(path)).send().await.expect("an answer");
        assert_eq!(answer.status(), 303, "{path}");
        let location = answer.headers()[LOCATION].to_str().expect("ASCII");
        let back: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        assert_eq!(location, format!("/auth/login?return_to={back}"), "{path}");
    }
    let script = anonymous
        .get(url("/static/trellis.js"))
        .send()
        .await
        .expect("the script");
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()[CONTENT_TYPE]
            .to_str()
            .expect("ASCII")
            .starts_with("text/javascript")
    );

    // The register: approved projects with their purpose and datasets, never their members.
    let register = anonymous
        .get(url("/register"))
        .send()
        .await
        .expect("the register");
    assert_eq!(register.status(), 200);
    let register = register.text().await.expect("html");
    assert!(register.contains(&format!("data-project=\"{approved}\"")));
    assert!(register.contains("Checking the web pages.") && register.contains("census-2021"));
    assert!(
        !register.contains(&format!("data-project=\"{pending}\"")),
        "a project never approved is not on the register"
    );
    assert!(!register.contains("alice"), "members are never named");

    // Signed in without the right: a page that says why, with the status, and an audit record.
    let alice = Trellis::browser();
    trellis.sign_in(&alice, "alice", "/").await;
    for (path, status, says) in [
        ("/admin/audit", 403, "only platform admins"),
        ("/admin/templates", 403, "only platform admins"),
        ("/review", 403, "output checkers and data stewards"),
        ("/projects/no-such-project", 404, "no-such-project"),
        (
            &format!("/projects/{approved}/airlock/no-such-request"),
            404,
            "",
        ),
    ] {
        let answer = alice.get(url(path)).send().await.expect("an answer");
        assert_eq!(answer.status(), status, "{path}");
        assert!(
            answer.headers()[CONTENT_TYPE]
                .to_str()
                .expect("ASCII")
                .starts_with("text/html")
        );
        let page = answer.text().await.expect("html");
        assert!(
            page.contains("role=\"alert\"") && page.contains(says),
            "{path}: {page}"
        );
    }
    let own = alice
        .get(url(&format!("/projects/{approved}")))
        .send()
        .await
        .expect("her project");
    assert_eq!(own.status(), 200);
    let own = own.text().await.expect("html");
    assert!(
        own.contains("Your role") && !own.contains("id=\"governance\""),
        "no admin controls for a member"
    );

    let carol = Trellis::browser();
    trellis.sign_in(&carol, "carol", "/").await;
    let queue = carol.get(url("/review")).send().await.expect("the queue");
    assert_eq!(queue.status(), 200);
    let not_hers = carol
        .get(url(&format!("/projects/{approved}")))
        .send()
        .await
        .expect("an answer");
    assert_eq!(not_hers.status(), 403, "a checker is not a member");

    let admin_browser = Trellis::browser();
    trellis.sign_in(&admin_browser, "admin", "/").await;
    let audit = admin_browser
        .get(url("/admin/audit?outcome=denied&actor=alice"))
        .send()
        .await
        .expect("the audit page");
    assert_eq!(audit.status(), 200);
    let audit = audit.text().await.expect("html");
    assert!(
        audit.contains("web.admin") && audit.contains("airlock.queue"),
        "alice's refusals are recorded: {audit}"
    );
    let bad_filter = admin_browser
        .get(url("/admin/audit?outcome=sometimes"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(bad_filter.status(), 400);
    assert!(
        bad_filter
            .text()
            .await
            .expect("html")
            .contains("`outcome` is")
    );
    let governance = admin_browser
        .get(url(&format!("/projects/{pending}")))
        .send()
        .await
        .expect("the pending project");
    let governance = governance.text().await.expect("html");
    assert!(governance.contains("id=\"approve\"") && governance.contains("Awaiting approval"));
}
