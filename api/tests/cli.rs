//! The `trellis-api` binary's offline commands, run as a process: configuration checks (file and
//! environment overrides) and the audit commands on a fresh SQLite database.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn config(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "public_url: https://trellis.example.org\ndata_dir: {}\noidc:\n  issuer: https://id.example.org\n  client_id: trellis\n{extra}",
            dir.join("data").display()
        ),
    )
    .expect("writing a config");
    path
}

fn run(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trellis-api"));
    command.args(args).arg("--config").arg(config);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("running trellis-api")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_bad_configuration_is_refused_with_the_field_named() {
    let dir = scratch("config");
    let good = config(&dir, "good.yaml", "  client_secret: s\n");
    assert!(run(&["check-config"], &good, &[]).status.success());

    let missing_secret = config(&dir, "no-secret.yaml", "");
    let output = run(&["check-config"], &missing_secret, &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("oidc.client_secret"),
        "{}",
        stderr(&output)
    );

    // The environment fills in what the file lacks, and overrides what it has.
    let output = run(
        &["check-config"],
        &missing_secret,
        &[("TRELLIS_API__OIDC__CLIENT_SECRET", "from-env")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(
        &["check-config"],
        &good,
        &[("TRELLIS_API__LISTEN", "not-an-address")],
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("listen"), "{}", stderr(&output));
    let output = run(
        &["check-config"],
        &good,
        &[("TRELLIS_API__SESSION__TTL", "1s")],
    );
    assert!(
        stderr(&output).contains("session.ttl"),
        "{}",
        stderr(&output)
    );

    let output = run(&["check-config"], &dir.join("absent.yaml"), &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn audit_commands_work_on_a_fresh_database() {
    let dir = scratch("audit");
    let path = config(&dir, "trellis.yaml", "  client_secret: s\n");
    let output = run(&["audit", "verify"], &path, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "audit log intact: 0 records"
    );
    let export = dir.join("audit.jsonl");
    let output = run(
        &[
            "audit",
            "export",
            "--output",
            export.to_str().expect("a UTF-8 path"),
        ],
        &path,
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&export).expect("the export"), "");
    assert!(
        dir.join("data/trellis.db").exists(),
        "the database was created in data_dir"
    );
}
