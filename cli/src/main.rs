use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use trellis_cli::{Client, Credentials, file_sha256};

/// trellis: Trusted Research Environment client. Inside a workspace, the API address, the
/// project and the token come from the environment the workspace is started with.
#[derive(Parser)]
#[command(name = "trellis", version)]
struct Cli {
    /// The Trellis API.
    #[arg(long, env = "TRELLIS_API_URL", global = true)]
    api: Option<String>,
    /// The project.
    #[arg(long, env = "TRELLIS_PROJECT", global = true)]
    project: Option<String>,
    /// A file holding the bearer token (a workspace's projected service-account token).
    #[arg(long, env = "TRELLIS_TOKEN_FILE", global = true)]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Results out of the project, through review.
    Egress {
        #[command(subcommand)]
        command: Egress,
    },
    /// The project's approved input data.
    Inputs {
        #[command(subcommand)]
        command: Inputs,
    },
    /// A project's DataSHIELD server (run by its pod).
    Datashield {
        #[command(subcommand)]
        command: Datashield,
    },
    /// Print a shell completion script.
    ///
    /// Examples:
    ///   trellis completions bash > ~/.local/share/bash-completion/completions/trellis
    ///   trellis completions zsh > "${fpath[1]}/_trellis"
    ///   trellis completions fish > ~/.config/fish/completions/trellis.fish
    #[command(verbatim_doc_comment)]
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff), made from the same definitions as `--help`.
    ///
    /// Example:
    ///   trellis man > trellis.1 && man ./trellis.1
    #[command(verbatim_doc_comment)]
    Man,
}

