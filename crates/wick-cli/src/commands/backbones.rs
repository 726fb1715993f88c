//! `wick backbones`: the pretrained backbones `--backbone` takes, and whether each is downloaded.

use anyhow::Result;
use wick_core::hub::{HubClient, BACKBONES, DEFAULT_BACKBONE};

use crate::output::print_json;

pub fn run(json: bool) -> Result<()> {
    let client = HubClient::from_env()?;
    let rows: Vec<_> = BACKBONES.iter().map(|b| (b, client.cached(b))).collect();
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(b, cached)| {
                serde_json::json!({
                    "name": b.name, "title": b.title, "repo": b.repo, "file": b.file,
                    "params_millions": b.params_millions, "download_mb": b.download_mb, "input_px": b.input_px,
                    "default": b.name == DEFAULT_BACKBONE, "cached": cached,
                })
            })
            .collect();
        return print_json(
            &serde_json::json!({ "endpoint": client.endpoint(), "cache": client.cache_dir(), "backbones": list }),
        );
    }
    let mut t = crate::output::table(&[
        "name",
        "backbone",
        "parameters",
        "download",
        "input",
        "here",
    ]);
    for (b, cached) in &rows {
        let name = if b.name == DEFAULT_BACKBONE {
            format!("{} (default)", b.name)
        } else {
            b.name.to_string()
        };
        t.add_row(vec![
            name,
            format!("{}: {}", b.title, b.summary),
            format!("{:.1} M", b.params_millions),
            format!("{} MB", b.download_mb),
            format!("{0}×{0}", b.input_px),
            if cached.is_some() {
                "downloaded".into()
            } else {
                "on first use".into()
            },
        ]);
    }
    println!("{t}");
    println!(
        "Downloaded from {} into {} (HF_ENDPOINT names a mirror).",
        client.endpoint(),
        client.cache_dir().display()
    );
    Ok(())
}
