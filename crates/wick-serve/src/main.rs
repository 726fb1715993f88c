//! `wick-serve`: run the endpoint server, and manage its tokens.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use wick_serve::auth::{create_token, list_tokens, revoke_token, Scope};
use wick_serve::ServeConfig;

#[derive(Parser)]
#[command(
    name = "wick-serve",
    version,
    about = "Serve Wick models over the Open Inference Protocol (KServe V2 REST)"
)]
struct Cli {
    /// Configuration file (TOML). Environment variables WICK_SERVE_* override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Run,
    /// Create, list and revoke bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once and only its hash is stored.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated: publish, infer.
        #[arg(long, value_delimiter = ',', default_value = "infer")]
        scopes: Vec<Scope>,
        /// Limit the token to these models (comma-separated).
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
    },
    List,
    /// Revoke a token by name or id.
    Revoke {
        name_or_id: String,
    },
}

fn main() -> std::process::ExitCode {
    wick_core::train::fix_cpu_thread_count();
    wick_core::train::keep_freed_memory_for_reuse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WICK_LOG")
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let config = ServeConfig::load(cli.config.as_deref()).context("loading the configuration")?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => wick_serve::run(config).context("serving"),
        Command::Token(cmd) => token(&config, cmd),
    }
}

fn token(config: &ServeConfig, cmd: TokenCommand) -> Result<()> {
    let path = config.tokens_path();
    match cmd {
        TokenCommand::Create {
            name,
            scopes,
            models,
        } => {
            let (token, record) = create_token(&path, &name, scopes, models)?;
            eprintln!(
                "created token `{}` (id {}) with scopes {:?}; store it now, it is not shown again:",
                record.name, record.id, record.scopes
            );
            println!("{token}");
            audit_token_change(
                config,
                "token_create",
                serde_json::json!({ "id": record.id, "name": record.name, "scopes": record.scopes, "models": record.models }),
            );
        }
        TokenCommand::List => {
            for r in list_tokens(&path)? {
                let models = r
                    .models
                    .map(|m| m.join(","))
                    .unwrap_or_else(|| "all models".into());
                println!(
                    "{}\t{}\t{:?}\t{}\t{}",
                    r.id,
                    r.name,
                    r.scopes,
                    models,
                    r.created_at.to_rfc3339()
                );
            }
        }
        TokenCommand::Revoke { name_or_id } => {
            let record = list_tokens(&path)?
                .into_iter()
                .find(|r| r.name == name_or_id || r.id == name_or_id);
            if revoke_token(&path, &name_or_id)? {
                println!("revoked `{name_or_id}`");
                let details = record.map_or_else(
                    || serde_json::json!({ "name_or_id": name_or_id }),
                    |r| serde_json::json!({ "id": r.id, "name": r.name }),
                );
                audit_token_change(config, "token_revoke", details);
            } else {
                anyhow::bail!("no token named or with id `{name_or_id}`");
            }
        }
    }
    Ok(())
}

/// Appends a token change to the audit log in the model store, as the server does for registry
/// changes. The change has happened: a store that can't be written is a warning, not a failure.
/// Never the token itself, only its id and name.
fn audit_token_change(config: &ServeConfig, action: &str, details: serde_json::Value) {
    let entry = wick_serve::audit::AuditEntry {
        at: chrono::Utc::now(),
        // Made on the server's machine with access to its tokens file, not with a token.
        token_id: "wick-serve token".into(),
        action: action.into(),
        model: String::new(),
        details,
    };
    let written = wick_serve::registry::Registry::open_store(&config.store)
        .map_err(anyhow::Error::from)
        .and_then(|store| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(wick_serve::audit::AuditLog::new(store).append(&entry))
                .map_err(anyhow::Error::from)
        });
    if let Err(e) = written {
        eprintln!(
            "warning: the audit log in {} was not written: {e:#}",
            config.store
        );
    }
}