#[derive(Subcommand)]
enum Egress {
    /// Open a new egress request; prints its id.
    New {
        #[arg(long)]
        title: String,
        /// What the outputs are and how they were made, for the output checkers.
        #[arg(long, default_value = "")]
        context: String,
        /// The disclosure controls applied (suppression, rounding…).
        #[arg(long, default_value = "")]
        controls: String,
    },
    /// Add files to a draft (or returned) request.
    Add {
        id: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Submit the request: the disclosure checks run, then output checkers review it.
    Submit { id: String },
    /// Show a request's state, files and checks.
    Status { id: String },
    /// Run the disclosure checks on files here, before submitting them: the server's own checks
    /// (the same code, the same policy format). Needs no API. Exit status: 0 every rule passed,
    /// 1 warnings (for the output checkers' eye, or a failure the policy only reports), 2 a
    /// blocking failure (the server would refuse the submission) or a usage error, 3 a file or
    /// the policy could not be read.
    ///
    /// Examples:
    ///   trellis egress check results/table1.csv results/summary.txt
    ///   trellis egress check --policy policies/egress/default.yaml --output json out.csv
    ///   trellis egress check out.csv || echo "not ready to submit"
    #[command(verbatim_doc_comment)]
    Check {
        /// The files to check (each under its own name, as it would be submitted).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The egress policy (YAML, as the API's `airlock.egress_policy`); without one, the
        /// built-in default rules, as a Trellis API without a policy file applies them.
        #[arg(long, env = "TRELLIS_EGRESS_POLICY")]
        policy: Option<PathBuf>,
        /// `text` for people, `json` (the disclosure records, as the API stores them) for scripts.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

/// Exit status of `egress check` when it could not check: never 0 or 1, so a gate fails closed.
const CHECK_ERROR: i32 = 3;

/// `trellis egress check`; its exit status is the verdict.
fn check(files: &[PathBuf], policy: Option<&PathBuf>, output: Output) -> anyhow::Result<i32> {
    let policy = match policy {
        Some(path) => trellis_disclosure::Policy::load(path)?,
        None => trellis_disclosure::Policy::with_defaults("default"),
    };
    let records = trellis_cli::check::check_files(&policy, files)?;
    let report = match output {
        Output::Text => trellis_cli::check::render(&records),
        Output::Json => serde_json::to_string_pretty(&records)? + "\n",
    };
    write_stdout(report.as_bytes())?;
    Ok(trellis_cli::check::verdict(&records) as i32)
}

#[derive(Subcommand)]
enum Datashield {
    /// Fetch the tables a project's DataSHIELD server holds (its init container runs this): the
    /// released ingress files the tables file names, each checked against its SHA-256, laid out
    /// as DIR/<project>/<table>.csv|.parquet with <table>.dictionary.yaml beside it.
    ///
    /// Example:
    ///   trellis datashield tables --spec /etc/trellis-datashield/tables.yaml --to /data/tables
    #[command(verbatim_doc_comment)]
    Tables {
        /// The tables file: `{project, tables: [{name, request, file, dictionary}]}`.
        #[arg(long)]
        spec: PathBuf,
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Subcommand)]
enum Inputs {
    /// Write the files of every released ingress request into DIR/<request>/ (read-only),
    /// fetching only what is missing or changed.
    Sync {
        #[arg(long, default_value = "/data/inputs")]
        to: PathBuf,
    },
}

fn client(cli: &Cli) -> anyhow::Result<Client> {
    let api = cli
        .api
        .clone()
        .context("set the API address: --api or TRELLIS_API_URL")?;
    let project = cli
        .project
        .clone()
        .context("set the project: --project or TRELLIS_PROJECT")?;
    let credentials = match (&cli.token_file, std::env::var("TRELLIS_TOKEN").ok()) {
        (Some(file), _) => Credentials::TokenFile(file.clone()),
        (None, Some(token)) if !token.is_empty() => Credentials::Token(token),
        _ => bail!(trellis_cli::CliError::NoCredentials),
    };
    Ok(Client::new(&api, &project, credentials))
}

fn print_request(request: &Value) {
    println!(
        "{}  {}  state: {}  round: {}",
        request["id"].as_str().unwrap_or("?"),
        request["title"].as_str().unwrap_or(""),
        request["state"].as_str().unwrap_or("?"),
        request["round"]
    );
    for file in request["files"].as_array().into_iter().flatten() {
        let checks = &file["disclosure"];
        let summary = if checks.is_null() {
            "not checked yet".to_string()
        } else {
            let failed: Vec<&str> = checks["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["outcome"] == "fail")
                .filter_map(|r| r["rule"].as_str())
                .collect();
            let verdict = if checks["blocked"] == Value::Bool(true) {
                "BLOCKED"
            } else {
                "ok"
            };
            if failed.is_empty() {
                format!("checks: {verdict}")
            } else {
                format!("checks: {verdict} (failed: {})", failed.join(", "))
            }
        };
        println!(
            "  {}  {} bytes  sha256 {}  {summary}",
            file["name"].as_str().unwrap_or("?"),
            file["size"],
            file["sha256"].as_str().unwrap_or("?")
        );
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = client(&cli)?;
    match cli.command {
        Command::Egress {
            command: Egress::Check { .. },
        } => bail!("egress check needs no API and is run before one is contacted"),
        Command::Completions { .. } | Command::Man => {
            bail!("completions and the manual need no API and are written before one is contacted")
        }
        Command::Egress {
            command:
                Egress::New {
                    title,
                    context,
                    controls,
                },
        } => {
            let request = client.create("egress", &title, &context, &controls).await?;
            println!("{}", request["id"].as_str().unwrap_or_default());
        }
        Command::Egress {
            command: Egress::Add { id, files },
        } => {
            for path in files {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .with_context(|| format!("{}: not a file name", path.display()))?
                    .to_string();
                let size = std::fs::metadata(&path)
                    .with_context(|| path.display().to_string())?
                    .len();
                // Shown on a terminal only (indicatif hides it otherwise).
                let bar = ProgressBar::new(size).with_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar.set_message(name.clone());
                let ticker = bar.clone();
                let stored = client
                    .upload(&id, &path, &name, move |n| ticker.inc(n))
                    .await;
                bar.finish_and_clear();
                let stored = stored?;
                println!(
                    "{name}  {} bytes  sha256 {}",
                    stored["size"],
                    stored["sha256"].as_str().unwrap_or("?")
                );
            }
        }
        Command::Egress {
            command: Egress::Submit { id },
        } => {
            let request = client.submit(&id).await?;
            print_request(&request);
            if request["state"] == "blocked" {
                bail!(
                    "the request is blocked by the disclosure checks above; make a new request without those findings"
                );
            }
        }
        Command::Egress {
            command: Egress::Status { id },
        } => print_request(&client.request(&id).await?),
        Command::Datashield {
            command: Datashield::Tables { spec, to },
        } => {
            let written = trellis_cli::datashield::fetch_tables(&client, &spec, &to).await?;
            println!("DataSHIELD tables in {}: {written} files", to.display());
        }
        Command::Inputs {
            command: Inputs::Sync { to },
        } => {
            let mut fetched = 0;
            let mut current = 0;
            for request in client.requests().await? {
                if request["direction"] != "ingress" || request["state"] != "released" {
                    continue;
                }
                let id = request["id"].as_str().unwrap_or_default();
                let dir = to.join(id);
                std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
                for file in request["files"].as_array().into_iter().flatten() {
                    let (Some(name), Some(sha256)) =
                        (file["name"].as_str(), file["sha256"].as_str())
                    else {
                        continue;
                    };
                    let target = dir.join(name);
                    if file_sha256(&target).as_deref() == Some(sha256) {
                        current += 1;
                        continue;
                    }
                    client.download(id, name, sha256, &target).await?;
                    eprintln!("fetched {}", target.display());
                    fetched += 1;
                }
            }
            println!(
                "inputs in {}: {fetched} fetched, {current} already current",
                to.display()
            );
        }
    }
    Ok(())
}

/// Writes what needs neither the API nor a project; `None` when the command needs them.
fn offline(command: &Command) -> Option<anyhow::Result<()>> {
    use clap::CommandFactory;
    let mut definition = Cli::command();
    // Made in memory first: the generators panic on a failed write, and a reader that stops
    // early (`| head`) is not an error.
    let mut text = Vec::new();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut definition, "trellis", &mut text)
        }
        Command::Man => {
            if let Err(error) = clap_mangen::Man::new(definition).render(&mut text) {
                return Some(Err(error.into()));
            }
        }
        _ => return None,
    }
    Some(write_stdout(&text).map_err(Into::into))
}

/// Writes to standard output; a reader that stopped early (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Some(result) = offline(&cli.command) {
        if let Err(error) = result {
            eprintln!("trellis: {error:#}");
            std::process::exit(1);
        }
        return;
    }
    if let Command::Egress {
        command:
            Egress::Check {
                files,
                policy,
                output,
            },
    } = &cli.command
    {
        let status = check(files, policy.as_ref(), *output).unwrap_or_else(|error| {
            eprintln!("trellis: {error:#}");
            CHECK_ERROR
        });
        std::process::exit(status);
    }
    if let Err(error) = run(cli).await {
        eprintln!("trellis: {error:#}");
        std::process::exit(1);
    }
}
