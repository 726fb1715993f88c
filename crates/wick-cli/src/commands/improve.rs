//! `wick improve`: a published table model trained again with its live data (logged requests that
//! have feedback), compared with the published one on the same test rows, and optionally
//! released as a canary.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use wick_core::data::read_table;
use wick_core::package::load_package;
use wick_core::publish::Endpoint;
use wick_core::train::TableData;
use wick_core::train::{
    live_rows_frame, request_of, CancelToken, JobData, SaveTo, TableRows, TrainJob,
};

use crate::output::{print_json, table};
use crate::progress::ProgressBars;

#[derive(Args)]
pub struct ImproveArgs {
    /// The model's name on the endpoint.
    pub name: String,
    /// The package that is published (what `wick train` wrote).
    #[arg(long)]
    pub model: PathBuf,
    /// The table it was trained on.
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the new package.
    #[arg(long)]
    pub out: PathBuf,
    /// Publish the new package and send it this percentage of the unversioned calls (a canary);
    /// `wick rollback NAME V` then promotes it or rolls it back.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub canary: Option<u32>,
    #[command(flatten)]
    pub endpoint: super::remote::EndpointArgs,
}

pub fn run(args: &ImproveArgs, json: bool) -> Result<()> {
    let (_, manifest) =
        load_package(&args.model).with_context(|| format!("opening {}", args.model.display()))?;
    let request = request_of(&manifest)?;
    let df = read_table(&args.data).with_context(|| format!("opening {}", args.data.display()))?;
    let endpoint = Endpoint::new(&args.endpoint.endpoint, &args.endpoint.token)?;
    let labelled = endpoint
        .labelled_rows(&args.name)
        .with_context(|| format!("reading the live rows of `{}`", args.name))?;
    let new = live_rows_frame(&df, &request.target, &labelled)
        .with_context(|| format!("matching the live rows to {}", args.data.display()))?;
    if !json {
        eprintln!(
            "{} logged requests have feedback: {} new rows, {} already in {}, {} with an outcome that does not fit `{}`",
            new.received,
            new.frame.height(),
            new.duplicates,
            args.data.display(),
            new.unusable,
            request.target
        );
        if !new.hashed.is_empty() {
            eprintln!(
                "note: {} is logged only as a hash (personal data); the new rows leave it missing",
                new.hashed.join(", ")
            );
        }
    }
    if new.frame.height() == 0 {
        bail!(
            "no new rows to train on: turn logging on (`wick logging {} --sample 1`), send the true outcomes of logged requests \
             (POST /v2/wick/models/{}/feedback with the answer's id), then run this again",
            args.name,
            args.name
        );
    }
    let mut bars = ProgressBars::new(json);
    let job = TrainJob {
        data: JobData::Table {
            table: TableData::new(&df, &args.data, &request),
            rows: TableRows::WithLiveRows(&new.frame),
        },
        spec: manifest.spec.clone(),
        config: manifest.train_config.clone(),
        cv_folds: None,
        backbone: None,
        save: Some(SaveTo {
            name: manifest.name.clone(),
            path: args.out.clone(),
        }),
    };
    let outcome = wick_core::train::run(job, &mut bars, &CancelToken::new())?.outcome;
    let published = match args.canary {
        None => None,
        Some(percent) => {
            let current = endpoint
                .models()?
                .into_iter()
                .find(|m| m.name == args.name)
                .and_then(|m| m.default_version)
                .with_context(|| {
                    format!(
                        "`{}` has no default version on {} to release a canary beside",
                        args.name, args.endpoint.endpoint
                    )
                })?;
            let notes = format!("retrained with {} live rows", new.frame.height());
            // A canary goes out in one step: the serving version keeps the default and the rest
            // of the calls; 100 % is an ordinary publish.
            let options = wick_core::publish::PublishOptions {
                canary_percent: (percent < 100).then_some(percent),
                replace_inputs: false,
            };
            let published = endpoint.publish_with(&args.out, Some(&args.name), &notes, &options)?;
            Some((current, published.version, percent))
        }
    };
    let before = manifest
        .metrics
        .as_ref()
        .map(|m| m.scalars())
        .unwrap_or_default();
    let after = outcome
        .report
        .test
        .as_ref()
        .map(|m| m.scalars())
        .unwrap_or_default();
    if json {
        return print_json(&serde_json::json!({
            "new_rows": new.frame.height(),
            "received": new.received,
            "duplicates": new.duplicates,
            "unusable": new.unusable,
            "before": before.iter().map(|(k, v)| (k.to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
            "after": after.iter().map(|(k, v)| (k.to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
            "out": args.out,
            "canary": published.map(|(from, to, percent)| serde_json::json!({ "from": from, "version": to, "percent": percent })),
        }));
    }
    println!(
        "test rows held back from both ({}):",
        outcome.report.rows.test
    );
    let mut t = table(&["metric", "published", "with live data"]);
    for ((name, old), (_, new)) in before.iter().zip(&after) {
        t.add_row(vec![
            name.to_string(),
            format!("{old:.4}"),
            format!("{new:.4}"),
        ]);
    }
    println!("{t}");
    println!("wrote {}", args.out.display());
    if let Some((from, to, percent)) = published {
        println!("published as version {to}; it answers {percent}% of `{}`'s calls, version {from} the rest", args.name);
        println!(
            "promote it with `wick rollback {} {to}`, or roll back with `wick rollback {} {from}`",
            args.name, args.name
        );
    }
    Ok(())
}
