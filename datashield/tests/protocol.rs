//! Opal's protocol, call by call, over real HTTP: what a client sees for every route, for
//! success and for each way a call is refused.

use std::path::Path;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use trellis_datashield::catalogue::Catalogue;
use trellis_datashield::http::{AppState, Authenticator, Tokens, router};
use trellis_datashield::profile::Profile;
use trellis_datashield::session::{Limits, Service};

struct Server {
    url: String,
    http: reqwest::Client,
}

impl Server {
    async fn start(name: &str, limits: Limits, profiles: Vec<Profile>) -> Server {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("datashield-protocol-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("study")).unwrap();
        let mut csv = String::from("age,sex\n");
        for i in 0..20 {
            csv.push_str(&format!(
                "{},{}\n",
                30 + i,
                if i % 2 == 0 { "F" } else { "M" }
            ));
        }
        std::fs::write(dir.join("study/people.csv"), csv).unwrap();
        let service = Arc::new(Service::new(
            Catalogue::load(&dir).unwrap(),
            profiles,
            limits,
            7,
        ));
        let tokens = Tokens::default()
            .with_user("alice", "alice-token")
            .with_user("bob", "bob-token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ws", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                router(AppState {
                    service,
                    auth: Arc::new(Authenticator::from(tokens)),
                }),
            )
            .await
            .unwrap()
        });
        // Several tests build clients; the first to install the provider wins, the rest find it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Server {
            url,
            http: reqwest::Client::new(),
        }
    }

    async fn default() -> Server {
        Server::start(
            "default",
            Limits::default(),
            vec![Profile::default_named("default")],
        )
        .await
    }

    fn request(&self, method: reqwest::Method, path: &str, user: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("X-Opal-Auth", format!("{user}-token"))
            .header("Accept", "application/json")
    }

    /// A request without a body, as `user`.
    async fn send(&self, method: reqwest::Method, path: &str, user: &str) -> reqwest::Response {
        self.request(method, path, user).send().await.unwrap()
    }

    async fn session(&self, user: &str) -> String {
        let response = self
            .send(
                reqwest::Method::POST,
                "/datashield/sessions?wait=false&profile=default",
                user,
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            location,
            format!("/ws/datashield/session/{}", body["id"].as_str().unwrap())
        );
        assert_eq!(body["state"], "RUNNING");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn assign_table(&self, user: &str, session: &str) {
        let response = self
            .send(
                reqwest::Method::PUT,
                &format!("/datashield/session/{session}/symbol/D/table/study.people?async=false"),
                user,
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    async fn aggregate(
        &self,
        user: &str,
        session: &str,
        call: &str,
        asynchronous: bool,
    ) -> reqwest::Response {
        self.request(
            reqwest::Method::POST,
            &format!("/datashield/session/{session}/aggregate?async={asynchronous}"),
            user,
        )
        .header("Content-Type", "application/x-rscript")
        .body(call.to_owned())
        .send()
        .await
        .unwrap()
    }
}

async fn error_body(response: reqwest::Response, code: StatusCode) -> Value {
    assert_eq!(response.status(), code);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code.as_u16());
    body
}

#[tokio::test]
async fn every_route_needs_a_valid_token() {
    let server = Server::default().await;
    for (method, path) in [
        (reqwest::Method::GET, "/system/subject-profile/_current"),
        (reqwest::Method::POST, "/datashield/sessions"),
        (reqwest::Method::GET, "/datashield/profiles"),
        (reqwest::Method::GET, "/datashield/env/aggregate/methods"),
        (reqwest::Method::GET, "/datasources"),
        (
            reqwest::Method::GET,
            "/datasource/study/table/people/variables",
        ),
    ] {
        let anonymous = server
            .http
            .request(method.clone(), format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            anonymous.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        let wrong = server
            .http
            .request(method.clone(), format!("{}{path}", server.url))
            .header("X-Opal-Auth", "nope")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let me: Value = server
        .send(
            reqwest::Method::GET,
            "/system/subject-profile/_current",
            "alice",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["principal"], "alice");
}

#[tokio::test]
async fn a_session_is_its_owners_alone() {
    let server = Server::default().await;
    let session = server.session("alice").await;
    server.assign_table("alice", &session).await;
    for (method, path) in [
        (
            reqwest::Method::GET,
            format!("/datashield/session/{session}"),
        ),
        (
            reqwest::Method::GET,
            format!("/datashield/session/{session}/symbols"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/datashield/session/{session}"),
        ),
        (
            reqwest::Method::POST,
            format!("/datashield/session/{session}/aggregate"),
        ),
        (
            reqwest::Method::GET,
            format!("/datashield/session/{session}/command/1"),
        ),
    ] {
        let response = server
            .request(method.clone(), &path, "bob")
            .header("Content-Type", "application/x-rscript")
            .body("classDS('D')")
            .send()
            .await
            .unwrap();
        error_body(response, StatusCode::NOT_FOUND).await;
    }
    // Still alice's, untouched.
    let symbols = server
        .send(
            reqwest::Method::GET,
            &format!("/datashield/session/{session}/symbols"),
            "alice",
        )
        .await;
    assert_eq!(symbols.text().await.unwrap(), "\"D\"");
}

#[tokio::test]
async fn commands_follow_opals_asynchronous_protocol() {
    let server = Server::default().await;
    let session = server.session("alice").await;
    let response = server
        .send(reqwest::Method::PUT, &format!("/datashield/session/{session}/symbol/D/table/study.people?async=true&variables=name.any(%22age%22)"), "alice").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let assign_id = response.text().await.unwrap();
    let command: Value = server
        .send(
            reqwest::Method::GET,
            &format!("/datashield/session/{session}/command/{assign_id}?wait=false"),
            "alice",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(command["status"], "COMPLETED");
    assert_eq!(command["withResult"], false);
    let result = server
        .send(
            reqwest::Method::GET,
            &format!("/datashield/session/{session}/command/{assign_id}/result"),
            "alice",
        )
        .await;
    assert_eq!(result.status(), StatusCode::NO_CONTENT);

    let id = server
        .aggregate("alice", &session, "dimDS('D')", true)
        .await
        .text()
        .await
        .unwrap();
    let result = server
        .send(
            reqwest::Method::GET,
            &format!("/datashield/session/{session}/command/{id}/result?rm=false"),
            "alice",
        )
        .await;
    assert_eq!(result.text().await.unwrap(), "[20,1]");
    // rm defaults to true: the second fetch finds nothing.
    let again = server
        .send(
            reqwest::Method::GET,
            &format!("/datashield/session/{session}/command/{id}/result"),
            "alice",
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let gone = server
        .send(
            reqwest::Method::GET,
            &format!("/datashield/session/{session}/command/{id}/result"),
            "alice",
        )
        .await;
    error_body(gone, StatusCode::NOT_FOUND).await;

    // A disclosure refusal fails the command with dsBase's message.
    let id = server
        .aggregate("alice", &session, "meanDS(D$nothing)", true)
        .await
        .text()
        .await
        .unwrap();
    let command: Value = server
        .send(
            reqwest::Method::GET,
            &format!("/datashield/session/{session}/command/{id}"),
            "alice",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(command["status"], "FAILED");
    assert!(
        command["error"].as_str().unwrap().contains("nothing"),
        "{command}"
    );
}

#[tokio::test]
async fn refusals_are_shaped_as_opal_shapes_them() {
    let server = Server::default().await;
    let session = server.session("alice").await;
    server.assign_table("alice", &session).await;
    let parse = error_body(
        server
            .aggregate("alice", &session, "meanDS(D$age", false)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(parse["status"], "DataShieldParseError");
    let unknown = error_body(
        server
            .aggregate("alice", &session, "system('id')", false)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(unknown["status"], "DataShieldMethodError");
    assert!(unknown["arguments"][0].as_str().unwrap().contains("system"));
    let failed = error_body(
        server
            .aggregate("alice", &session, "meanDS(D$nothing)", false)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(failed["status"], "DataShieldEvaluationError");
    let read = server
        .send(
            reqwest::Method::GET,
            &format!("/datashield/session/{session}/symbol/D"),
            "alice",
        )
        .await;
    error_body(read, StatusCode::FORBIDDEN).await;
    let huge = server
        .aggregate(
            "alice",
            &session,
            &format!("classDS('{}')", "a".repeat(100_000)),
            false,
        )
        .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let bad_symbol = server
        .send(
            reqwest::Method::PUT,
            &format!("/datashield/session/{session}/symbol/a$b/table/study.people"),
            "alice",
        )
        .await;
    assert!(
        error_body(bad_symbol, StatusCode::BAD_REQUEST).await["detail"]
            .as_str()
            .unwrap()
            .contains("not a valid symbol name")
    );
    let no_table = server
        .send(
            reqwest::Method::PUT,
            &format!("/datashield/session/{session}/symbol/E/table/study.nothing"),
            "alice",
        )
        .await;
    error_body(no_table, StatusCode::NOT_FOUND).await;
    let filter = server
        .send(
            reqwest::Method::PUT,
            &format!("/datashield/session/{session}/symbol/E/table/study.people?variables=age"),
            "alice",
        )
        .await;
    error_body(filter, StatusCode::BAD_REQUEST).await;
    let identifiers = server
        .send(
            reqwest::Method::PUT,
            &format!("/datashield/session/{session}/symbol/E/table/study.people?id=pid"),
            "alice",
        )
        .await;
    error_body(identifiers, StatusCode::BAD_REQUEST).await;
    let no_profile = server
        .send(
            reqwest::Method::POST,
            "/datashield/sessions?profile=other",
            "alice",
        )
        .await;
    error_body(no_profile, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn r_clients_get_r_serialization() {
    let server = Server::default().await;
    let session = server.session("alice").await;
    server.assign_table("alice", &session).await;
    let response = server
        .http
        .post(format!(
            "{}/datashield/session/{session}/aggregate",
            server.url
        ))
        .header("X-Opal-Auth", "alice-token")
        .header("Accept", "application/octet-stream")
        .header("Content-Type", "application/x-rscript")
        .body("dimDS('D')")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..2], b"X\n", "R's XDR serialization");
}

#[tokio::test]
async fn a_user_cannot_open_sessions_without_end() {
    let limits = Limits {
        sessions_per_user: 2,
        ..Limits::default()
    };
    let server = Server::start("limits", limits, vec![Profile::default_named("default")]).await;
    server.session("alice").await;
    server.session("alice").await;
    let third = server
        .send(reqwest::Method::POST, "/datashield/sessions", "alice")
        .await;
    assert!(
        error_body(third, StatusCode::TOO_MANY_REQUESTS).await["detail"]
            .as_str()
            .unwrap()
            .contains("close one")
    );
    // Another user is unaffected.
    server.session("bob").await;
}

#[tokio::test]
async fn a_profile_allows_only_what_it_lists_and_applies_its_settings() {
    let strict = Profile::parse(
        "name: strict\nsettings: {nfilter.tab: 25}\naggregate: [meanDS, dimDS]\nassign: []\n",
    )
    .unwrap();
    let server = Server::start(
        "profiles",
        Limits::default(),
        vec![Profile::default_named("default"), strict],
    )
    .await;
    let response = server
        .send(
            reqwest::Method::POST,
            "/datashield/sessions?profile=strict",
            "alice",
        )
        .await;
    let session = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.assign_table("alice", &session).await;
    let listed: Value = server
        .send(
            reqwest::Method::GET,
            "/datashield/env/aggregate/methods?profile=strict",
            "alice",
        )
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dimDS", "meanDS"]);
    assert_eq!(
        listed[0]["DataShield.RFunctionDataShieldMethodDto.method"]["func"],
        "dsBase::dimDS"
    );
    error_body(
        server
            .aggregate("alice", &session, "classDS('D')", false)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // 20 rows are fewer than this profile's nfilter.tab of 25.
    let refused = error_body(
        server
            .aggregate("alice", &session, "meanDS(D$age)", false)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        refused["detail"].as_str().unwrap().contains("nfilter.tab"),
        "{refused}"
    );
    let assign = server
        .request(
            reqwest::Method::PUT,
            &format!("/datashield/session/{session}/symbol/x"),
            "alice",
        )
        .header("Content-Type", "application/x-rscript")
        .body("D$age")
        .send()
        .await
        .unwrap();
    assert_eq!(
        assign.status(),
        StatusCode::CREATED,
        "a bare symbol path calls no function"
    );
    let listed: Value = server
        .send(reqwest::Method::GET, "/datashield/profiles", "alice")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed,
        json!([
            {"name": "default", "cluster": "default", "enabled": true, "restrictedAccess": false, "rParser": "v2"},
            {"name": "strict", "cluster": "strict", "enabled": true, "restrictedAccess": false, "rParser": "v2"}
        ])
    );
}
