pub mod backbones;
pub mod bench;
pub mod bench_serve;
pub mod devices;
pub mod eval;
pub mod explain;
pub mod export;
pub mod improve;
pub mod inspect;
pub mod predict;
pub mod remote;
pub mod search;
pub mod train;

/// Runs the endpoint server in the foreground.
pub fn serve(config: Option<&std::path::Path>) -> anyhow::Result<()> {
    use anyhow::Context;
    let config =
        wick_serve::ServeConfig::load(config).context("loading the server configuration")?;
    wick_serve::run(config).context("serving")
}
