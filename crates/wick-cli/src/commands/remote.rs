//! `wick publish`, `wick models`, `wick rollback`: talking to a Wick endpoint.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use wick_core::package::read_manifest;
use wick_core::publish::Endpoint;

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
    let example = example_body(&manifest);
    if json {
        return print_json(&serde_json::json!({ "published": published, "infer_url": infer_url, "example_request": example }));
    }
    let what = if published.existing { "already published as" } else { "published as" };
    println!("{} {what} `{}` version {} (sha256 {})", args.model.display(), published.name, published.version, &published.sha256[..16]);
    println!("inference URL: {infer_url}");
    let body = serde_json::to_string(&example)?;
    println!("\ncurl:\n  curl -s -X POST {} \\\n    -H \"Authorization: Bearer $WICK_TOKEN\" -H 'Content-Type: application/json' \\\n    -d '{body}'", infer_url);
    println!("\nPython (pip install 'tritonclient[http]'):\n{}", python_example(endpoint.base_url(), &published.name, published.version, &manifest));
    Ok(())
}

/// A request body that works for this model, with one row of placeholder values.
fn example_body(manifest: &wick_core::package::Manifest) -> serde_json::Value {
    let inputs: Vec<serde_json::Value> = manifest
        .inputs
        .iter()
        .map(|t| {
            let mut shape: Vec<i64> = t.shape.iter().map(|&d| if d < 0 { 1 } else { d }).collect();
            if shape.is_empty() {
                shape.push(1);
            }
            let n: i64 = shape.iter().product();
            let data: serde_json::Value = match t.datatype.as_str() {
                "BYTES" => serde_json::json!(vec!["value"; n as usize]),
                "UINT8" => serde_json::json!(vec![0; n as usize]),
                _ => serde_json::json!(vec![0.0; n as usize]),
            };
            serde_json::json!({ "name": t.name, "shape": shape, "datatype": t.datatype, "data": data })
        })
        .collect();
    serde_json::json!({ "inputs": inputs })
}

fn python_example(base: &str, name: &str, version: u64, manifest: &wick_core::package::Manifest) -> String {
    let host = base.trim_start_matches("http://").trim_start_matches("https://");
    let ssl = if base.starts_with("https://") { ", ssl=True" } else { "" };
    let mut s = format!(
        "  import numpy as np, tritonclient.http as http\n  client = http.InferenceServerClient(\"{host}\"{ssl})\n  headers = {{\"Authorization\": \"Bearer <token>\"}}\n  inputs = []\n"
    );
    for t in &manifest.inputs {
        let (np_type, value) = match t.datatype.as_str() {
            "BYTES" => ("object", "\"value\""),
            "UINT8" => ("np.uint8", "0"),
            _ => ("np.float64", "0.0"),
        };
        let dtype = if t.datatype == "BYTES" { "object".to_string() } else { np_type.to_string() };
        let mut shape: Vec<String> = t.shape.iter().map(|&d| if d < 0 { "1".into() } else { d.to_string() }).collect();
        if shape.is_empty() {
            shape.push("1".into());
        }
        s.push_str(&format!(
            "  x = http.InferInput(\"{}\", [{}], \"{}\"); x.set_data_from_numpy(np.full(({},), {value}, dtype={dtype}).reshape([{}]), binary_data=False); inputs.append(x)\n",
            t.name,
            shape.join(", "),
            t.datatype,
            shape.join(" * "),
            shape.join(", ")
        ));
    }
    s.push_str(&format!(
        "  outputs = [http.InferRequestedOutput(o, binary_data=False) for o in {:?}]\n  print(client.infer(\"{name}\", inputs, model_version=\"{version}\", outputs=outputs, headers=headers).get_response())",
        manifest.outputs.iter().map(|o| o.name.clone()).collect::<Vec<_>>()
    ));
    s
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

pub fn rollback(args: &EndpointArgs, name: &str, version: u64, json: bool) -> Result<()> {
    Endpoint::new(&args.endpoint, &args.token)?.set_default(name, version)?;
    if json {
        return print_json(&serde_json::json!({ "name": name, "default_version": version }));
    }
    println!("`{name}` now serves version {version} by default");
    Ok(())
}
