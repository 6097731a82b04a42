//! Notifications by e-mail through a real SMTP server (aiosmtpd): an egress request submitted,
//! returned, resubmitted, approved and released, and another rejected, each mailed to the right
//! people (known because they signed in or used a token); and a mail server that never answers
//! holds up and fails nothing, but is counted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use trellis_e2e::api::{ApiOptions, Database, Trellis};
use trellis_e2e::identity::{DexOptions, password};
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings};
use trellis_e2e::smtp::Smtp;
use trellis_e2e::{client, create_active_project, ensure_namespace, install_crds};

/// An Active project (owner alice, researcher bob) managed by `settings`' operator.
async fn active_project(kube: &kube::Client, settings: &OperatorSettings) -> String {
    let spec = json!({
        "title": "Notifications", "purpose": "Notification tests.",
        "approval": {"reference": "R-1", "approvedBy": "DAC", "approvedAt": "2026-01-05T00:00:00Z"},
        "startDate": "2026-01-05", "endDate": "2099-12-31",
        "members": [{"subject": "alice", "role": "owner"}, {"subject": "bob", "role": "researcher"}],
        "resources": {"cpu": "1", "memory": "1Gi", "storage": "1Gi", "maxWorkspaces": 1},
    });
    create_active_project(kube, &settings.run, "e2e-mail", spec).await
}

struct Airlock<'a> {
    trellis: &'a Trellis,
    base: String,
}

impl Airlock<'_> {
    async fn call(&self, who: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let token = self.trellis.dex.token(who).await;
        let (status, answer) = self
            .trellis
            .call(method, &format!("{}{path}", self.base), Some(&token), body)
            .await;
        assert!(
            (200..300).contains(&status),
            "{who} {path}: {status} {answer}"
        );
        answer
    }

    async fn submitted(&self, title: &str, table: &[u8]) -> String {
        let created = self
            .call(
                "alice",
                Method::POST,
                "",
                Some(json!({"direction": "egress", "title": title})),
            )
            .await;
        let id = created["id"].as_str().expect("an id").to_string();
        self.upload(&id, table).await;
        let answer = self
            .call("alice", Method::POST, &format!("/{id}/submit"), None)
            .await;
        assert_eq!(answer["state"], "in_review", "{answer}");
        id
    }

    async fn upload(&self, id: &str, table: &[u8]) {
        let token = self.trellis.dex.token("alice").await;
        let response = self
            .trellis
            .put(
                &format!("{}/{id}/files/table.csv", self.base),
                &token,
                table.to_vec(),
            )
            .await
            .expect("an answer");
        assert_eq!(response.status(), 201);
    }

    /// Both checkers vote `vote`; then carol records `outcome`.
    async fn decide(&self, id: &str, vote: &str, outcome: &str) -> Value {
        for checker in ["carol", "dan"] {
            self.call(
                checker,
                Method::POST,
                &format!("/{id}/votes"),
                Some(json!({"votes": [{"file": "table.csv", "vote": vote}]})),
            )
            .await;
        }
        self.call(
            "carol",
            Method::POST,
            &format!("/{id}/outcome"),
            Some(json!({"outcome": outcome})),
        )
        .await
    }
}

/// Signs `user` in through the browser flow (authorization code at Dex), and only that.
async fn browser_sign_in(trellis: &Trellis, user: &str) {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a client");
    let login = browser
        .get(format!(
            "{}/auth/login?return_to=/api/v1/me",
            trellis.api.url
        ))
        .send()
        .await
        .expect("the sign-in redirects to Dex");
    let form = login.url().clone();
    let landed = browser
        .post(form)
        .form(&[
            ("login", format!("{user}@trellis.example")),
            ("password", password(user)),
        ])
        .send()
        .await
        .expect("Dex redirects back");
    let me: Value = landed.json().await.expect("me as JSON");
    assert_eq!(me["subject"], user, "{me}");
}

const TABLE: &[u8] = b"region,count\nNorth,120\nSouth,85\n";

fn smtp_yaml(port: u16, tls: &str, extra: &str) -> String {
    format!(
        "notifications:\n  smtp:\n    host: 127.0.0.1\n    port: {port}\n    tls: {tls}\n    \
         from: Trellis <trellis@tre.example>\n    timeout: 3s\n{extra}"
    )
}

