//! The `ocisource` binary: thin wiring of the library's faces.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// A drop-in, Rust implementation of Flux's OCIRepository source.
#[derive(Parser)]
#[command(name = "ocisource", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the OCIRepository CustomResourceDefinition (v1 and v1beta2) as YAML.
    Crds,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => {
            let yaml = ocisource::api::crd_yaml().context("failed to render the CRD")?;
            std::io::stdout()
                .write_all(yaml.as_bytes())
                .context("failed to write the CRD")?;
        }
    }
    Ok(())
}
