use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crd => {
            let yaml = trellis_operator::crd::to_yaml().context("serialising the CRDs")?;
            std::io::stdout()
                .write_all(yaml.as_bytes())
                .context("writing the CRDs to stdout")?;
        }
    }
    Ok(())
}
