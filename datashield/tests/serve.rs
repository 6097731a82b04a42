//! The binary as a project's pod runs it: behind the Trellis API, trusting only the proxy secret,
//! with the seed from a file; and how it refuses to start without what it needs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

const SECRET: &str = "6c0f5b2e9d4a7c1e8b3f0a6d2c9e5b1f7a4d8c2e6b0f3a9d5c1e7b4f8a2d6c0e";

fn setup(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("datashield-serve-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data/study")).unwrap();
    let mut csv = String::from("age\n");
    for i in 0..10 {
        csv.push_str(&format!("{}\n", 40 + i));
    }
    std::fs::write(dir.join("data/study/people.csv"), csv).unwrap();
    std::fs::write(dir.join("proxy-secret"), SECRET).unwrap();
    std::fs::write(dir.join("seed"), "271828\n").unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis-datashield"));
    command
        .arg("serve")
        .arg("--data")
        .arg(dir.join("data"))
        .args(extra)
        .env_clear()
        .stdin(Stdio::null());
    command
}

async fn wait_ready(base: &str, server: &mut Running) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("the server exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not answer within 20 s");
}

#[tokio::test]
async fn behind_the_proxy_calls_need_its_secret_and_run_as_the_named_user() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = setup("proxy");
    let port = free_port();
    let secret_file = dir.join("proxy-secret");
    let seed_file = dir.join("seed");
    let mut server = Running(
        serve(
            &dir,
            &[
                "--trusted-proxy-secret-file",
                secret_file.to_str().unwrap(),
                "--seed-file",
                seed_file.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base, &mut server).await;
    let http = reqwest::Client::new();

    let forwarded = http
        .post(format!("{base}/ws/datashield/sessions"))
        .header("x-trellis-proxy-secret", SECRET)
        .header("x-trellis-user", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), StatusCode::CREATED);
    let session: Value = forwarded.json().await.unwrap();
    assert_eq!(session["user"], "alice", "{session}");

    for (secret, user) in [
        (
            Some("a-wrong-secret-that-is-long-enough-to-be-read"),
            Some("alice"),
        ),
        (Some(SECRET), None),
        (None, Some("alice")),
    ] {
        let mut request = http.post(format!("{base}/ws/datashield/sessions"));
        if let Some(secret) = secret {
            request = request.header("x-trellis-proxy-secret", secret);
        }
        if let Some(user) = user {
            request = request.header("x-trellis-user", user);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::UNAUTHORIZED,
            "{secret:?} {user:?}"
        );
        let body = refused.text().await.unwrap();
        assert!(body.contains("only through Trellis"), "{body}");
    }
    // A person's own token is not accepted behind the proxy.
    let token = http
        .post(format!("{base}/ws/datashield/sessions"))
        .header("X-Opal-Auth", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn it_refuses_to_start_without_callers_a_seed_or_a_good_secret() {
    let dir = setup("refusals");
    let seed_file = dir.join("seed");
    let secret_file = dir.join("proxy-secret");
    let fails = |mut command: Command, expected: &str| {
        let output = command.output().unwrap();
        assert!(!output.status.success(), "started: {command:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    };
    fails(
        serve(&dir, &["--seed-file", seed_file.to_str().unwrap()]),
        "--tokens",
    );
    fails(
        serve(
            &dir,
            &["--trusted-proxy-secret-file", secret_file.to_str().unwrap()],
        ),
        "--seed",
    );
    std::fs::write(dir.join("short"), "abc").unwrap();
    fails(
        serve(
            &dir,
            &[
                "--trusted-proxy-secret-file",
                dir.join("short").to_str().unwrap(),
                "--seed-file",
                seed_file.to_str().unwrap(),
            ],
        ),
        "at least 32",
    );
    std::fs::write(dir.join("bad-seed"), "forty-two").unwrap();
    fails(
        serve(
            &dir,
            &[
                "--trusted-proxy-secret-file",
                secret_file.to_str().unwrap(),
                "--seed-file",
                dir.join("bad-seed").to_str().unwrap(),
            ],
        ),
        "whole number",
    );
}
