//! `trellis` from a person's own machine: `trellis login` by the device flow against the real
//! Dex (its pages driven over HTTP, as a browser would submit them), then `whoami`, `projects` and
//! `workspaces` with the stored session; refusals from the API shown with a non-zero exit; a
//! session file others could read, or a corrupt one, refused; an expired token refreshed.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use trellis_e2e::api::{Database, Trellis};
use trellis_e2e::identity::password;
use trellis_e2e::operator::{CONTROL_PLANE_NAMESPACE, Operator, OperatorSettings};
use trellis_e2e::{
    client, create_active_project, create_template, ensure_namespace, install_crds, state_dir,
    target_profile_dir, unique_name,
};

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// `trellis` as a person runs it: no workspace variables, its own configuration directory.
fn command(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(target_profile_dir().join("trellis"));
    command
        .args(args)
        .env_remove("TRELLIS_TOKEN")
        .env_remove("TRELLIS_TOKEN_FILE")
        .env_remove("TRELLIS_API_URL")
        .env_remove("TRELLIS_PROJECT")
        .env("XDG_CONFIG_HOME", config);
    command
}

fn trellis(config: &Path, args: &[&str]) -> Run {
    let output = command(config, args).output().expect("running trellis");
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The `action` of the first form on a Dex page, as an absolute URL.
fn form_action(origin: &str, page: &str) -> String {
    let start = page.find("action=\"").expect("a form on the page") + "action=\"".len();
    let end = start + page[start..].find('"').expect("a closed attribute");
    format!("{origin}{}", page[start..end].replace("&amp;", "&"))
}

/// Signs `user` in with `trellis login`, approving the device code on Dex's own pages.
async fn login(trellis_api: &Trellis, config: &Path, user: &str) -> Run {
    let mut child = command(config, &["login", "--api", &trellis_api.api.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting trellis login");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let (mut link, mut code, mut shown) = (None, None, String::new());
    while link.is_none() || code.is_none() {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("reading trellis login") == 0 {
            break;
        }
        shown.push_str(&line);
        if let Some(rest) = line.trim().strip_prefix("To sign in, open ") {
            link = Some(rest.to_string());
        }
        if let Some(rest) = line
            .trim()
            .strip_prefix("and check that it shows the code ")
        {
            code = Some(rest.to_string());
        }
    }
    let (Some(link), Some(code)) = (link, code) else {
        let _ = child.kill();
        panic!("trellis login showed no link and code: {shown}");
    };
    let origin = format!("http://127.0.0.1:{}", trellis_api.dex.port);
    assert!(
        link.starts_with(&format!("{}/device", trellis_api.dex.issuer)) && link.contains(&code),
        "{link}"
    );

    // The person's browser: open the link, confirm the code, sign in.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("a client");
    let page = browser
        .get(&link)
        .send()
        .await
        .expect("Dex's device page")
        .text()
        .await
        .expect("a page");
    assert!(page.contains(&code), "{page}");
    let login_page = browser
        .post(form_action(&origin, &page))
        .form(&[("user_code", code.as_str())])
        .send()
        .await
        .expect("Dex takes the code")
        .text()
        .await
        .expect("a page");
    let done = browser
        .post(form_action(&origin, &login_page))
        .form(&[
            ("login", format!("{user}@trellis.example")),
            ("password", password(user)),
        ])
        .send()
        .await
        .expect("Dex signs in")
        .text()
        .await
        .expect("a page");
    assert!(done.contains("Login Successful"), "{done}");

    let output = tokio::task::spawn_blocking(move || {
        let rest = std::io::read_to_string(&mut stderr).unwrap_or_default();
        (child.wait_with_output().expect("trellis login ends"), rest)
    })
    .await
    .expect("waiting");
    let (output, rest) = output;
    Run {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: shown + &rest,
    }
}

fn session_file(config: &Path) -> PathBuf {
    config.join("trellis/session.json")
}

#[tokio::test]
async fn a_person_signs_in_with_the_device_flow_and_manages_workspaces() {
    let kube = client().await;
    install_crds(&kube).await;
    ensure_namespace(&kube, CONTROL_PLANE_NAMESPACE).await;
    let settings = OperatorSettings::new();
    let _operator = Operator::start(&settings);
    let template = create_template(&kube).await;
    let spec = json!({
        "title": "CLI sign-in", "purpose": "CLI sign-in tests.",
        "approval": {"reference": "R-1", "approvedBy": "DAC", "approvedAt": "2026-01-05T00:00:00Z"},
        "startDate": "2026-01-05", "endDate": "2099-12-31",
        "members": [{"subject": "alice", "role": "owner"}],
        "resources": {"cpu": "4", "memory": "8Gi", "storage": "20Gi", "maxWorkspaces": 2},
        "templates": [template],
    });
    let project = create_active_project(&kube, &settings.run, "e2e-login", spec).await;
    let trellis_api = Trellis::start(&Database::Sqlite).await;
    let dir = state_dir(&unique_name("cli-login"));
    let alice = dir.join("alice");
    let bob = dir.join("bob");

    // Not signed in: what to do, and a failure.
    let anonymous = trellis(&alice, &["projects", "list"]);
    assert!(
        !anonymous.ok
            && anonymous.stderr.contains("not signed in")
            && anonymous.stderr.contains("trellis login --api"),
        "{}",
        anonymous.stderr
    );

    // The device flow end to end; the session is the person's alone.
    let signed_in = login(&trellis_api, &alice, "alice").await;
    assert!(signed_in.ok, "{}", signed_in.stderr);
    assert!(
        signed_in.stdout.contains("as alice"),
        "{}",
        signed_in.stdout
    );
    let mode = std::fs::metadata(session_file(&alice))
        .expect("the session file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let whoami = trellis(&alice, &["whoami"]);
    assert!(whoami.ok, "{}", whoami.stderr);
    assert!(
        whoami
            .stdout
            .starts_with("alice (Alice <alice@trellis.example>)")
            && whoami.stdout.contains(&project)
            && whoami.stdout.contains("owner"),
        "{}",
        whoami.stdout
    );

    // A member sees the project, in a table and as JSON; the details show its members.
    let listed = trellis(&alice, &["projects", "list"]);
    assert!(listed.ok, "{}", listed.stderr);
    assert!(
        listed.stdout.starts_with("NAME") && listed.stdout.contains(&project),
        "{}",
        listed.stdout
    );
    let json_list = trellis(&alice, &["projects", "list", "--output", "json"]);
    let parsed: Value = serde_json::from_str(&json_list.stdout).expect("JSON");
    assert!(
        parsed
            .as_array()
            .expect("a list")
            .iter()
            .any(|p| p["name"] == project.as_str()),
        "{parsed}"
    );
    let shown = trellis(&alice, &["projects", "show", &project]);
    assert!(
        shown.ok && shown.stdout.contains("CLI sign-in") && shown.stdout.contains("alice"),
        "{}{}",
        shown.stdout,
        shown.stderr
    );

    // Workspaces: create, list, open, stop.
    let created = trellis(
        &alice,
        &[
            "workspaces",
            "create",
            "nb",
            "--template",
            &template,
            "--project",
            &project,
        ],
    );
    assert!(created.ok, "{}", created.stderr);
    assert!(created.stdout.contains("nb"), "{}", created.stdout);
    let workspaces = trellis(&alice, &["workspaces", "list", "--project", &project]);
    assert!(
        workspaces.ok && workspaces.stdout.contains("nb") && workspaces.stdout.contains("alice"),
        "{}{}",
        workspaces.stdout,
        workspaces.stderr
    );
    let opened = trellis(&alice, &["workspaces", "open", "nb", "--project", &project]);
    assert_eq!(
        opened.stdout.trim(),
        format!("{}/w/{project}/nb/", trellis_api.api.url),
        "{}",
        opened.stderr
    );

    // Another person, not a member: the project is not theirs, and the API's refusal is shown.
    let bob_in = login(&trellis_api, &bob, "bob").await;
    assert!(bob_in.ok, "{}", bob_in.stderr);
    let bob_list = trellis(&bob, &["projects", "list", "--output", "json"]);
    assert!(bob_list.ok, "{}", bob_list.stderr);
    assert!(!bob_list.stdout.contains(&project), "{}", bob_list.stdout);
    for args in [
        vec!["workspaces", "create", "x", "--template", &template],
        vec!["workspaces", "list"],
        vec!["workspaces", "stop", "nb"],
        vec!["workspaces", "delete", "nb"],
    ] {
        let mut args = args.clone();
        args.extend(["--project", &project]);
        let refused = trellis(&bob, &args);
        assert!(
            !refused.ok && refused.stderr.contains("403"),
            "{args:?}: {}{}",
            refused.stdout,
            refused.stderr
        );
    }

    // A session file others may read is not used; nor is a corrupt one.
    let leaky = dir.join("leaky");
    std::fs::create_dir_all(leaky.join("trellis")).expect("a directory");
    std::fs::copy(session_file(&alice), session_file(&leaky)).expect("a copy");
    std::fs::set_permissions(session_file(&leaky), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    let refused = trellis(&leaky, &["whoami"]);
    assert!(
        !refused.ok && refused.stderr.contains("chmod 600"),
        "{}",
        refused.stderr
    );
    std::fs::write(session_file(&leaky), b"{\"api\": 1").expect("a corrupt file");
    std::fs::set_permissions(session_file(&leaky), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    let corrupt = trellis(&leaky, &["whoami"]);
    assert!(
        !corrupt.ok && corrupt.stderr.contains("not a Trellis session"),
        "{}",
        corrupt.stderr
    );

    // Without the refresh token, an expired session says to sign in again (refreshing is
    // `an_expired_session_is_refreshed_before_the_next_call`).
    let path = session_file(&alice);
    let renewed: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the session")).expect("JSON");
    let mut spoiled = renewed.clone();
    spoiled["expires_at"] = json!(0);
    spoiled["refresh_token"] = Value::Null;
    std::fs::write(&path, serde_json::to_vec(&spoiled).expect("JSON")).expect("writing");
    let expired = trellis(&alice, &["whoami"]);
    assert!(
        !expired.ok && expired.stderr.contains("trellis login"),
        "{}",
        expired.stderr
    );
    std::fs::write(&path, serde_json::to_vec(&renewed).expect("JSON")).expect("writing");

    let deleted = trellis(
        &alice,
        &["workspaces", "delete", "nb", "--project", &project],
    );
    assert!(deleted.ok, "{}", deleted.stderr);

    // Signed out: the file is gone and the commands say to sign in.
    let out = trellis(&alice, &["logout"]);
    assert!(out.ok && !path.exists(), "{}", out.stderr);
    let after = trellis(&alice, &["whoami"]);
    assert!(
        !after.ok && after.stderr.contains("not signed in"),
        "{}",
        after.stderr
    );
}
