//! `wick export`: a model package in a format other runtimes load.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wick_core::export::{export_package_onnx, ONNX_OPSET};

use crate::output::print_json;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// A standard ONNX model with the preprocessing inside the graph.
    Onnx,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The model package (a `.wick` folder written by `wick train` or the app).
    pub model: PathBuf,
    #[arg(long, value_enum, default_value = "onnx")]
    pub format: ExportFormat,
    /// Where to write the file; defaults to the package's name with the format's extension.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &ExportArgs, json: bool) -> Result<()> {
    let ExportFormat::Onnx = args.format;
    let out = args.out.clone().unwrap_or_else(|| default_out(&args.model));
    let summary = export_package_onnx(&args.model, &out)
        .with_context(|| format!("exporting {} as ONNX", args.model.display()))?;
    if json {
        return print_json(&serde_json::json!({
            "out": out,
            "format": "onnx",
            "opset": ONNX_OPSET,
            "bytes": summary.bytes,
            "inputs": summary.inputs,
            "outputs": summary.outputs,
            "date_inputs": summary.date_inputs,
        }));
    }
    println!(
        "wrote {} ({} bytes, ONNX opset {ONNX_OPSET})",
        out.display(),
        summary.bytes
    );
    println!("inputs:  {}", summary.inputs.join(", "));
    println!("outputs: {}", summary.outputs.join(", "));
    if !summary.date_inputs.is_empty() {
        println!(
            "dates:   {} take the time stamp, seconds since 1970-01-01 UTC as float64 (NaN = missing): ONNX can't parse text dates",
            summary.date_inputs.join(", ")
        );
    }
    Ok(())
}

fn default_out(model: &Path) -> PathBuf {
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    model.with_file_name(format!("{stem}.onnx"))
}