#[tokio::test]
async fn airlock_steps_are_mailed_to_the_right_people() {
    let kube = client().await;
    install_crds(&kube).await;
    ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    for database in Database::both().await {
        // STARTTLS, trusting the server's own certificate through `ca_file`.
        let smtp = Smtp::start_tls();
        let certificate = smtp.certificate.clone().expect("a certificate");
        let project = active_project(&kube, &settings).await;
        let trellis = Trellis::start_with(
            &database,
            DexOptions::default(),
            ApiOptions {
                extra: Some(smtp_yaml(
                    smtp.port,
                    "starttls",
                    &format!("    ca_file: {}\n", certificate.display()),
                )),
                ..Default::default()
            },
        )
        .await;
        let airlock = Airlock {
            trellis: &trellis,
            base: format!("/api/v1/projects/{project}/airlock"),
        };
        // Who Trellis knows: the checkers and the steward by their tokens, bob by his browser
        // sign-in alone; alice by the tokens she works with.
        for who in ["carol", "dan", "steward"] {
            let token = trellis.dex.token(who).await;
            let (status, _) = trellis
                .call(Method::GET, "/api/v1/me", Some(&token), None)
                .await;
            assert_eq!(status, 200);
        }
        browser_sign_in(&trellis, "bob").await;

        let first = airlock.submitted("Regional counts", TABLE).await;
        let returned = airlock.decide(&first, "changes_requested", "return").await;
        assert_eq!(returned["state"], "returned", "{returned}");
        airlock
            .upload(&first, b"region,count\nNorth,120\nSouth,85\nEast,40\n")
            .await;
        airlock
            .call("alice", Method::POST, &format!("/{first}/submit"), None)
            .await;
        let released = airlock.decide(&first, "approve", "approve").await;
        assert_eq!(released["state"], "released", "{released}");
        let second = airlock.submitted("Small numbers", TABLE).await;
        let rejected = airlock.decide(&second, "reject", "reject").await;
        assert_eq!(rejected["state"], "rejected", "{rejected}");

        let expected: BTreeMap<(String, String), usize> = [
            ("carol", "Review requested: Regional counts", 2),
            ("dan", "Review requested: Regional counts", 2),
            ("carol", "Review requested: Small numbers", 1),
            ("dan", "Review requested: Small numbers", 1),
            ("alice", "Returned for changes: Regional counts", 1),
            ("alice", "Approved: Regional counts", 1),
            ("bob", "Released: Regional counts", 1),
            ("alice", "Rejected: Small numbers", 1),
        ]
        .into_iter()
        .map(|(who, what, n)| {
            (
                (
                    format!("{who}@trellis.example"),
                    format!("[Trellis] {what} ({project})"),
                ),
                n,
            )
        })
        .collect();
        let total: usize = expected.values().sum();
        let messages = smtp
            .wait_for(Duration::from_secs(30), "every notification", |m| {
                m.len() >= total
            })
            .await;
        // Nothing more arrives (no duplicates, nobody else).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let messages = if smtp.messages().len() > messages.len() {
            smtp.messages()
        } else {
            messages
        };
        let mut got: BTreeMap<(String, String), usize> = BTreeMap::new();
        for message in &messages {
            assert_eq!(message.recipients.len(), 1, "one message each: {message:?}");
            assert_eq!(message.from, "Trellis <trellis@tre.example>");
            *got.entry((message.recipients[0].clone(), message.subject.clone()))
                .or_default() += 1;
        }
        assert_eq!(got, expected, "{database:?}");

        // The messages say which round and link to the request, but carry no file contents.
        let link = format!("{}/projects/{project}/airlock/{first}", trellis.api.url);
        let review = messages
            .iter()
            .filter(|m| m.recipients[0] == "dan@trellis.example")
            .map(|m| m.body.as_str())
            .collect::<Vec<_>>();
        assert!(review.iter().any(|b| b.contains("(round 2)")), "{review:?}");
        assert!(review.iter().any(|b| b.contains(&link)), "{review:?}");
        assert!(
            messages.iter().all(|m| !m.body.contains("North,120")),
            "no file contents in mail"
        );
        let sent = metric(&trellis, "submitted", "smtp", "sent").await;
        assert_eq!(sent, 6.0, "three submissions to two checkers");
    }
}

/// A counter of `/metrics`: notifications of `event` by `transport` with `outcome`.
async fn metric(trellis: &Trellis, event: &str, transport: &str, outcome: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", trellis.api.ops_url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let series = format!(
        "trellis_api_notifications_total{{event=\"{event}\",transport=\"{transport}\",outcome=\"{outcome}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

#[tokio::test]
async fn a_mail_server_that_never_answers_holds_up_nothing() {
    let kube = client().await;
    install_crds(&kube).await;
    ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    let project = active_project(&kube, &settings).await;
    // Accepts connections (the kernel completes them) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = silent.local_addr().expect("its address").port();
    let trellis = Trellis::start_with(
        &Database::Sqlite,
        DexOptions::default(),
        ApiOptions {
            extra: Some(smtp_yaml(port, "none", "")),
            ..Default::default()
        },
    )
    .await;
    let airlock = Airlock {
        trellis: &trellis,
        base: format!("/api/v1/projects/{project}/airlock"),
    };
    for who in ["carol", "dan"] {
        let token = trellis.dex.token(who).await;
        trellis
            .call(Method::GET, "/api/v1/me", Some(&token), None)
            .await;
    }
    let token = trellis.dex.token("alice").await;
    let (status, created) = trellis
        .call(
            Method::POST,
            &airlock.base,
            Some(&token),
            Some(json!({"direction": "egress", "title": "Counts"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("an id").to_string();
    airlock.upload(&id, TABLE).await;
    let started = Instant::now();
    let (status, submitted) = trellis
        .call(
            Method::POST,
            &format!("{}/{id}/submit", airlock.base),
            Some(&token),
            None,
        )
        .await;
    let took = started.elapsed();
    assert_eq!(
        (status, submitted["state"].clone()),
        (200, json!("in_review")),
        "{submitted}"
    );
    // Two recipients, each waited on for 3 s had it been in the request's path.
    assert!(
        took < Duration::from_millis(2500),
        "the submission waited for the mail server: {took:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let failed = metric(&trellis, "submitted", "smtp", "failed").await;
        if failed == 2.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "failures not counted: {failed} (log: {})",
            trellis.api.log.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(metric(&trellis, "submitted", "smtp", "sent").await, 0.0);
    let log = std::fs::read_to_string(&trellis.api.log).expect("the API's log");
    assert!(
        log.contains("notification not sent"),
        "the failure is logged"
    );
    drop(silent);
}
