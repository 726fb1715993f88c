//! The audit log: who changed what, kept in the model store beside the models.
//!
//! Each entry is its own object, `audit/<unix millis>-<random>.json`, written only if absent, so
//! replicas sharing a store never overwrite each other's entries and an entry is either whole or
//! absent. Keys sort by time, so reading the newest is a listing and a few reads.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::ServeError;

/// One change to the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: chrono::DateTime<chrono::Utc>,
    /// The id of the token that made the change (never the token itself).
    pub token_id: String,
    /// `publish`, `set_default`, `traffic`, `logging`, `set_public`, `delete_version`, `token_create`
    /// or `token_revoke`.
    pub action: String,
    pub model: String,
    /// What changed, e.g. `{"version": 3}`.
    pub details: serde_json::Value,
}

/// Entries `GET /v2/wick/audit` returns at most, the newest.
pub const MAX_AUDIT_ENTRIES: usize = 1000;

pub struct AuditLog {
    store: Arc<dyn ObjectStore>,
}

impl AuditLog {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Appends an entry.
    pub async fn append(&self, entry: &AuditEntry) -> Result<(), ServeError> {
        let key = StorePath::from(format!(
            "audit/{:013}-{:016x}.json",
            entry.at.timestamp_millis().max(0),
            rand::random::<u64>()
        ));
        let bytes = serde_json::to_vec(entry).map_err(|e| ServeError::Invalid(e.to_string()))?;
        self.store
            .put_opts(
                &key,
                PutPayload::from(bytes),
                PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                },
            )
            .await?;
        Ok(())
    }

    /// The newest `limit` entries, oldest first. An entry that can't be read is skipped (and
    /// logged), so one damaged object does not hide the rest.
    pub async fn read(&self, limit: usize) -> Result<Vec<AuditEntry>, ServeError> {
        let mut objects: Vec<_> = self
            .store
            .list(Some(&StorePath::from("audit")))
            .try_collect()
            .await?;
        objects.sort_by(|a, b| a.location.as_ref().cmp(b.location.as_ref()));
        let start = objects.len().saturating_sub(limit);
        let mut entries = Vec::new();
        for object in &objects[start..] {
            let bytes = self.store.get(&object.location).await?.bytes().await?;
            match serde_json::from_slice::<AuditEntry>(&bytes) {
                Ok(entry) => entries.push(entry),
                Err(e) => {
                    tracing::warn!(key = %object.location, error = %e, "skipping an unreadable audit entry")
                }
            }
        }
        Ok(entries)
    }
}
