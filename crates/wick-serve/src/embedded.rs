//! The endpoint server running inside another program (the desktop app, tests) on a loopback port,
//! with a local token that can publish and infer.

use std::path::Path;

use crate::auth::{create_token, revoke_token, Scope, TokenStore};
use crate::error::ServeError;
use crate::{RunningServer, ServeConfig};

/// The token's name in the token file.
const TOKEN_NAME: &str = "desktop";

/// The desktop app's endpoint port: the same on every launch, so copied curl and Python snippets keep
/// working. `WICK_ENDPOINT_PORT` overrides it (0: any free port).
pub const DEFAULT_PORT: u16 = 7447;

/// A running embedded server. Dropping it stops the server.
pub struct EmbeddedServer {
    pub url: String,
    /// Publish + infer token for this machine's user, kept in the token file given to
    /// [`EmbeddedServer::start`] (mode 0600).
    pub token: String,
    /// The port asked for, when another program had it and a free one was taken instead.
    pub port_taken: Option<u16>,
    _server: RunningServer,
}

impl EmbeddedServer {
    /// Starts a server on 127.0.0.1:`port` (any free port for 0, or when `port` is taken), storing
    /// models under `data_dir/models`; the local token is read from (or written to) `token_file`.
    pub fn start(data_dir: &Path, token_file: &Path, port: u16) -> Result<Self, ServeError> {
        let wanted = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        // Probed rather than retried after a failed start: a failed start may have loaded the store.
        let port_taken =
            (port != 0 && std::net::TcpListener::bind(wanted).is_err()).then_some(port);
        if let Some(p) = port_taken {
            tracing::warn!(
                port = p,
                "the endpoint's usual port is taken; using a free one"
            );
        }
        let config = ServeConfig {
            listen: std::net::SocketAddr::from((
                [127, 0, 0, 1],
                if port_taken.is_some() { 0 } else { port },
            )),
            store: data_dir.join("models").to_string_lossy().to_string(),
            data_dir: data_dir.to_path_buf(),
            // Two threads are plenty for one person's requests, and a laptop should not spin.
            worker_threads: 2,
            idle_spin_us: 0,
            ..ServeConfig::default()
        };
        std::fs::create_dir_all(data_dir).map_err(|source| ServeError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let token = local_token(token_file, &config.tokens_path())?;
        let server = RunningServer::start(config)?;
        tracing::info!(addr = %server.addr, "embedded endpoint listening");
        Ok(Self {
            url: format!("http://{}", server.addr),
            token,
            port_taken,
            _server: server,
        })
    }
}

/// The local token: reused while it still verifies, else replaced (revoking the old record).
fn local_token(token_file: &Path, tokens_path: &Path) -> Result<String, ServeError> {
    if let Ok(saved) = std::fs::read_to_string(token_file) {
        let saved = saved.trim().to_string();
        if TokenStore::open(tokens_path).verify(&saved).is_some() {
            return Ok(saved);
        }
    }
    let _ = revoke_token(tokens_path, TOKEN_NAME);
    let (token, _) = create_token(
        tokens_path,
        TOKEN_NAME,
        vec![Scope::Publish, Scope::Infer],
        None,
    )?;
    let dir = token_file.parent().unwrap_or(Path::new("."));
    let io = |source| ServeError::Io {
        path: token_file.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(".desktop-token.tmp");
    std::fs::write(&tmp, &token).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(&tmp, token_file).map_err(io)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn starts_on_loopback_answers_and_keeps_its_token() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("config/desktop-token");
        let first = EmbeddedServer::start(&dir.path().join("data"), &token_file, 0).unwrap();
        assert!(first.url.starts_with("http://127.0.0.1:"));
        assert_eq!(first.port_taken, None);
        let live = reqwest::blocking::get(format!("{}/v2/health/live", first.url)).unwrap();
        assert!(live.status().is_success());
        let token = first.token.clone();
        let port: u16 = first.url.rsplit(':').next().unwrap().parse().unwrap();
        // While the first holds its port, a second asking for it gets another and says so.
        let beside = EmbeddedServer::start(
            &dir.path().join("beside"),
            &dir.path().join("beside-token"),
            port,
        )
        .unwrap();
        assert_eq!(beside.port_taken, Some(port));
        assert_ne!(beside.url, first.url);
        drop(beside);
        drop(first);
        // Restarted on the same port, with the same token.
        let second = EmbeddedServer::start(&dir.path().join("data"), &token_file, port).unwrap();
        assert_eq!(second.url, format!("http://127.0.0.1:{port}"));
        assert_eq!(second.port_taken, None);
        assert!(token_file.is_file());
        assert_eq!(second.token, token, "the local token survives a restart");
        let models = reqwest::blocking::Client::new()
            .get(format!("{}/v2/wick/models", second.url))
            .bearer_auth(&second.token)
            .send()
            .unwrap();
        assert!(models.status().is_success(), "{}", models.status());
    }
}
