//! `make dev`'s stand-in for a container runtime: runs each Running workspace pod's program as a
//! host process bound to its pod address (see `trellis_e2e::runtime`), until interrupted.
//!
//! ```text
//! trellis-workspace-runtime [--selector LABELS] [--state-dir DIR] [--jupyterlab VENV]
//! ```
//! Defaults: every workspace pod, `target/dev/runtime`, and the environment of
//! `TRELLIS_E2E_JUPYTERLAB` (else tests/workspace/setup-jupyterlab.sh makes or reuses it).
//! The cluster is the one `KUBECONFIG` names.

use std::path::PathBuf;
use std::process::ExitCode;

use trellis_e2e::runtime::{Runtime, RuntimeOptions, all_workspaces_selector, jupyterlab};
use trellis_e2e::{client, repo_root};

fn usage() -> ExitCode {
    eprintln!(
        "usage: trellis-workspace-runtime [--selector LABELS] [--state-dir DIR] [--jupyterlab VENV]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut selector = all_workspaces_selector();
    let mut dir = repo_root().join("target/dev/runtime");
    let mut venv: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            return usage();
        };
        match flag.as_str() {
            "--selector" => selector = value,
            "--state-dir" => dir = PathBuf::from(value),
            "--jupyterlab" => venv = Some(PathBuf::from(value)),
            _ => return usage(),
        }
    }
    let options = RuntimeOptions {
        selector,
        dir,
        jupyterlab: venv.unwrap_or_else(jupyterlab),
        pod_files: None,
    };
    eprintln!(
        "trellis-workspace-runtime: running pods matching {} (logs in {})",
        options.selector,
        options.dir.join("logs").display()
    );
    let runtime = Runtime::start(client().await, options);
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                eprintln!("trellis-workspace-runtime: cannot handle SIGTERM: {error}");
                return ExitCode::FAILURE;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    eprintln!(
        "trellis-workspace-runtime: stopping {:?}",
        runtime.running()
    );
    drop(runtime);
    ExitCode::SUCCESS
}
