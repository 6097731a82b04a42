use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use kube::Client;
use kube::runtime::events::Recorder;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::{error, info};
use trellis_operator::config::{
    ComputeResources, DEFAULT_DATASHIELD_IMAGE, OperatorConfig, parse_labels, parse_quantity,
};
use trellis_operator::metrics::Metrics;
use trellis_operator::project::controller;
use trellis_operator::server::{Health, router};

/// Trellis operator: turns approved research projects into isolated workspaces on Kubernetes.
#[derive(Parser)]
#[command(name = "trellis-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML.
    Crd,
    /// Run the controllers (reads KUBECONFIG, or the in-cluster configuration).
    Run(Box<RunArgs>),
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Log format: JSON lines for production, text for a terminal.
    #[arg(long, env = "TRELLIS_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: LogFormat,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(
        long,
        env = "TRELLIS_OPERATOR_HTTP_ADDRESS",
        default_value = "0.0.0.0:8080"
    )]
    http_address: SocketAddr,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "trellis-system")]
    lease_namespace: String,
    #[arg(long, default_value = "trellis-operator")]
    lease_name: String,
    /// Seconds a leader holds the Lease without renewing it; a standby takes over after that.
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: u64,
    /// This replica's name in leader election and Events.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Namespace of the Trellis API (gateway and airlock).
    #[arg(
        long,
        env = "TRELLIS_CONTROL_PLANE_NAMESPACE",
        default_value = "trellis-system"
    )]
    control_plane_namespace: String,
    /// Labels of the gateway pods, allowed into workspaces (key=value,…).
    #[arg(long, default_value = "app.kubernetes.io/name=trellis-api")]
    gateway_pods: String,
    /// Labels of the airlock pods, the only place workspaces may reach (key=value,…).
    #[arg(long, default_value = "app.kubernetes.io/name=trellis-api")]
    airlock_pods: String,
    #[arg(long, default_value_t = 8443)]
    airlock_port: u16,
    #[arg(long, default_value = "kube-system")]
    dns_namespace: String,
    #[arg(long, default_value = "k8s-app=kube-dns")]
    dns_pods: String,
    /// Manage only the Projects matching this label selector.
    #[arg(long, env = "TRELLIS_PROJECT_SELECTOR")]
    project_selector: Option<String>,
    /// The Trellis API as workspaces reach it.
    #[arg(
        long,
        env = "TRELLIS_API_URL",
        default_value = "http://trellis-api.trellis-system.svc:8443"
    )]
    api_url: String,
    /// Image of the `trellis` CLI, run as each workspace's init container to fill its inputs.
    #[arg(long, env = "TRELLIS_CLI_IMAGE", default_value = "trellis/cli:0.1.0")]
    cli_image: String,
    /// Image of the DataSHIELD server of each project with `spec.datashield.enabled`.
    #[arg(long, env = "TRELLIS_DATASHIELD_IMAGE", default_value = DEFAULT_DATASHIELD_IMAGE)]
    datashield_image: String,
    /// CPU and memory the DataSHIELD server requests and is limited to (Kubernetes quantities).
    #[arg(long, default_value = "250m")]
    datashield_cpu_request: String,
    #[arg(long, default_value = "1")]
    datashield_cpu_limit: String,
    #[arg(long, default_value = "512Mi")]
    datashield_memory_request: String,
    #[arg(long, default_value = "1Gi")]
    datashield_memory_limit: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => {
            let yaml = trellis_operator::crd::to_yaml().context("serialising the CRDs")?;
            std::io::stdout()
                .write_all(yaml.as_bytes())
                .context("writing the CRDs to stdout")?;
            Ok(())
        }
        Command::Run(args) => run(*args).await,
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,kube_runtime=warn,kube_lease_manager=warn")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

