use anyhow::Result;
use wick_core::train::{available_devices, describe_device, DeviceChoice};

use crate::output::print_json;

pub fn run(json: bool) -> Result<()> {
    let devices = available_devices();
    let features: Vec<&str> = [
        cfg!(feature = "cuda").then_some("cuda"),
        cfg!(feature = "metal").then_some("metal"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let auto = DeviceChoice::Auto
        .open()
        .map(|d| describe_device(&d))
        .unwrap_or_else(|e| e.to_string());
    if json {
        return print_json(
            &serde_json::json!({ "devices": devices, "auto": auto, "gpu_features": features }),
        );
    }
    println!(
        "GPU support built in: {}",
        if features.is_empty() {
            "none (CPU-only build)".to_string()
        } else {
            features.join(", ")
        }
    );
    for d in &devices {
        println!("  {d:?}");
    }
    println!("--device auto uses: {auto}");
    Ok(())
}
