//! Bearer tokens: `wick_<id>_<secret>`. Only a sha256 of each token is stored; a presented token is
//! found by its id and compared in constant time. Tokens are never logged.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ServeError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Upload, roll back and delete versions; read usage.
    Publish,
    /// Call models and read their metadata.
    Infer,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "publish" => Ok(Self::Publish),
            "infer" => Ok(Self::Infer),
            _ => Err(format!("unknown scope {s:?}; use publish or infer")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub sha256: String,
    pub scopes: Vec<Scope>,
    /// Models this token may use; `None` means all.
    pub models: Option<Vec<String>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl TokenRecord {
    pub fn allows(&self, scope: Scope, model: Option<&str>) -> bool {
        let model_ok = match (&self.models, model) {
            (Some(list), Some(m)) => list.iter().any(|x| x == m),
            _ => true,
        };
        self.scopes.contains(&scope) && model_ok
    }
}

/// The token file, re-read when it changes on disk (a revocation from the CLI takes effect without restart).
pub struct TokenStore {
    path: PathBuf,
    state: RwLock<(Option<std::time::SystemTime>, Vec<TokenRecord>)>,
    /// When the file's modification time was last looked at: at most every [`RECHECK`].
    checked: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How stale a revocation may be: the token file is looked at no more often than this.
const RECHECK: std::time::Duration = std::time::Duration::from_millis(500);

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl TokenStore {
    pub fn open(path: &Path) -> Self {
        let store = Self {
            path: path.to_path_buf(),
            state: RwLock::new((None, Vec::new())),
            checked: std::sync::Mutex::new(None),
        };
        store.reload_if_changed();
        store
    }

    fn reload_if_changed(&self) {
        if let Ok(mut checked) = self.checked.lock() {
            if checked.is_some_and(|t| t.elapsed() < RECHECK) {
                return;
            }
            *checked = Some(std::time::Instant::now());
        }
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let stale = self.state.read().map(|s| s.0 != modified).unwrap_or(true);
        if !stale {
            return;
        }
        let records = read_records(&self.path).unwrap_or_else(|e| {
            tracing::warn!(path = %self.path.display(), error = %e, "could not read the token file; no tokens accepted");
            Vec::new()
        });
        if let Ok(mut s) = self.state.write() {
            *s = (modified, records);
        }
    }

    /// The record of a presented token, if it is valid.
    pub fn verify(&self, token: &str) -> Option<TokenRecord> {
        self.reload_if_changed();
        let id = token.strip_prefix("wick_")?.split('_').next()?;
        let presented = hash(token);
        let state = self.state.read().ok()?;
        let record = state.1.iter().find(|r| r.id == id)?;
        bool::from(record.sha256.as_bytes().ct_eq(presented.as_bytes())).then(|| record.clone())
    }

    /// Checks a request's `Authorization` header for `scope` on `model`. Public models need no token
    /// for inference.
    pub fn authorize(
        &self,
        header: Option<&str>,
        scope: Scope,
        model: Option<&str>,
        public: bool,
    ) -> Result<Option<TokenRecord>, ApiError> {
        if public && scope == Scope::Infer && header.is_none() {
            return Ok(None);
        }
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        let record = self.verify(token).ok_or(ApiError::Unauthorized)?;
        if !record.allows(scope, model) {
            let what = match scope {
                Scope::Publish => "publish",
                Scope::Infer => "infer",
            };
            return Err(ApiError::Forbidden(match model {
                Some(m) => format!(
                    "token `{}` does not have the `{what}` scope for model `{m}`",
                    record.name
                ),
                None => format!("token `{}` does not have the `{what}` scope", record.name),
            }));
        }
        Ok(Some(record))
    }
}

fn read_records(path: &Path) -> Result<Vec<TokenRecord>, ServeError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| ServeError::Config(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ServeError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

fn write_records(path: &Path, records: &[TokenRecord]) -> Result<(), ServeError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| ServeError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let io = |e| ServeError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let json = serde_json::to_vec_pretty(records).map_err(|e| ServeError::Config(e.to_string()))?;
    tmp.write_all(&json).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Creates a token and stores its hash. The token itself is returned once and never stored.
pub fn create_token(
    path: &Path,
    name: &str,
    scopes: Vec<Scope>,
    models: Option<Vec<String>>,
) -> Result<(String, TokenRecord), ServeError> {
    if scopes.is_empty() {
        return Err(ServeError::Invalid(
            "a token needs at least one scope (publish, infer)".into(),
        ));
    }
    let mut records = read_records(path)?;
    if records.iter().any(|r| r.name == name) {
        return Err(ServeError::Invalid(format!(
            "a token named `{name}` exists; revoke it first or choose another name"
        )));
    }
    let mut rng = rand::rng();
    let id: String = (0..8)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect();
    let secret: [u8; 24] = rng.random();
    let token = format!("wick_{id}_{}", hex::encode(secret));
    let record = TokenRecord {
        id,
        name: name.to_string(),
        sha256: hash(&token),
        scopes,
        models,
        created_at: chrono::Utc::now(),
    };
    records.push(record.clone());
    write_records(path, &records)?;
    Ok((token, record))
}

pub fn list_tokens(path: &Path) -> Result<Vec<TokenRecord>, ServeError> {
    read_records(path)
}

/// Removes a token by name or id. Returns whether one was removed.
pub fn revoke_token(path: &Path, name_or_id: &str) -> Result<bool, ServeError> {
    let mut records = read_records(path)?;
    let before = records.len();
    records.retain(|r| r.name != name_or_id && r.id != name_or_id);
    if records.len() == before {
        return Ok(false);
    }
    write_records(path, &records)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_verify_scope_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let (token, _) =
            create_token(&path, "ci", vec![Scope::Infer], Some(vec!["iris".into()])).unwrap();
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(!stored.contains(&token), "only the hash is stored");
        let store = TokenStore::open(&path);
        let header = format!("Bearer {token}");
        assert!(store
            .authorize(Some(&header), Scope::Infer, Some("iris"), false)
            .is_ok());
        assert!(matches!(
            store.authorize(Some(&header), Scope::Infer, Some("other"), false),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            store.authorize(Some(&header), Scope::Publish, None, false),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            store.authorize(None, Scope::Infer, Some("iris"), false),
            Err(ApiError::Unauthorized)
        ));
        assert!(
            store
                .authorize(None, Scope::Infer, Some("iris"), true)
                .is_ok(),
            "public model"
        );
        let forged = format!("Bearer {}x", &token[..token.len() - 1]);
        assert!(matches!(
            store.authorize(Some(&forged), Scope::Infer, Some("iris"), false),
            Err(ApiError::Unauthorized)
        ));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(revoke_token(&path, "ci").unwrap());
        // Force a different mtime even on coarse file systems, and wait out the re-check interval.
        let f = std::fs::File::options().append(true).open(&path).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        std::thread::sleep(RECHECK + std::time::Duration::from_millis(50));
        assert!(matches!(
            store.authorize(Some(&header), Scope::Infer, Some("iris"), false),
            Err(ApiError::Unauthorized)
        ));
    }
}
