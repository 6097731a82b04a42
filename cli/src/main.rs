use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::Value;
use trellis_cli::{Client, Credentials, file_sha256, session, table};

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
    /// Sign in from your own machine: the OpenID Connect device flow with the provider the API
    /// uses. Open the link shown, sign in there, and the tokens are kept (readable by you alone)
    /// in $XDG_CONFIG_HOME/trellis/session.json (else ~/.config/trellis/), refreshed as needed.
    ///
    /// Example:
    ///   trellis login --api https://trellis.example.org
    #[command(verbatim_doc_comment)]
    Login,
    /// Forget the stored sign-in.
    ///
    /// Example:
    ///   trellis logout
    #[command(verbatim_doc_comment)]
    Logout,
    /// Who you are signed in as: your roles and your projects.
    ///
    /// Examples:
    ///   trellis whoami
    ///   trellis whoami --output json | jq -r .subject
    #[command(verbatim_doc_comment)]
    Whoami {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The projects you can see.
    Projects {
        #[command(subcommand)]
        command: Projects,
    },
    /// Your workspaces in a project (`--project` or TRELLIS_PROJECT).
    Workspaces {
        #[command(subcommand)]
        command: Workspaces,
    },
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

#[derive(Subcommand)]
enum Projects {
    /// List the projects you are a member of (all of them, for admins).
    ///
    /// Examples:
    ///   trellis projects list
    ///   trellis projects list --output json | jq -r '.[].name'
    #[command(verbatim_doc_comment)]
    List {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show a project: its purpose, dates, members and templates.
    ///
    /// Example:
    ///   trellis projects show cohort-study
    #[command(verbatim_doc_comment)]
    Show {
        name: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum Workspaces {
    /// List the project's workspaces (yours; all of them for its owners).
    ///
    /// Example:
    ///   trellis workspaces list --project cohort-study
    #[command(verbatim_doc_comment)]
    List {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Request a workspace from one of the project's templates; it starts unless `--stopped`.
    ///
    /// Example:
    ///   trellis workspaces create notebook --template jupyter --project cohort-study
    #[command(verbatim_doc_comment)]
    Create {
        name: String,
        #[arg(long)]
        template: String,
        /// Create it stopped.
        #[arg(long)]
        stopped: bool,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Start a stopped workspace.
    ///
    /// Example:
    ///   trellis workspaces start notebook --project cohort-study
    #[command(verbatim_doc_comment)]
    Start {
        name: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Stop a workspace (its home volume is kept).
    ///
    /// Example:
    ///   trellis workspaces stop notebook --project cohort-study
    #[command(verbatim_doc_comment)]
    Stop {
        name: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Delete a workspace and its home volume.
    ///
    /// Example:
    ///   trellis workspaces delete notebook --project cohort-study
    #[command(verbatim_doc_comment)]
    Delete { name: String },
    /// Print the workspace's address in the gateway (sign in there with your browser).
    ///
    /// Example:
    ///   xdg-open "$(trellis workspaces open notebook --project cohort-study)"
    #[command(verbatim_doc_comment)]
    Open { name: String },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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

/// A client of the API: with the workspace's token file, `TRELLIS_TOKEN`, or else the session
/// of `trellis login` (whose API is the default).
fn client(cli: &Cli, needs_project: bool) -> anyhow::Result<Client> {
    let (credentials, session_api) = match (&cli.token_file, std::env::var("TRELLIS_TOKEN").ok()) {
        (Some(file), _) => (Credentials::TokenFile(file.clone()), None),
        (None, Some(token)) if !token.is_empty() => (Credentials::Token(token), None),
        _ => {
            let path = session::default_path().ok_or(trellis_cli::CliError::NoCredentials)?;
            let stored = session::load(&path)?.ok_or(trellis_cli::CliError::NoCredentials)?;
            (Credentials::Session(path), Some(stored.api))
        }
    };
    let api = cli
        .api
        .clone()
        .or(session_api)
        .context("set the API address: --api or TRELLIS_API_URL")?;
    let project = if needs_project {
        cli.project
            .clone()
            .context("set the project: --project or TRELLIS_PROJECT")?
    } else {
        cli.project.clone().unwrap_or_default()
    };
    Ok(Client::new(&api, &project, credentials))
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    write_stdout((serde_json::to_string_pretty(value)? + "\n").as_bytes())?;
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn workspace_rows(workspaces: &[Value]) -> String {
    let rows: Vec<Vec<String>> = workspaces
        .iter()
        .map(|w| {
            vec![
                text(&w["name"]),
                text(&w["owner"]),
                text(&w["template"]),
                if w["running"] == Value::Bool(true) {
                    "yes"
                } else {
                    "no"
                }
                .to_string(),
                text(&w["phase"]),
            ]
        })
        .collect();
    table::render(&["NAME", "OWNER", "TEMPLATE", "RUNNING", "PHASE"], &rows)
}

/// `login`, `logout`, `whoami`, `projects` and `workspaces`: for people, from their own machine.
async fn run_people(cli: &Cli) -> anyhow::Result<bool> {
    match &cli.command {
        Command::Login => {
            let path = session::default_path()
                .context("no place for the session file: set XDG_CONFIG_HOME or HOME")?;
            let api = match &cli.api {
                Some(api) => api.clone(),
                None => session::load(&path)
                    .ok()
                    .flatten()
                    .map(|s| s.api)
                    .context("which Trellis? run `trellis login --api URL`")?,
            };
            let login = session::start_login(&api).await?;
            let details = &login.details;
            let link = details
                .verification_uri_complete()
                .map(|u| u.secret().clone())
                .unwrap_or_else(|| details.verification_uri().to_string());
            eprintln!(
                "To sign in, open {link}\nand check that it shows the code {}\nWaiting for the sign-in…",
                details.user_code().secret()
            );
            let mut signed_in = login.finish().await?;
            session::save(&path, &signed_in)?;
            let me = client(cli, false)?
                .call(Method::GET, "/api/v1/me", None)
                .await?;
            signed_in.subject = me["subject"].as_str().map(String::from);
            session::save(&path, &signed_in)?;
            println!(
                "Signed in to {} as {}",
                signed_in.api,
                signed_in.subject.as_deref().unwrap_or("?")
            );
        }
        Command::Logout => {
            let path = session::default_path()
                .context("no place for the session file: set XDG_CONFIG_HOME or HOME")?;
            if session::remove(&path)? {
                println!("Signed out ({} removed)", path.display());
            } else {
                println!("Not signed in");
            }
        }
        Command::Whoami { output } => {
            let me = client(cli, false)?
                .call(Method::GET, "/api/v1/me", None)
                .await?;
            if *output == Output::Json {
                return print_json(&me).map(|()| true);
            }
            let mut out = text(&me["subject"]);
            match (me["name"].as_str(), me["email"].as_str()) {
                (Some(name), Some(email)) => out += &format!(" ({name} <{email}>)"),
                (Some(name), None) => out += &format!(" ({name})"),
                (None, Some(email)) => out += &format!(" <{email}>"),
                (None, None) => {}
            }
            let roles: Vec<String> = me["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            out += &format!(
                "\nroles: {}\n",
                if roles.is_empty() {
                    "none".to_string()
                } else {
                    roles.join(", ")
                }
            );
            let rows: Vec<Vec<String>> = me["projects"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| vec![text(&p["project"]), text(&p["role"])])
                .collect();
            if !rows.is_empty() {
                out += "\n";
                out += &table::render(&["PROJECT", "ROLE"], &rows);
            }
            write_stdout(out.as_bytes())?;
        }
        Command::Projects { command } => {
            let client = client(cli, false)?;
            match command {
                Projects::List { output } => {
                    let list = client.call(Method::GET, "/api/v1/projects", None).await?;
                    if *output == Output::Json {
                        return print_json(&list).map(|()| true);
                    }
                    let rows: Vec<Vec<String>> = list
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| {
                            vec![
                                text(&p["name"]),
                                text(&p["phase"]),
                                text(&p["endDate"]),
                                text(&p["title"]),
                            ]
                        })
                        .collect();
                    write_stdout(
                        table::render(&["NAME", "PHASE", "ENDS", "TITLE"], &rows).as_bytes(),
                    )?;
                }
                Projects::Show { name, output } => {
                    let path = format!("/api/v1/projects/{}", trellis_cli::encode_segment(name));
                    let project = client.call(Method::GET, &path, None).await?;
                    if *output == Output::Json {
                        return print_json(&project).map(|()| true);
                    }
                    let mut out = format!(
                        "{}: {}\nphase: {}\ndates: {} to {}\npurpose: {}\ntemplates: {}\n\n",
                        text(&project["name"]),
                        text(&project["title"]),
                        text(&project["phase"]),
                        text(&project["startDate"]),
                        text(&project["endDate"]),
                        text(&project["purpose"]),
                        project["templates"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(text)
                            .collect::<Vec<_>>()
                            .join(", "),
                    );
                    let members: Vec<Vec<String>> = project["members"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|m| vec![text(&m["subject"]), text(&m["role"])])
                        .collect();
                    out += &table::render(&["MEMBER", "ROLE"], &members);
                    write_stdout(out.as_bytes())?;
                }
            }
        }
        Command::Workspaces { command } => {
            let client = client(cli, true)?;
            let base = format!(
                "/api/v1/projects/{}/workspaces",
                trellis_cli::encode_segment(client.project())
            );
            let one = |name: &str| format!("{base}/{}", trellis_cli::encode_segment(name));
            let (answer, output) = match command {
                Workspaces::List { output } => {
                    let list = client.call(Method::GET, &base, None).await?;
                    if *output == Output::Text {
                        let all: Vec<Value> = list.as_array().cloned().unwrap_or_default();
                        write_stdout(workspace_rows(&all).as_bytes())?;
                        return Ok(true);
                    }
                    (list, *output)
                }
                Workspaces::Create {
                    name,
                    template,
                    stopped,
                    output,
                } => {
                    let body = serde_json::json!({"name": name, "template": template, "running": !stopped});
                    (client.call(Method::POST, &base, Some(body)).await?, *output)
                }
                Workspaces::Start { name, output } => (
                    client
                        .call(Method::POST, &format!("{}/start", one(name)), None)
                        .await?,
                    *output,
                ),
                Workspaces::Stop { name, output } => (
                    client
                        .call(Method::POST, &format!("{}/stop", one(name)), None)
                        .await?,
                    *output,
                ),
                Workspaces::Delete { name } => {
                    client.call(Method::DELETE, &one(name), None).await?;
                    println!("{name}: deleted");
                    return Ok(true);
                }
                Workspaces::Open { name } => {
                    // Asked first, so that a workspace one cannot reach is refused here.
                    client.call(Method::GET, &one(name), None).await?;
                    println!(
                        "{}/w/{}/{}/",
                        client.api(),
                        trellis_cli::encode_segment(client.project()),
                        trellis_cli::encode_segment(name)
                    );
                    return Ok(true);
                }
            };
            match output {
                Output::Json => print_json(&answer)?,
                Output::Text => write_stdout(workspace_rows(&[answer]).as_bytes())?,
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
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
    if run_people(&cli).await? {
        return Ok(());
    }
    let client = client(&cli, true)?;
    match cli.command {
        Command::Login
        | Command::Logout
        | Command::Whoami { .. }
        | Command::Projects { .. }
        | Command::Workspaces { .. } => unreachable!("handled by run_people"),
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
