//! Wick's endpoint server: model packages served over the Open Inference Protocol (KServe V2 REST),
//! with a versioned registry, bearer tokens, limits and Prometheus metrics.

pub mod auth;
pub mod config;
pub mod error;
pub mod metrics;
pub mod registry;
pub mod server;
pub mod tensors;

pub use config::ServeConfig;
pub use server::{router, serve, AppState};

/// Starts a server on `config.listen` and runs until Ctrl-C / SIGTERM.
pub async fn run(config: ServeConfig) -> Result<(), error::ServeError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| error::ServeError::Io { path: config.listen.to_string().into(), source: e })?;
    let addr = listener.local_addr().map_err(|e| error::ServeError::Io { path: "listener".into(), source: e })?;
    tracing::info!(%addr, store = %config.store, "wick-serve listening");
    eprintln!("wick-serve listening on http://{addr} (store: {})", config.store);
    let state = AppState::new(config).await?;
    serve(state, listener, shutdown_signal()).await
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
