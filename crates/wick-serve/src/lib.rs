//! Wick's endpoint server: model packages served over the Open Inference Protocol (KServe V2 REST),
//! with a versioned registry, bearer tokens, limits and Prometheus metrics.

mod activity;
pub mod audit;
pub mod auth;
pub mod binary_data;
pub mod config;
pub mod embedded;
pub mod error;
pub mod metrics;
pub mod registry;
pub mod request_log;
pub mod server;
pub mod tensor_data;
pub mod tensors;
pub mod workers;

pub use config::ServeConfig;
pub use embedded::EmbeddedServer;
pub use server::{router, AppState};
pub use workers::RunningServer;

/// Starts a server on `config.listen` (HTTPS when a certificate and key are configured) and runs until
/// Ctrl-C / SIGTERM, then lets requests in flight finish.
pub fn run(config: ServeConfig) -> Result<(), error::ServeError> {
    let store = config.store.clone();
    let server = RunningServer::start(config)?;
    let scheme = if server.tls { "https" } else { "http" };
    tracing::info!(addr = %server.addr, %store, "wick-serve listening");
    eprintln!(
        "wick-serve listening on {scheme}://{} (store: {store})",
        server.addr
    );
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| error::ServeError::Io {
            path: "signal handler".into(),
            source: e,
        })?;
    signals.block_on(shutdown_signal());
    tracing::info!("stopping: letting requests in flight finish");
    server.stop()
}
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
