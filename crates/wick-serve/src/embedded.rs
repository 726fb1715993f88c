//! The endpoint server running inside another program (the desktop app, tests) on a random loopback
//! port, with a local token that can publish and infer.

use std::path::Path;

use crate::auth::{create_token, revoke_token, Scope, TokenStore};
use crate::error::ServeError;
use crate::{RunningServer, ServeConfig};

/// The token's name in the token file.
const TOKEN_NAME: &str = "desktop";

/// A running embedded server. Dropping it stops the server.
pub struct EmbeddedServer {
    pub url: String,
    /// Publish + infer token for this machine's user, kept in the token file given to
    /// [`EmbeddedServer::start`] (mode 0600).
    pub token: String,
    _server: RunningServer,
}

impl EmbeddedServer {
    /// Starts a server on 127.0.0.1 with a free port, storing models under `data_dir/models`; the local
    /// token is read from (or written to) `token_file`.
    pub fn start(data_dir: &Path, token_file: &Path) -> Result<Self, ServeError> {
        let config = ServeConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            store: data_dir.join("models").to_string_lossy().to_string(),
            data_dir: data_dir.to_path_buf(),
            // Two threads are plenty for one person's requests, and a laptop should not spin.
            worker_threads: 2,
            idle_spin_us: 0,
            ..ServeConfig::default()
        };
        std::fs::create_dir_all(data_dir).map_err(|source| ServeError::Io { path: data_dir.to_path_buf(), source })?;
        let token = local_token(token_file, &config.tokens_path())?;
        let server = RunningServer::start(config)?;
        tracing::info!(addr = %server.addr, "embedded endpoint listening");
        Ok(Self { url: format!("http://{}", server.addr), token, _server: server })
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
    let (token, _) = create_token(tokens_path, TOKEN_NAME, vec![Scope::Publish, Scope::Infer], None)?;
    let dir = token_file.parent().unwrap_or(Path::new("."));
    let io = |source| ServeError::Io { path: token_file.to_path_buf(), source };
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
        let first = EmbeddedServer::start(&dir.path().join("data"), &token_file).unwrap();
        assert!(first.url.starts_with("http://127.0.0.1:"));
        let live = reqwest::blocking::get(format!("{}/v2/health/live", first.url)).unwrap();
        assert!(live.status().is_success());
        let token = first.token.clone();
        drop(first);
        let second = EmbeddedServer::start(&dir.path().join("data"), &token_file).unwrap();
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
