//! The server's threads: one current-thread tokio runtime per worker, all accepting on one listening
//! socket, each keeping its connections for their whole life.
//!
//! Why not tokio's multi-thread runtime: measured on a 2-vCPU VM, a request there costs one or two
//! extra cross-thread wake-ups (a worker that receives I/O wakes another to help, and hyper's body
//! channel wakes the connection task while it runs, which makes a sleeping worker steal it). On a virtual
//! machine each such wake-up of an idle vCPU costs tens of µs, more than the request's own work.
//! With a runtime per thread a connection never changes threads; load spreads by connection instead
//! of by task, which is what many keep-alive clients give anyway.
//!
//! Each worker may also keep polling for a short while after its last request before it sleeps
//! ([`ServeConfig::idle_spin_us`]): a request that finds its worker awake is answered without the
//! wake-up. The spinning is bounded by that window, so an idle server sleeps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::activity::spin_after_requests;
use crate::config::ServeConfig;
use crate::error::ServeError;
use crate::server::{serve_connections, serve_connections_tls, spawn_refresher, AppState};

/// A server running on its own threads. Dropping it stops it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub tls: bool,
    stop: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<Result<(), ServeError>>>,
}

impl RunningServer {
    /// Binds `config.listen`, loads the registry and starts `config.worker_threads` workers (one per
    /// CPU when 0); HTTPS when a certificate and key are configured.
    pub fn start(config: ServeConfig) -> Result<Self, ServeError> {
        config.check()?;
        let listen = config.listen.to_string();
        let io = |e| ServeError::Io {
            path: listen.clone().into(),
            source: e,
        };
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            _ => {
                return Err(ServeError::Config(
                    "set both tls_cert and tls_key, or neither".into(),
                ))
            }
        };
        let listener = std::net::TcpListener::bind(config.listen).map_err(|e| {
            ServeError::Config(format!("can't listen on {listen}: {e}. Is another server using it? Pick another address with `listen` or WICK_SERVE_LISTEN"))
        })?;
        listener.set_nonblocking(true).map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let worker_count = match config.worker_threads {
            0 => std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            n => n,
        };
        let spin = Duration::from_micros(config.idle_spin_us);

        let runtimes = (0..worker_count)
            .map(|_| build_runtime())
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?;
        // The first worker's runtime loads the registry (and later runs the store refresher), so the
        // store's HTTP clients live on a runtime that lives as long as the server.
        let state = runtimes[0].block_on(AppState::new(config))?;
        let rustls = match &tls {
            Some((cert, key)) => Some(runtimes[0].block_on(load_tls(cert, key))?),
            None => None,
        };
        let (stop, stopped) = watch::channel(false);
        let mut threads = Vec::with_capacity(worker_count);
        for (index, runtime) in runtimes.into_iter().enumerate() {
            let listener = listener.try_clone().map_err(io)?;
            threads.push(spawn_worker(
                index,
                runtime,
                listener,
                state.clone(),
                rustls.clone(),
                stopped.clone(),
                spin,
            )?);
        }
        Ok(Self {
            addr,
            tls: tls.is_some(),
            stop,
            threads,
        })
    }

    /// Stops accepting, lets requests in flight finish, and waits for the workers.
    pub fn stop(mut self) -> Result<(), ServeError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), ServeError> {
        let _ = self.stop.send(true);
        let mut result = Ok(());
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => {
                    result = Err(ServeError::Invalid(
                        "a server worker thread panicked".into(),
                    ))
                }
            }
        }
        result
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop_and_join() {
            tracing::error!("the server stopped with an error: {e}");
        }
    }
}

fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

async fn load_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<axum_server::tls_rustls::RustlsConfig, ServeError> {
    // Several crates could pick a rustls crypto provider; name ours once. A second call is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| {
            ServeError::Config(format!(
                "TLS certificate {} / key {}: {e}",
                cert.display(),
                key.display()
            ))
        })
}

fn spawn_worker(
    index: usize,
    runtime: tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    rustls: Option<axum_server::tls_rustls::RustlsConfig>,
    mut stopped: watch::Receiver<bool>,
    spin: Duration,
) -> Result<std::thread::JoinHandle<Result<(), ServeError>>, ServeError> {
    let io = move |e| ServeError::Io {
        path: format!("server worker {index}").into(),
        source: e,
    };
    std::thread::Builder::new()
        .name(format!("wick-serve-{index}"))
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                if !spin.is_zero() {
                    tokio::task::spawn_local(spin_after_requests(spin));
                }
                let refresher = (index == 0).then(|| spawn_refresher(state.clone()));
                // The request log's writer: it writes what is queued when the server stops.
                let log_writer = (index == 0)
                    .then(|| tokio::spawn(state.log.clone().run_writer(stopped.clone())));
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                let result = match rustls {
                    Some(rustls) => serve_connections_tls(state, listener, rustls, shutdown).await,
                    None => {
                        let listener = tokio::net::TcpListener::from_std(listener).map_err(io)?;
                        serve_connections(state, listener, shutdown).await
                    }
                };
                if let Some(r) = refresher {
                    r.abort();
                }
                if let Some(w) = log_writer {
                    let _ = w.await;
                }
                if let Err(e) = &result {
                    tracing::error!(worker = index, "a server worker stopped: {e}");
                }
                result
            })
        })
        .map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn config(dir: &std::path::Path, workers: usize, spin_us: u64) -> ServeConfig {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: dir.join("store").to_string_lossy().to_string(),
            data_dir: dir.join("data"),
            worker_threads: workers,
            idle_spin_us: spin_us,
            ..ServeConfig::default()
        }
    }

    #[test]
    fn workers_share_the_listener_and_stop_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let server = RunningServer::start(config(dir.path(), 3, 100)).unwrap();
        let url = format!("http://{}/v2/health/ready", server.addr);
        // Separate clients (one connection each) at once: every one is answered whichever worker
        // accepted it.
        let answers: Vec<_> = (0..12)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || {
                    let client = reqwest::blocking::Client::new();
                    (0..20).all(|_| {
                        client
                            .get(&url)
                            .send()
                            .is_ok_and(|r| r.status().is_success())
                    })
                })
            })
            .collect();
        assert!(answers.into_iter().all(|a| a.join().unwrap()));
        let addr = server.addr;
        server.stop().unwrap();
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "the port is closed after stop"
        );
    }

    #[test]
    fn a_second_server_on_a_taken_port_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunningServer::start(config(dir.path(), 1, 0)).unwrap();
        let err = RunningServer::start(ServeConfig {
            listen: first.addr,
            ..config(dir.path(), 1, 0)
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains(&first.addr.to_string()), "{err}");
    }
}
