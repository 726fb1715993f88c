//! `wick publish`, `wick models`, `wick rollback`: talking to a Wick endpoint.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use wick_core::drift::MIN_DRIFT_ROWS;
use wick_core::package::read_manifest;
use wick_core::publish::{curl_example, example_request, python_example, Endpoint};
use wick_core::wire::{FeatureDrift, VersionFigures};

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
    /// Publish as a canary: the new version answers this percent of the calls (1-99) and the
    /// serving version, which stays the default, the rest.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub canary: Option<u32>,
    /// Let the new version take other inputs than the serving one (its callers must change too);
    /// without it such a version is refused.
    #[arg(long)]
    pub replace_inputs: bool,
}

pub fn publish(args: &PublishArgs, json: bool) -> Result<()> {
    let manifest =
        read_manifest(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let endpoint = Endpoint::new(&args.endpoint.endpoint, &args.endpoint.token)?;
    let options = wick_core::publish::PublishOptions {
        canary_percent: args.canary,
        replace_inputs: args.replace_inputs,
    };
    let published =
        endpoint.publish_with(&args.model, args.name.as_deref(), &args.notes, &options)?;
    if args.public {
        endpoint.set_public(&published.name, true)?;
    }
    let infer_url = endpoint.infer_url(&published);
    let example = example_request(&manifest);
    if json {
        return print_json(
            &serde_json::json!({ "published": published, "infer_url": infer_url, "example_request": example }),
        );
    }
    let what = if published.existing {
        "already published as"
    } else {
        "published as"
    };
    println!(
        "{} {what} `{}` version {} (sha256 {})",
        args.model.display(),
        published.name,
        published.version,
        &published.sha256[..16]
    );
    println!("inference URL: {infer_url}");
    println!("\ncurl:\n{}", curl_example(&infer_url, &example));
    println!(
        "\nPython (pip install 'tritonclient[http]'):\n{}",
        python_example(
            endpoint.base_url(),
            &published.name,
            published.version,
            &manifest,
            None
        )
    );
    Ok(())
}

pub fn models(args: &EndpointArgs, json: bool) -> Result<()> {
    let models = Endpoint::new(&args.endpoint, &args.token)?.models()?;
    if json {
        return print_json(&models);
    }
    let mut t = table(&["model", "default", "versions", "public"]);
    for m in &models {
        let versions = m
            .versions
            .iter()
            .map(|v| v.version.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        t.add_row(vec![
            m.name.clone(),
            m.default_version.map(|v| v.to_string()).unwrap_or_default(),
            versions,
            m.public.to_string(),
        ]);
    }
    println!("{t}");
    Ok(())
}

pub fn traffic(args: &EndpointArgs, name: &str, split: &[String], json: bool) -> Result<()> {
    let mut percent = std::collections::BTreeMap::new();
    for part in split {
        let parsed = part.split_once('=').and_then(|(v, p)| {
            Some((
                v.trim().parse::<u64>().ok()?,
                p.trim().trim_end_matches('%').parse::<u32>().ok()?,
            ))
        });
        let Some((version, share)) = parsed else {
            anyhow::bail!("`{part}` is not VERSION=PERCENT, e.g. 2=90 3=10")
        };
        percent.insert(version, share);
    }
    Endpoint::new(&args.endpoint, &args.token)?.set_traffic(name, &percent)?;
    if json {
        return print_json(&serde_json::json!({ "name": name, "traffic": percent }));
    }
    let shares: Vec<String> = percent
        .iter()
        .map(|(v, p)| format!("version {v} {p}%"))
        .collect();
    println!("`{name}` now splits its unversioned calls: {}; `wick rollback {name} VERSION` ends the split", shares.join(", "));
    Ok(())
}

pub fn logging(args: &EndpointArgs, name: &str, sample: f64, json: bool) -> Result<()> {
    if !(0.0..=1.0).contains(&sample) {
        anyhow::bail!("--sample {sample} is not a share from 0 to 1 (0.1 logs one request in ten; 0 turns logging off)");
    }
    Endpoint::new(&args.endpoint, &args.token)?.set_logging(name, sample)?;
    if json {
        return print_json(&serde_json::json!({ "name": name, "logging": { "sample": sample } }));
    }
    if sample == 0.0 {
        println!("`{name}` no longer logs its requests");
    } else {
        println!("`{name}` now logs {:.1}% of its inference requests and their answers to the endpoint's store (logs/{name}/)", sample * 100.0);
    }
    Ok(())
}

pub fn monitor(args: &EndpointArgs, name: &str, window_secs: f64, json: bool) -> Result<()> {
    let report = Endpoint::new(&args.endpoint, &args.token)?.monitor(name, window_secs)?;
    if json {
        return print_json(&report);
    }
    println!("`{name}` over the last {window_secs:.0} s (this server's memory):");
    let mut t = crate::output::table(&[
        "version",
        "requests",
        "errors",
        "p50 ms",
        "p99 ms",
        "predictions",
        "feedback",
        "live metric",
        "drift (PSI)",
    ]);
    let number = |v: Option<f64>| v.map_or_else(|| "–".into(), |x| format!("{x:.2}"));
    for (version, f) in &report.versions {
        let predictions = match &f.predicted_values {
            _ if !f.predicted_classes.is_empty() => f
                .predicted_classes
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            Some(v) => format!(
                "mean {} (p10 {}, p90 {})",
                number(Some(v.mean)),
                number(v.p10),
                number(v.p90)
            ),
            None => "–".into(),
        };
        let metric = match (f.live_accuracy, f.live_mae) {
            (Some(a), _) => format!("accuracy {:.1}%", a * 100.0),
            (_, Some(m)) => format!("MAE {m:.3}"),
            _ => "–".into(),
        };
        t.add_row(vec![
            version.clone(),
            f.requests.to_string(),
            f.errors.to_string(),
            number(f.latency_p50_ms),
            number(f.latency_p99_ms),
            predictions,
            f.feedback.to_string(),
            metric,
            drift_cell(f),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// The drift column: the drifting features (worst first), else how far the worst has moved, else
/// why there is no verdict yet. The same rule as the app's Monitor (`wick_core::drift`).
fn drift_cell(f: &VersionFigures) -> String {
    let all: Vec<&FeatureDrift> = f.drift.iter().chain(&f.prediction_drift).collect();
    let Some(most_rows) = all.iter().map(|d| d.rows).max() else {
        return "–".into();
    };
    let drifting: Vec<String> = all
        .iter()
        .filter(|d| d.drifting)
        .map(|d| format!("{} {:.2}", d.feature, d.psi))
        .collect();
    if !drifting.is_empty() {
        return format!("drifting: {}", drifting.join(", "));
    }
    if most_rows < MIN_DRIFT_ROWS {
        return format!("not judged yet ({most_rows} of {MIN_DRIFT_ROWS} live values)");
    }
    match all.iter().max_by(|a, b| a.psi.total_cmp(&b.psi)) {
        Some(worst) => format!("none (worst {} {:.2})", worst.feature, worst.psi),
        None => "–".into(),
    }
}

pub fn rollback(args: &EndpointArgs, name: &str, version: u64, json: bool) -> Result<()> {
    Endpoint::new(&args.endpoint, &args.token)?.set_default(name, version)?;
    if json {
        return print_json(&serde_json::json!({ "name": name, "default_version": version }));
    }
    println!("`{name}` now serves version {version} by default");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drift(feature: &str, psi: f64, rows: usize) -> FeatureDrift {
        FeatureDrift {
            feature: feature.into(),
            psi,
            drifting: wick_core::drift::is_drifting(psi, rows),
            rows,
        }
    }

    #[test]
    fn drift_cell_names_drifting_features_else_the_worst_else_why_not() {
        let mut f = VersionFigures::default();
        assert_eq!(drift_cell(&f), "–");
        f.drift = vec![drift("wind", 0.5, 40), drift("month", 0.1, 40)];
        assert_eq!(drift_cell(&f), "not judged yet (40 of 100 live values)");
        f.drift = vec![drift("wind", 0.05, 150), drift("month", 0.12, 150)];
        assert_eq!(drift_cell(&f), "none (worst month 0.12)");
        f.drift = vec![drift("wind", 0.31, 150), drift("month", 0.12, 150)];
        f.prediction_drift = Some(drift("prediction", 0.25, 150));
        assert_eq!(drift_cell(&f), "drifting: wind 0.31, prediction 0.25");
    }
}
