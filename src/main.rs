//! The `ocisource` binary: thin wiring of the library's faces.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};

// jemalloc, not glibc's malloc: over an hour at 10,000 objects glibc's resident memory rose a
// little after each burst of new revisions while the memory in use stayed flat (the freed
// chunks stayed in its heap as fragments); jemalloc's stayed flat, and 3-4 MiB lower.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The version line: the crate version and the commit (build.rs; "unknown" without git).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("OCISOURCE_COMMIT"),
    ")"
);

/// A drop-in, Rust implementation of Flux's OCIRepository source.
#[derive(Parser)]
#[command(name = "ocisource", version = VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the OCIRepository CustomResourceDefinition (v1 and v1beta2) as YAML.
    Crds,
    /// Run the controller: reconcile OCIRepository objects and serve their artifacts.
    Controller(Box<ocisource::cli::ControllerArgs>),
    /// Reconcile one OCIRepository manifest without a cluster and print it with its new status
    /// (exit 0 when Ready, 2 when Stalled, 1 otherwise).
    Reconcile(ocisource::standalone::ReconcileArgs),
    /// Push artifacts to an OCI registry (`push artifact`, as `flux push artifact`).
    #[command(subcommand)]
    Push(ocisource::artifact::PushCommand),
    /// Pull artifacts from an OCI registry (`pull artifact`, as `flux pull artifact`).
    #[command(subcommand)]
    Pull(ocisource::artifact::PullCommand),
    /// Tag artifacts in an OCI registry (`tag artifact`, as `flux tag artifact`).
    #[command(subcommand)]
    Tag(ocisource::artifact::TagCommand),
    /// List artifacts in an OCI repository (`list artifacts`, as `flux list artifacts`).
    #[command(subcommand)]
    List(ocisource::artifact::ListCommand),
    /// Compare local files with artifacts (`diff artifact`, as `flux diff artifact`).
    #[command(subcommand)]
    Diff(ocisource::artifact::DiffCommand),
    /// Build artifacts locally (`build artifact`, as `flux build artifact`).
    #[command(subcommand)]
    Build(ocisource::artifact::BuildCommand),
    /// Verify artifact signatures as the controller does (`verify artifact`; not in flux).
    #[command(subcommand)]
    Verify(ocisource::artifact::VerifyCommand),
    /// Print a shell completion script (as `flux completion`).
    #[command(after_help = COMPLETION_EXAMPLES)]
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// The shells `completion` writes scripts for (flux's four).
#[derive(ValueEnum, Clone, Copy, Debug)]
enum Shell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
    /// PowerShell.
    Powershell,
}

