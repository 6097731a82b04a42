use clap::Parser;

/// Trellis API server.
#[derive(Parser)]
#[command(name = "trellis-api", version)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    Cli::parse();
    Ok(())
}
