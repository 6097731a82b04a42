use clap::Parser;

/// trellis-datashield: a DataSHIELD server speaking Opal's protocol.
#[derive(Parser)]
#[command(version)]
enum Command {
    /// Serve the tables in a data directory under a profile.
    Serve,
}

fn main() -> anyhow::Result<()> {
    let Command::Serve = Command::parse();
    anyhow::bail!("serve is not wired yet")
}
