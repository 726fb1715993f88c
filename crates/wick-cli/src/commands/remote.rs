//! `wick publish`, `wick models`, `wick rollback`: talking to a Wick endpoint.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use wick_core::package::read_manifest;
use wick_core::publish::{curl_example, example_request, python_example, Endpoint};

use crate::output::{print_json, table};

#[derive(Args)]
pub struct EndpointArgs {
    /// The endpoint URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "WICK_ENDPOINT")]
    pub endpoint: String,
    /// Bearer token (or set WICK_TOKEN, which keeps it out of your shell history).
    #[arg(long, env = "WICK_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Args)]
pub struct PublishArgs {
    pub model: PathBuf,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Name on the endpoint (default: the package's name).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value = "")]
    pub notes: String,
    /// Let anyone call the model without a token.
    #[arg(long)]
    pub public: bool,
}

pub fn publish(args: &PublishArgs, json: bool) -> Result<()> {
    let manifest = read_manifest(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let endpoint = Endpoint::new(&args.endpoint.endpoint, &args.endpoint.token)?;
    let published = endpoint.publish(&args.model, args.name.as_deref(), &args.notes)?;
    if args.public {
        endpoint.set_public(&published.name, true)?;
    }
    let infer_url = endpoint.infer_url(&published);
    let example = example_request(&manifest);
    if json {
        return print_json(&serde_json::json!({ "published": published, "infer_url": infer_url, "example_request": example }));
    }
    let what = if published.existing { "already published as" } else { "published as" };
    println!("{} {what} `{}` version {} (sha256 {})", args.model.display(), published.name, published.version, &published.sha256[..16]);
    println!("inference URL: {infer_url}");
    println!("\ncurl:\n{}", curl_example(&infer_url, &example));
    println!("\nPython (pip install 'tritonclient[http]'):\n{}", python_example(endpoint.base_url(), &published.name, published.version, &manifest));
    Ok(())
}

pub fn models(args: &EndpointArgs, json: bool) -> Result<()> {
    let models = Endpoint::new(&args.endpoint, &args.token)?.models()?;
    if json {
        return print_json(&models);
    }
    let mut t = table(&["model", "default", "versions", "public"]);
    for m in &models {
        let versions = m.versions.iter().map(|v| v.version.to_string()).collect::<Vec<_>>().join(", ");
        t.add_row(vec![m.name.clone(), m.default_version.map(|v| v.to_string()).unwrap_or_default(), versions, m.public.to_string()]);
    }
    println!("{t}");
    Ok(())
}

pub fn traffic(args: &EndpointArgs, name: &str, split: &[String], json: bool) -> Result<()> {
    let mut percent = std::collections::BTreeMap::new();
    for part in split {
        let parsed = part.split_once('=').and_then(|(v, p)| Some((v.trim().parse::<u64>().ok()?, p.trim().trim_end_matches('%').parse::<u32>().ok()?)));
        let Some((version, share)) = parsed else { anyhow::bail!("`{part}` is not VERSION=PERCENT, e.g. 2=90 3=10") };
        percent.insert(version, share);
    }
    Endpoint::new(&args.endpoint, &args.token)?.set_traffic(name, &percent)?;
    if json {
        return print_json(&serde_json::json!({ "name": name, "traffic": percent }));
    }
    let shares: Vec<String> = percent.iter().map(|(v, p)| format!("version {v} {p}%")).collect();
    println!("`{name}` now splits its unversioned calls: {}; `wick rollback {name} VERSION` ends the split", shares.join(", "));
    Ok(())
}

pub fn rollback(args: &EndpointArgs, name: &str, version: u64, json: bool) -> Result<()> {
    Endpoint::new(&args.endpoint, &args.token)?.set_default(name, version)?;
    if json {
        return print_json(&serde_json::json!({ "name": name, "default_version": version }));
    }
    println!("`{name}` now serves version {version} by default");
    Ok(())
}
