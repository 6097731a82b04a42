//! The commands that need no API, run as a script runs them: `trellis egress check` (the built
//! binary on real files: its exit status and output against the disclosure crate's own record of
//! the same files, which is what the API stores when they are submitted), the completions and
//! the manual page.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use trellis_disclosure::{DisclosureRecord, Policy, check_bytes};

fn dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("egress-check");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(name: &str, text: &str) -> PathBuf {
    let path = dir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn trellis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trellis"))
        .args(args)
        .env_remove("TRELLIS_EGRESS_POLICY")
        .output()
        .expect("run trellis")
}

fn records(output: &Output) -> Vec<DisclosureRecord> {
    serde_json::from_slice(&output.stdout).expect("--output json prints the records")
}

fn safe_table() -> PathBuf {
    write("safe.csv", "region,count\nNorth,120\nSouth,340\nEast,250\n")
}

fn small_cell_table() -> PathBuf {
    write("small.csv", "region,count\nNorth,120\nSouth,4\nEast,250\n")
}

#[test]
fn the_exit_status_is_the_verdict_and_the_records_are_the_servers() {
    let policy = Policy::with_defaults("default");
    for (path, expected) in [(safe_table(), None), (small_cell_table(), Some(2))] {
        let output = trellis(&[
            "egress",
            "check",
            "--output",
            "json",
            path.to_str().unwrap(),
        ]);
        let ours = records(&output);
        let name = path.file_name().unwrap().to_str().unwrap();
        let server = check_bytes(&policy, name, &std::fs::read(&path).unwrap());
        assert_eq!(
            ours,
            vec![server.clone()],
            "the CLI's record is the server's"
        );
        let status = output.status.code().unwrap();
        match expected {
            Some(code) => assert_eq!(
                status,
                code,
                "{name}: {}",
                String::from_utf8_lossy(&output.stdout)
            ),
            None => {
                let want = if server.outcome == trellis_disclosure::Outcome::Pass {
                    0
                } else {
                    1
                };
                assert_eq!(
                    status,
                    want,
                    "{name}: {}",
                    String::from_utf8_lossy(&output.stdout)
                );
            }
        }
    }
}

#[test]
fn the_text_report_says_which_cell_blocks() {
    let output = trellis(&[
        "egress",
        "check",
        small_cell_table().to_str().unwrap(),
        safe_table().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "the worst file decides");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("small.csv: BLOCKED"), "{text}");
    assert!(text.contains("min-cell-count blocks"), "{text}");
    assert!(
        text.contains("row 3, column 2 (count): 4"),
        "the cell is named: {text}"
    );
    assert!(text.contains("safe.csv: "), "{text}");
}

#[test]
fn a_local_policy_changes_the_rules_and_an_informing_rule_only_warns() {
    let policy = write(
        "inform.yaml",
        "name: lenient\nrules:\n  min-cell-count: {action: inform, threshold: 10}\n",
    );
    let output = trellis(&[
        "egress",
        "check",
        "--policy",
        policy.to_str().unwrap(),
        "--output",
        "json",
        small_cell_table().to_str().unwrap(),
    ]);
    let ours = records(&output);
    assert_eq!(ours[0].policy, "lenient");
    assert!(!ours[0].blocked);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let server = check_bytes(
        &Policy::load(&policy).unwrap(),
        "small.csv",
        &std::fs::read(small_cell_table()).unwrap(),
    );
    assert_eq!(ours, vec![server]);
}

#[test]
fn what_cannot_be_checked_fails_closed() {
    let missing = trellis(&[
        "egress",
        "check",
        dir().join("missing.csv").to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("missing.csv"));
    let bad_policy = write("bad.yaml", "name: ''\n");
    let refused = trellis(&[
        "egress",
        "check",
        "--policy",
        bad_policy.to_str().unwrap(),
        safe_table().to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("bad.yaml"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let usage = trellis(&["egress", "check"]);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "a usage error never reads as a pass or a warning"
    );
}

#[test]
fn completions_and_the_manual_come_from_the_same_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let output = trellis(&["completions", shell]);
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(
            script.contains("egress") && script.contains("check") && script.contains("policy"),
            "{shell}: {script}"
        );
    }
    let script = dir().join("trellis.bash");
    std::fs::write(&script, trellis(&["completions", "bash"]).stdout).unwrap();
    let sourced = Command::new("bash")
        .args([
            "-c",
            &format!("source {} && complete -p trellis", script.display()),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&sourced.stdout).contains("-F _trellis trellis"),
        "bash loads it: {sourced:?}"
    );
    let man = String::from_utf8(trellis(&["man"]).stdout).unwrap();
    assert!(
        man.starts_with(".ie") && man.contains(".TH trellis 1") && man.contains("egress"),
        "{man}"
    );
    let unknown = trellis(&["completions", "tcsh"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("possible values"));
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    use std::process::Stdio;
    for args in [vec!["completions", "bash"], vec!["man"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trellis"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&output.stderr).contains("panicked"),
            "{args:?}"
        );
    }
}
