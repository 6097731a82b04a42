//! `make dev`'s stand-in for a container runtime: runs each Running pod's program (a workspace's,
//! a project's DataSHIELD server's) as a host process bound to its pod address, after its init
//! containers, with its volumes made (see `trellis_e2e::runtime`), until interrupted.
//!
//! ```text
//! trellis-workspace-runtime [--selector LABELS] [--state-dir DIR] [--jupyterlab VENV] [--api-url URL]
//! ```
//! Defaults: every workspace and DataSHIELD pod, `target/dev/runtime`, the environment of
//! `TRELLIS_E2E_JUPYTERLAB` (else tests/workspace/setup-jupyterlab.sh makes or reuses it), and
//! `http://127.0.0.1:8080` as the API the pods call (`TRELLIS_API_URL`). The images' programs
//! (`trellis`, `trellis-datashield`) are found beside this binary. The cluster is the one
//! `KUBECONFIG` names.

use std::path::PathBuf;
use std::process::ExitCode;

use trellis_e2e::runtime::{PodFiles, Runtime, RuntimeOptions, jupyterlab};
use trellis_e2e::{client, repo_root};
use trellis_operator::resources::names::{
    COMPONENT_LABEL, DATASHIELD_COMPONENT, WORKSPACE_COMPONENT,
};

fn usage() -> ExitCode {
    eprintln!(
        "usage: trellis-workspace-runtime [--selector LABELS] [--state-dir DIR] [--jupyterlab VENV] [--api-url URL]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut selector =
        format!("{COMPONENT_LABEL} in ({WORKSPACE_COMPONENT},{DATASHIELD_COMPONENT})");
    let mut api_url = "http://127.0.0.1:8080".to_owned();
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
            "--api-url" => api_url = value,
            _ => return usage(),
        }
    }
    let options = RuntimeOptions {
        selector,
        dir,
        jupyterlab: venv.unwrap_or_else(jupyterlab),
        pod_files: Some(PodFiles {
            path: std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(PathBuf::from))
                .into_iter()
                .collect(),
            env: vec![("TRELLIS_API_URL".into(), api_url)],
        }),
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
