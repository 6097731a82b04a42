use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use trellis_datashield::catalogue::Catalogue;
use trellis_datashield::http::{self, AppState, Authenticator, Tokens};
use trellis_datashield::profile::Profile;
use trellis_datashield::session::{Limits, Service};

/// trellis-datashield: a DataSHIELD server that speaks Opal's protocol, without R.
#[derive(Parser)]
#[command(version)]
enum Command {
    /// Serve the tables of a data directory (`<dir>/<project>/<table>.csv`) to DataSHIELD clients.
    Serve(Serve),
    /// Print the SHA-256 digest of a token read from standard input, for the tokens file.
    HashToken,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("callers").required(true)))]
#[command(group(clap::ArgGroup::new("seeds").required(true)))]
struct Serve {
    /// The data directory: one folder per project, one CSV file (and optional
    /// `<table>.dictionary.yaml`) per table.
    #[arg(long, env = "TRELLIS_DATASHIELD_DATA")]
    data: PathBuf,
    /// A profile file (repeat for several). Without one, a profile named `default` allows every
    /// implemented function with dsBase's default disclosure settings.
    #[arg(long = "profile", env = "TRELLIS_DATASHIELD_PROFILE")]
    profiles: Vec<PathBuf>,
    /// The tokens file: `users: [{name, token_sha256}]`, for a server that checks people's
    /// tokens itself.
    #[arg(long, env = "TRELLIS_DATASHIELD_TOKENS", group = "callers")]
    tokens: Option<PathBuf>,
    /// A file holding the secret of the one proxy trusted to call (the Trellis API), which names
    /// the person it forwards in `X-Trellis-User`: how the server runs inside a project.
    #[arg(
        long,
        env = "TRELLIS_DATASHIELD_TRUSTED_PROXY_SECRET_FILE",
        group = "callers"
    )]
    trusted_proxy_secret_file: Option<PathBuf>,
    #[arg(
        long,
        env = "TRELLIS_DATASHIELD_LISTEN",
        default_value = "127.0.0.1:8095"
    )]
    listen: SocketAddr,
    /// `datashield.seed`: the seed of the functions that add noise. Keep it fixed and secret: a new
    /// seed per restart would let repeated calls average the noise away.
    #[arg(long, env = "TRELLIS_DATASHIELD_SEED", group = "seeds")]
    seed: Option<i32>,
    /// A file holding the seed (so that it stays out of the process's arguments).
    #[arg(long, env = "TRELLIS_DATASHIELD_SEED_FILE", group = "seeds")]
    seed_file: Option<PathBuf>,
    /// Close sessions idle for this many seconds.
    #[arg(long, env = "TRELLIS_DATASHIELD_IDLE_TIMEOUT", default_value_t = 3600)]
    idle_timeout: u64,
    /// Log as JSON lines (for production) instead of text.
    #[arg(long, env = "TRELLIS_DATASHIELD_LOG_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::HashToken => {
            let mut token = String::new();
            std::io::stdin()
                .read_line(&mut token)
                .context("reading the token from standard input")?;
            let token = token.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(!token.is_empty(), "no token on standard input");
            println!(
                "{}",
                hex::encode(trellis_datashield::http::auth_digest(token))
            );
            Ok(())
        }
        Command::Serve(serve) => run(serve).await,
    }
}

async fn run(serve: Serve) -> anyhow::Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if serve.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let catalogue = Catalogue::load(&serve.data)?;
    let profiles = if serve.profiles.is_empty() {
        vec![Profile::default_named("default")]
    } else {
        serve
            .profiles
            .iter()
            .map(|path| Profile::load(path))
            .collect::<Result<Vec<_>, _>>()?
    };
    let auth = match (&serve.tokens, &serve.trusted_proxy_secret_file) {
        (Some(tokens), _) => Authenticator::Tokens(Tokens::load(tokens)?),
        (None, Some(file)) => {
            let secret = std::fs::read_to_string(file)
                .with_context(|| format!("reading the proxy secret {}", file.display()))?;
            Authenticator::trusted_proxy(&secret)
                .map_err(|message| anyhow::anyhow!("{}: {message}", file.display()))?
        }
        (None, None) => anyhow::bail!("name who may call: --tokens or --trusted-proxy-secret-file"),
    };
    let seed = match (serve.seed, &serve.seed_file) {
        (Some(seed), _) => seed,
        (None, Some(file)) => std::fs::read_to_string(file)
            .with_context(|| format!("reading the seed {}", file.display()))?
            .trim()
            .parse()
            .with_context(|| format!("{}: the seed must be a whole number", file.display()))?,
        (None, None) => anyhow::bail!("give the seed: --seed or --seed-file"),
    };
    let limits = Limits {
        idle_timeout: Duration::from_secs(serve.idle_timeout),
        ..Limits::default()
    };
    let service = Arc::new(Service::new(catalogue, profiles, limits, seed));
    let sweeper = service.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(30));
        loop {
            every.tick().await;
            sweeper.expire_idle();
        }
    });
    let listener = tokio::net::TcpListener::bind(serve.listen)
        .await
        .with_context(|| format!("binding {}", serve.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        tables = service.catalogue().tables.len(),
        profiles = ?service.profiles().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        "trellis-datashield serving"
    );
    let app = http::router(AppState {
        service,
        auth: Arc::new(auth),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}