const COMPLETION_EXAMPLES: &str = "\
Examples:
  # Load completions into the current bash session
  source <(ocisource completion bash)

  # Install them for every new bash session
  ocisource completion bash > /etc/bash_completion.d/ocisource

  # Zsh: a file named _ocisource in a directory of $fpath
  ocisource completion zsh > \"${fpath[1]}/_ocisource\"

  # Fish
  ocisource completion fish > ~/.config/fish/completions/ocisource.fish

  # PowerShell: load them into the current session
  ocisource completion powershell | Out-String | Invoke-Expression";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line, as tools driving the CLI expect: a cause's own snippet (YAML parse
            // errors draw one) stays out.
            let chain: Vec<String> = e
                .chain()
                .filter_map(|c| {
                    let text = c.to_string();
                    let first = text.lines().next().unwrap_or_default().trim().to_string();
                    (!first.is_empty()).then_some(first)
                })
                .collect();
            eprintln!(
                "error: {}",
                ocisource::core::message::sanitize(&chain.join(": "))
            );
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Crds => {
            let yaml = ocisource::api::crd_yaml().context("failed to render the CRD")?;
            std::io::stdout()
                .write_all(yaml.as_bytes())
                .context("failed to write the CRD")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Controller(args) => {
            init_controller_logging(&args.observability);
            rustls_provider();
            let runtime = tokio::runtime::Runtime::new().context("failed to start the runtime")?;
            runtime.block_on(ocisource::k8s::manager::run(*args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reconcile(args) => {
            init_logging();
            rustls_provider();
            let runtime = tokio::runtime::Runtime::new().context("failed to start the runtime")?;
            let result = runtime.block_on(ocisource::standalone::run(&args))?;
            std::io::stdout()
                .write_all(result.rendered.as_bytes())
                .context("failed to write the result")?;
            Ok(ExitCode::from(result.exit_code))
        }
        Command::Push(ocisource::artifact::PushCommand::Artifact(args)) => {
            if args.debug {
                init_logging_at("ocisource=debug");
            }
            producer(ocisource::artifact::push::run(&args))
        }
        Command::Pull(ocisource::artifact::PullCommand::Artifact(args)) => {
            producer(ocisource::artifact::pull::run(&args))
        }
        Command::Tag(ocisource::artifact::TagCommand::Artifact(args)) => {
            producer(ocisource::artifact::tag::run(&args))
        }
        Command::List(ocisource::artifact::ListCommand::Artifacts(args)) => {
            producer(ocisource::artifact::list::run(&args))
        }
        Command::Diff(ocisource::artifact::DiffCommand::Artifact(args)) => {
            producer(ocisource::artifact::diff::run(&args))
        }
        Command::Verify(ocisource::artifact::VerifyCommand::Artifact(args)) => {
            // The report carries the verifier's conclusion; its warnings (a signature that did
            // not verify) would only repeat it on stderr, which `-o` keeps empty.
            init_logging_at("error");
            rustls_provider();
            let runtime = tokio::runtime::Runtime::new().context("failed to start the runtime")?;
            match runtime.block_on(ocisource::artifact::verify::run(&args)) {
                Ok(report) if report.verified => Ok(ExitCode::SUCCESS),
                Ok(_) => Ok(ExitCode::from(1)),
                // Only unusable flags or material end here: clap's status for bad arguments.
                Err(e) => {
                    eprintln!("error: {}", ocisource::core::message::render(&e));
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Completion { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
                Shell::Powershell => clap_complete::Shell::PowerShell,
            };
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ocisource", &mut script);
            std::io::stdout()
                .write_all(&script)
                .context("failed to write the completion script")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build(ocisource::artifact::BuildCommand::Artifact(args)) => {
            init_logging();
            ocisource::artifact::build::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs one producer verb to completion on a fresh runtime.
fn producer<E>(verb: impl std::future::Future<Output = Result<(), E>>) -> anyhow::Result<ExitCode>
where
    E: std::error::Error + Send + Sync + 'static,
{
    init_logging();
    rustls_provider();
    let runtime = tokio::runtime::Runtime::new().context("failed to start the runtime")?;
    runtime.block_on(verb)?;
    Ok(ExitCode::SUCCESS)
}

// Logs go to stderr so that stdout carries only the object.
fn init_logging() {
    init_logging_at("warn");
}

// `RUST_LOG` wins over `default`; the first initialisation wins over later ones.
fn init_logging_at(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

// reqwest and kube both use rustls with aws-lc-rs; installing it explicitly avoids an ambiguous
// process default if another provider is ever compiled in.
fn rustls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn init_controller_logging(o: &ocisource::cli::ObservabilityArgs) {
    use ocisource::cli::{LogEncoding, LogLevel};
    let level = match o.log_level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Error => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},kube=warn,hyper=warn"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match o.log_encoding {
        LogEncoding::Json => builder.json().try_init(),
        LogEncoding::Console => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The words of a shell command line: '…' and "…" quoting, nothing expanded.
    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut word = String::new();
        let mut quote = None;
        let mut in_word = false;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    in_word = true;
                }
                (None, c) if c.is_whitespace() => {
                    if in_word {
                        out.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                (None, c) => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            out.push(word);
        }
        out
    }

    /// The `ocisource …` command lines of an `Examples:` block: continuation lines joined, what
    /// precedes it in a pipe or a process substitution, and a pipe or redirection after it,
    /// dropped.
    fn example_commands(help: &str) -> Vec<Vec<String>> {
        let joined = help.replace("\\\n", " ");
        joined
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| {
                let start = l.find("ocisource ")?;
                let mut cmd = &l[start..];
                if l[..start].ends_with("<(") {
                    cmd = cmd.split(')').next().unwrap_or(cmd);
                }
                Some(
                    words(cmd)
                        .into_iter()
                        .take_while(|w| w != "|" && w != ">")
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_verb_has_examples_and_each_parses() {
        let mut root = Cli::command();
        root.build();
        let mut checked = 0;
        for verb in root.get_subcommands().filter(|c| c.get_name() != "help") {
            let leaves: Vec<&clap::Command> = if verb.has_subcommands() {
                verb.get_subcommands()
                    .filter(|c| c.get_name() != "help")
                    .collect()
            } else {
                vec![verb]
            };
            for leaf in leaves {
                let name = format!("{} {}", verb.get_name(), leaf.get_name());
                let producer = verb.has_subcommands() || verb.get_name() == "completion";
                let Some(help) = leaf.get_after_help().map(|h| h.to_string()) else {
                    assert!(!producer, "{name}: no examples");
                    continue;
                };
                assert!(help.starts_with("Examples:\n"), "{name}");
                let commands = example_commands(&help);
                assert!(commands.len() >= 2, "{name}: {commands:?}");
                for args in commands {
                    if let Err(e) = Cli::try_parse_from(&args) {
                        panic!("{name}: {args:?}: {e}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked >= 20, "{checked} example commands");
    }

    #[test]
    fn shell_words_split_as_the_examples_need() {
        assert_eq!(
            words(r#"a --x="$(git rev-parse HEAD)" --y='b c' -o json"#),
            ["a", "--x=$(git rev-parse HEAD)", "--y=b c", "-o", "json"]
        );
        assert_eq!(
            example_commands(
                "Examples:\n  # c\n  k build | ocisource push artifact \\\n    -f - x > y\n  \
                 source <(ocisource completion bash)\n"
            ),
            [
                words("ocisource push artifact -f - x"),
                words("ocisource completion bash")
            ]
        );
    }
}
