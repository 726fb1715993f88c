//! `wick`: Wick's engine, headless — inspect, train, evaluate, predict, benchmark.

mod commands;
mod dataset;
mod output;
mod progress;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wick",
    version,
    about = "Train, evaluate and run machine-learning models from the command line"
)]
struct Cli {
    /// Print machine-readable JSON instead of tables and progress bars.
    #[arg(long, global = true)]
    json: bool,
    /// Print this process's peak memory to stderr afterwards (used by `wick bench`).
    #[arg(long, global = true, hide = true)]
    peak_rss: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a dataset's schema, statistics and preview (a table file or an image folder).
    Inspect {
        data: PathBuf,
        /// Summarise a CSV in one streaming pass without loading it (the default above 1 GiB).
        #[arg(long)]
        stream: bool,
    },
    /// Train a model and save it as a package.
    Train(Box<commands::train::TrainArgs>),
    /// The pretrained backbones for transfer learning (`train --backbone NAME`), their sizes and
    /// whether each is downloaded yet.
    Backbones,
    /// Score a saved model on labelled data.
    Eval { model: PathBuf, data: PathBuf },
    /// Which features a table model relies on (permutation importance, split gain for trees), and
    /// with --row N why it predicted row N.
    Explain(commands::explain::ExplainArgs),
    /// Predict with a saved model: a table file, image files, or a folder of images.
    Predict {
        model: PathBuf,
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Also write the predictions to this CSV file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Try the models that fit a table within a time budget and keep the best (a leaderboard).
    Search(Box<commands::search::SearchArgs>),
    /// Write a model package as a standard ONNX model, preprocessing included.
    Export(commands::export::ExportArgs),
    /// Publish a model package to an endpoint as a new version.
    Publish(Box<commands::remote::PublishArgs>),
    /// List the models and versions on an endpoint.
    Models(commands::remote::EndpointArgs),
    /// Make an older (or newer) version the default of a model on an endpoint.
    Rollback {
        name: String,
        version: u64,
        #[command(flatten)]
        endpoint: commands::remote::EndpointArgs,
    },
    /// Split a model's unversioned calls between versions, e.g. `wick traffic weather 2=90 3=10` for a
    /// canary of version 3; `wick rollback NAME V` (promote or roll back) ends the split.
    Traffic {
        name: String,
        /// VERSION=PERCENT, adding up to 100.
        #[arg(required = true)]
        split: Vec<String>,
        #[command(flatten)]
        endpoint: commands::remote::EndpointArgs,
    },
    /// Log a share of a model's inference requests (and their answers) to the endpoint's store, for
    /// monitoring and retraining: `wick logging weather --sample 0.1`; `--sample 0` turns it off.
    Logging {
        name: String,
        #[arg(long)]
        sample: f64,
        #[command(flatten)]
        endpoint: commands::remote::EndpointArgs,
    },
    /// A model's live figures on an endpoint, per version: requests, errors, latency, predictions,
    /// and accuracy or error from feedback.
    Monitor {
        name: String,
        /// The last this many seconds.
        #[arg(long, default_value_t = 3600.0)]
        window_secs: f64,
        #[command(flatten)]
        endpoint: commands::remote::EndpointArgs,
    },
    /// Train a published table model again with its live data: the endpoint's logged requests that
    /// have feedback become new rows of the dataset; the old and new models' figures on the same test
    /// rows are printed side by side; `--canary 10` releases the new one to 10% of the calls.
    Improve(Box<commands::improve::ImproveArgs>),
    /// Run the endpoint server (same as `wick-serve`).
    Serve {
        /// Configuration file (TOML); WICK_SERVE_* environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List the compute devices this build of Wick can use.
    Devices,
    /// Measure Wick against pandas, numpy, scikit-learn, polars and PyTorch on this machine.
    Bench(Box<commands::bench::BenchArgs>),
}

/// `wick predict … | head` closes stdout early. Rust ignores SIGPIPE, so the next `println!` would
/// panic with "Broken pipe"; with the default action restored the process ends quietly, as Unix
/// tools do (exit status 141). Not for `serve` and `bench`, which write to sockets that clients may
/// close: there a closed connection must stay an error to handle, not the end of the server.
fn end_quietly_on_closed_stdout() {
    #[cfg(unix)]
    // SAFETY: `signal` only sets the process's disposition of SIGPIPE; no handler of ours runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> std::process::ExitCode {
    wick_core::train::fix_cpu_thread_count();
    wick_core::train::keep_freed_memory_for_reuse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WICK_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. } | Command::Bench(_)) {
        end_quietly_on_closed_stdout();
    }
    let peak_rss = cli.peak_rss;
    let result = match cli.command {
        Command::Inspect { data, stream } => commands::inspect::run(&data, stream, cli.json),
        Command::Train(args) => commands::train::run(&args, cli.json),
        Command::Eval { model, data } => commands::eval::run(&model, &data, cli.json),
        Command::Explain(args) => commands::explain::run(&args, cli.json),
        Command::Backbones => commands::backbones::run(cli.json),
        Command::Predict { model, inputs, out } => {
            commands::predict::run(&model, &inputs, out.as_deref(), cli.json)
        }
        Command::Export(args) => commands::export::run(&args, cli.json),
        Command::Search(args) => commands::search::run(&args, cli.json),
        Command::Publish(args) => commands::remote::publish(&args, cli.json),
        Command::Models(args) => commands::remote::models(&args, cli.json),
        Command::Rollback {
            name,
            version,
            endpoint,
        } => commands::remote::rollback(&endpoint, &name, version, cli.json),
        Command::Traffic {
            name,
            split,
            endpoint,
        } => commands::remote::traffic(&endpoint, &name, &split, cli.json),
        Command::Logging {
            name,
            sample,
            endpoint,
        } => commands::remote::logging(&endpoint, &name, sample, cli.json),
        Command::Monitor {
            name,
            window_secs,
            endpoint,
        } => commands::remote::monitor(&endpoint, &name, window_secs, cli.json),
        Command::Improve(args) => commands::improve::run(&args, cli.json),
        Command::Serve { config } => commands::serve(config.as_deref()),
        Command::Devices => commands::devices::run(cli.json),
        Command::Bench(args) => commands::bench::run(&args, cli.json),
    };
    if let (true, Some(kb)) = (peak_rss, commands::bench::own_peak_rss_kb()) {
        eprintln!("peak_rss_kb={kb}");
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
