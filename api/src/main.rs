use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use trellis_api::config::Config;
use trellis_api::store::Store;
use trellis_api::store::audit::Audit;

/// Trellis API server: identity, projects and workspaces, and the audit log.
#[derive(Parser)]
#[command(name = "trellis-api", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (reads KUBECONFIG, or the in-cluster configuration).
    Serve {
        #[arg(long, env = "TRELLIS_API_CONFIG")]
        config: PathBuf,
        /// Log format: JSON lines for production, text for a terminal.
        #[arg(long, env = "TRELLIS_LOG_FORMAT", value_enum, default_value = "json")]
        log_format: LogFormat,
    },
    /// Check a configuration file (and the files it names: client secret, egress policy, SMTP and
    /// S3 secrets) and exit.
    CheckConfig {
        #[arg(long, env = "TRELLIS_API_CONFIG")]
        config: PathBuf,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exits non-zero and names the first broken record if it is broken.
    Verify {
        #[arg(long, env = "TRELLIS_API_CONFIG")]
        config: PathBuf,
    },
    /// Write every record as JSON Lines (to stdout, or to a file).
    Export {
        #[arg(long, env = "TRELLIS_API_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

async fn open_audit(config: &std::path::Path) -> anyhow::Result<Audit> {
    let config = Config::load(config)?;
    let store = Store::open(&config.database_url(), 2)
        .await
        .context("opening the database")?;
    Ok(Audit::new(store))
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: finishing requests in flight");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve { config, log_format } => {
            init_logs(log_format);
            let config = Config::load(&config)?;
            let client = kube::Client::try_default()
                .await
                .context("connecting to Kubernetes")?;
            let state = trellis_api::server::build(config, client).await?;
            trellis_api::server::serve(state, shutdown_signal()).await?;
        }
        Command::CheckConfig { config } => {
            let loaded = Config::load(&config)?;
            loaded.client_secret()?;
            trellis_api::notify::check(&loaded)?;
            // An S3 store is built (secret and CA files read) but not contacted.
            if loaded.airlock.s3.is_some() {
                trellis_api::airlock::storage::BlobStore::from_config(&loaded)?;
            }
            if let Some(policy) = &loaded.airlock.egress_policy {
                trellis_api::disclosure::Policy::load(policy)?;
            }
            println!("{}: valid", config.display());
        }
        Command::Audit {
            command: AuditCommand::Verify { config },
        } => {
            let audit = open_audit(&config).await?;
            match audit.verify().await? {
                Ok(count) => println!("audit log intact: {count} records"),
                Err(found) => {
                    eprintln!("audit log broken at record {}: {}", found.seq, found.reason);
                    std::process::exit(1);
                }
            }
        }
        Command::Audit {
            command: AuditCommand::Export { config, output },
        } => {
            let audit = open_audit(&config).await?;
            let count = match output {
                Some(path) => {
                    // Written beside the target and renamed, so a failed export leaves no
                    // half-written file behind.
                    let partial = path.with_extension("partial");
                    let mut file = std::io::BufWriter::new(
                        std::fs::File::create(&partial)
                            .with_context(|| format!("creating {}", partial.display()))?,
                    );
                    let count = audit.export(&mut file).await?;
                    file.flush()?;
                    std::fs::rename(&partial, &path)?;
                    count
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut out = std::io::BufWriter::new(stdout.lock());
                    let count = audit.export(&mut out).await?;
                    out.flush()?;
                    count
                }
            };
            eprintln!("exported {count} audit records");
        }
    }
    Ok(())
}
