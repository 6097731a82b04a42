//! Runs the real `trellis-operator` binary as a child process, as it runs in a cluster.
//!
//! Each test gives its operator a project label selector and its own lease, so operators of
//! tests running side by side never manage each other's projects.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, process_memory, state_dir, target_profile_dir, unique_name};

/// The label that assigns a test's Projects to that test's operator.
pub const RUN_LABEL: &str = "e2e.trellis.dev/run";

pub struct Operator {
    pub identity: String,
    pub http: String,
    child: Child,
}

/// Trellis's own namespace: leases, and the images ConfigMap.
/// A kubeconfig holding the chart's operator ServiceAccount token, when set.
pub const IDENTITY_KUBECONFIG: &str = "TRELLIS_E2E_OPERATOR_KUBECONFIG";

pub const CONTROL_PLANE_NAMESPACE: &str = "trellis-system";

/// Settings shared by the replicas of one test's operator.
#[derive(Clone, Debug)]
pub struct OperatorSettings {
    pub run: String,
    pub lease_namespace: String,
    pub lease_duration_seconds: u64,
}

impl Default for OperatorSettings {
    fn default() -> Self {
        Self::new()
    }
}

impl OperatorSettings {
    /// Settings for a new test run, with its own run label value and lease.
    pub fn new() -> Self {
        Self {
            run: unique_name("run"),
            lease_namespace: CONTROL_PLANE_NAMESPACE.to_owned(),
            lease_duration_seconds: 15,
        }
    }
}

impl Operator {
    /// Starts one replica. Its logs go to target/e2e-logs/<identity>.log.
    pub fn start(settings: &OperatorSettings) -> Self {
        let identity = unique_name("operator");
        let http = format!("127.0.0.1:{}", free_port());
        let binary = target_profile_dir().join("trellis-operator");
        assert!(
            binary.exists(),
            "{} is missing: run `cargo build -p trellis-operator` first",
            binary.display()
        );
        let log = std::fs::File::create(state_dir("operators").join(format!("{identity}.log")))
            .expect("creating a log file");
        let mut command = Command::new(binary);
        // Under `make test`, the operator runs as the chart's ServiceAccount (tests/run-e2e.sh),
        // which proves the chart's RBAC is enough.
        if let Ok(kubeconfig) = std::env::var(IDENTITY_KUBECONFIG) {
            command.env("KUBECONFIG", kubeconfig);
        }
        let child = command
            .args(["run", "--http-address", &http, "--identity", &identity])
            .args([
                "--lease-namespace",
                &settings.lease_namespace,
                "--lease-name",
                &settings.run,
            ])
            .args([
                "--lease-duration-seconds",
                &settings.lease_duration_seconds.to_string(),
            ])
            .args([
                "--project-selector",
                &format!("{RUN_LABEL}={}", settings.run),
            ])
            .env("RUST_LOG", "info,kube_runtime=warn")
            .stdout(Stdio::from(log.try_clone().expect("a log file handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting trellis-operator");
        Self {
            identity,
            http,
            child,
        }
    }

    /// Resident memory now and at its peak, in bytes, from /proc.
    pub fn memory(&self) -> (u64, u64) {
        process_memory(self.child.id())
    }

    /// SIGKILL: the process gets no chance to clean up, as when a node dies.
    pub fn kill(mut self) {
        self.child.kill().expect("killing the operator");
        self.child.wait().expect("reaping the operator");
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("sending SIGTERM");
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("polling the operator") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the operator did not exit within 10s of SIGTERM");
    }

    /// GETs one of the operator's HTTP endpoints, waiting for it to listen.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.http);
        for _ in 0..100 {
            if let Ok(response) = reqwest::get(&url).await {
                let status = response.status().as_u16();
                return (status, response.text().await.expect("a response body"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the operator never answered on {url}");
    }

    /// A sample from /metrics (0 when the series does not exist yet).
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
