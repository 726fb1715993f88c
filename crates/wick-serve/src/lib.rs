//! Wick's endpoint server: model packages served over the Open Inference Protocol (KServe V2 REST),
//! with a versioned registry, bearer tokens, limits and Prometheus metrics.

pub mod auth;
pub mod config;
pub mod embedded;
pub mod error;
pub mod metrics;
pub mod registry;
pub mod server;
pub mod tensors;

pub use config::ServeConfig;
pub use embedded::EmbeddedServer;
pub use server::{router, serve, serve_tls, AppState};

/// Starts a server on `config.listen` (HTTPS when a certificate and key are configured) and runs until
/// Ctrl-C / SIGTERM.
pub async fn run(config: ServeConfig) -> Result<(), error::ServeError> {
    let listen = config.listen.to_string();
    let io = |e| error::ServeError::Io { path: listen.clone().into(), source: e };
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => None,
        _ => return Err(error::ServeError::Config("set both tls_cert and tls_key, or neither".into())),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, store = %config.store, "wick-serve listening");
    eprintln!("wick-serve listening on {scheme}://{addr} (store: {})", config.store);
    let state = AppState::new(config).await?;
    match tls {
        Some((cert, key)) => {
            let std_listener = listener.into_std().map_err(io)?;
            server::serve_tls(state, std_listener, &cert, &key, shutdown_signal()).await
        }
        None => serve(state, listener, shutdown_signal()).await,
    }
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