fn quantity(flag: &'static str, text: String) -> anyhow::Result<String> {
    Ok(parse_quantity(flag, text)?)
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let config = OperatorConfig {
        control_plane_namespace: args.control_plane_namespace,
        gateway_pods: parse_labels("--gateway-pods", &args.gateway_pods)?,
        airlock_pods: parse_labels("--airlock-pods", &args.airlock_pods)?,
        airlock_port: args.airlock_port,
        dns_namespace: args.dns_namespace,
        dns_pods: parse_labels("--dns-pods", &args.dns_pods)?,
        project_selector: args.project_selector,
        api_url: args.api_url,
        cli_image: args.cli_image,
        datashield_image: args.datashield_image,
        datashield_resources: ComputeResources {
            cpu_request: quantity("--datashield-cpu-request", args.datashield_cpu_request)?,
            cpu_limit: quantity("--datashield-cpu-limit", args.datashield_cpu_limit)?,
            memory_request: quantity(
                "--datashield-memory-request",
                args.datashield_memory_request,
            )?,
            memory_limit: quantity("--datashield-memory-limit", args.datashield_memory_limit)?,
        },
    };
    let identity = match args.identity {
        Some(identity) => identity,
        None => format!(
            "{}-{}",
            hostname::get()?.to_string_lossy(),
            std::process::id()
        ),
    };
    let client = Client::try_default()
        .await
        .context("connecting to Kubernetes")?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));

    let listener = tokio::net::TcpListener::bind(args.http_address)
        .await
        .with_context(|| format!("binding the HTTP address {}", args.http_address))?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let app = router(Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
    });
    let mut server_shutdown = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|stop| *stop).await;
            })
            .await
    });
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutting down");
        let _ = shutdown_tx.send(true);
    });

    let leases = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(args.lease_duration_seconds)
        .with_grace(args.lease_duration_seconds.div_ceil(3).max(1))
        .build()
        .await
        .context("setting up leader election")?;
    let (mut leader, lease_task) = leases.watch().await;
    ready.store(true, Ordering::Relaxed);
    info!(%identity, lease = %args.lease_name, namespace = %args.lease_namespace, "waiting for leadership");

    let mut shutdown = shutdown_rx.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            changed = leader.wait_for(|leading| *leading) => { changed.context("leader election stopped")?; }
        }
        info!(%identity, "became the leader; starting controllers");
        metrics.leader.set(1);
        let recorder = Recorder::new(
            client.clone(),
            trellis_operator::reconcile::events::reporter(&identity),
        );
        let stop = |mut shutdown: watch::Receiver<bool>| async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        let projects = controller::run(
            client.clone(),
            config.clone(),
            recorder.clone(),
            metrics.clone(),
            stop(shutdown_rx.clone()),
        );
        let workspaces = trellis_operator::workspace::controller::run(
            client.clone(),
            config.clone(),
            recorder,
            metrics.clone(),
            stop(shutdown_rx.clone()),
        );
        let images = trellis_operator::workspace::images::publish(
            client.clone(),
            config.clone(),
            metrics.clone(),
        );
        let controllers = async move {
            tokio::select! {
                _ = async { tokio::join!(projects, workspaces) } => {}
                () = images => {}
            }
        };
        tokio::select! {
            () = controllers => {}
            lost = leader.wait_for(|leading| !*leading) => {
                lost.context("leader election stopped")?;
                error!(%identity, "lost the leader lease; stopping controllers until it is regained");
            }
        }
        metrics.leader.set(0);
        metrics.count_projects_in(None);
        if *shutdown_rx.borrow() {
            break;
        }
    }

    // Give the lease up at once so a standby takes over without waiting for it to expire.
    drop(leader);
    if let Ok(Ok(Ok(manager))) = tokio::time::timeout(Duration::from_secs(5), lease_task).await
        && let Err(error) = manager.release().await
    {
        error!(%error, "could not release the leader lease");
    }
    server
        .await
        .context("HTTP server task")?
        .context("HTTP server")?;
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
}
