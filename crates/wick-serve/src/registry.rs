//! The model registry: immutable numbered versions in an object store, a default version per model,
//! and the loaded models this replica serves.
//!
//! Store layout (all keys under the store's prefix):
//! - `models/<name>/blobs/<sha256>.tar` — a package archive, content-addressed;
//! - `models/<name>/versions/<n>.json` — a version record. Written last and only if absent, so a
//!   version exists exactly when its record does, and two publishers can't take the same number;
//! - `models/<name>/settings.json` — the default version and whether the model is public.
//!
//! A crash mid-upload leaves at most an unreferenced blob: never a visible partial version.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;
use wick_core::model::Model;
use wick_core::package::{load_package, unpack_package, Manifest};
pub use wick_core::publish::PublishOptions;
pub use wick_core::wire::{ModelListing, Published, VersionRecord};

use crate::error::ServeError;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelSettings {
    pub default_version: Option<u64>,
    #[serde(default)]
    pub public: bool,
    /// Percent of unversioned calls per version (adding up to 100); `None` sends them all to the
    /// default. Making a version the default ends the split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<BTreeMap<u64, u32>>,
    /// The share of inference requests logged to the store (0 to 1); `None`: logging off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_sample: Option<f64>,
}

/// A version loaded and ready to answer.
pub struct LoadedVersion {
    pub record: VersionRecord,
    pub manifest: Manifest,
    pub model: Model,
}

#[derive(Default)]
struct ModelState {
    settings: ModelSettings,
    versions: BTreeMap<u64, Arc<LoadedVersion>>,
}

pub struct Registry {
    store: Arc<dyn ObjectStore>,
    cache_dir: PathBuf,
    models: RwLock<HashMap<String, ModelState>>,
}

/// The version a draw in `0..100` lands on, the versions taking their percentages in order.
fn draw(split: &BTreeMap<u64, u32>, roll: u32) -> Option<u64> {
    let mut upto = 0;
    split.iter().find_map(|(v, p)| {
        upto += p;
        (roll < upto).then_some(*v)
    })
}

fn describe_split(split: &BTreeMap<u64, u32>) -> String {
    split
        .iter()
        .map(|(v, p)| format!("v{v} {p}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Model names become store keys and URL segments: keep them simple.
pub fn check_model_name(name: &str) -> Result<(), ServeError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ServeError::Invalid(format!(
            "model name {name:?} is not allowed: use 1-64 letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

fn key(parts: &[&str]) -> StorePath {
    StorePath::from_iter(parts.iter().copied())
}

impl Registry {
    pub fn new(store: Arc<dyn ObjectStore>, cache_dir: PathBuf) -> Self {
        Self {
            store,
            cache_dir,
            models: RwLock::new(HashMap::new()),
        }
    }

    /// Opens a local folder or an `s3://bucket/prefix` URL.
    pub fn open_store(url: &str) -> Result<Arc<dyn ObjectStore>, ServeError> {
        if url.starts_with("s3://") {
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .with_allow_http(true)
                .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch)
                .build()?;
            let prefix = url
                .trim_start_matches("s3://")
                .split_once('/')
                .map(|(_, p)| p.trim_matches('/'))
                .unwrap_or("");
            if prefix.is_empty() {
                return Ok(Arc::new(store));
            }
            return Ok(Arc::new(object_store::prefix::PrefixStore::new(
                store, prefix,
            )));
        }
        std::fs::create_dir_all(url).map_err(|e| ServeError::Io {
            path: url.into(),
            source: e,
        })?;
        Ok(Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(url)?,
        ))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &StorePath,
    ) -> Result<Option<T>, ServeError> {
        match self.store.get(path).await {
            Ok(r) => {
                let bytes = r.bytes().await?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| ServeError::Invalid(format!("{path}: {e}")))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn put_json(
        &self,
        path: &StorePath,
        value: &impl Serialize,
        mode: PutMode,
    ) -> Result<(), ServeError> {
        let bytes =
            serde_json::to_vec_pretty(value).map_err(|e| ServeError::Invalid(e.to_string()))?;
        self.store
            .put_opts(
                path,
                PutPayload::from(bytes),
                PutOptions {
                    mode,
                    ..Default::default()
                },
            )
            .await?;
        Ok(())
    }

    async fn list_names(&self) -> Result<Vec<String>, ServeError> {
        let listing = self
            .store
            .list_with_delimiter(Some(&key(&["models"])))
            .await?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    async fn version_records(&self, name: &str) -> Result<Vec<VersionRecord>, ServeError> {
        let prefix = key(&["models", name, "versions"]);
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut records = Vec::new();
        for o in objects {
            if o.location.extension() == Some("json") {
                if let Some(r) = self.get_json::<VersionRecord>(&o.location).await? {
                    records.push(r);
                }
            }
        }
        records.sort_by_key(|r| r.version);
        Ok(records)
    }

    /// Stores a package archive as a new version (or returns the version with identical bytes).
    /// The archive must unpack to a loadable package before any version record is written.
    pub async fn publish(
        &self,
        name: &str,
        archive: Bytes,
        expected_sha256: Option<&str>,
        notes: &str,
    ) -> Result<Published, ServeError> {
        self.publish_with(
            name,
            archive,
            expected_sha256,
            notes,
            &PublishOptions::default(),
        )
        .await
    }

    /// [`Registry::publish`], as a canary or replacing the callers' inputs ([`PublishOptions`]).
    pub async fn publish_with(
        &self,
        name: &str,
        archive: Bytes,
        expected_sha256: Option<&str>,
        notes: &str,
        options: &PublishOptions,
    ) -> Result<Published, ServeError> {
        check_model_name(name)?;
        if let Some(p) = options.canary_percent {
            if !(1..=99).contains(&p) {
                return Err(ServeError::Invalid(format!(
                    "a canary takes 1 to 99 percent of the calls, not {p}"
                )));
            }
        }
        // Hashing a large upload takes a while: off the worker that answers other connections.
        let for_hash = archive.clone();
        let sha256 = tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&for_hash)))
            .await
            .map_err(|e| ServeError::Invalid(format!("hashing the upload failed: {e}")))?;
        if let Some(expected) = expected_sha256 {
            if !expected.eq_ignore_ascii_case(&sha256) {
                return Err(ServeError::Invalid(format!(
                    "upload damaged in transit: sha256 is {sha256}, the client sent {expected}"
                )));
            }
        }
        let existing = self.version_records(name).await?;
        if let Some(r) = existing.iter().find(|r| r.sha256 == sha256) {
            return Ok(Published {
                name: name.into(),
                version: r.version,
                sha256,
                existing: true,
            });
        }
        // Check it loads before it can become visible.
        let staging = tempfile::tempdir_in(self.ensure_cache()?).map_err(|e| ServeError::Io {
            path: self.cache_dir.clone(),
            source: e,
        })?;
        let unpack_dir = staging.path().join("package");
        let archive_for_check = archive.clone();
        let manifest = tokio::task::spawn_blocking(move || -> Result<Manifest, ServeError> {
            unpack_package(&archive_for_check, &unpack_dir)?;
            Ok(load_package(&unpack_dir)?.1)
        })
        .await
        .map_err(|e| ServeError::Invalid(format!("package check failed: {e}")))??;
        // The serving version's callers keep sending what it takes: a version that can't answer them
        // would turn every call into an error the moment it goes live.
        let serving = self.serving_version(name).await;
        if let (Some(serving), false) = (&serving, options.replace_inputs) {
            if let Some(why) = wick_core::package::caller_input_change(&serving.manifest, &manifest)
            {
                return Err(ServeError::Conflict(format!(
                    "`{name}` is served by version {} and this model can't answer its calls: {why}. Publish it under another name, \
                     or replace the inputs on purpose, if its callers change too (`wick publish --replace-inputs`, or replace_inputs=true)",
                    serving.record.version
                )));
            }
        }
        let canary_of = match (options.canary_percent, &serving) {
            (None, _) => None,
            (Some(_), None) => return Err(ServeError::Invalid(format!("`{name}` has no serving version for a canary to run beside; publish it without a canary"))),
            (Some(p), Some(serving)) => {
                if let Some(split) = self.models.read().await.get(name).and_then(|m| m.settings.traffic.clone()) {
                    return Err(ServeError::Conflict(format!("`{name}` already runs a canary ({}); promote it or end it first", describe_split(&split))));
                }
                Some((serving.record.version, p))
            }
        };

        let size_bytes = archive.len() as u64;
        self.store
            .put(
                &key(&["models", name, "blobs", &format!("{sha256}.tar")]),
                PutPayload::from(archive),
            )
            .await?;
        let mut version = existing.last().map_or(1, |r| r.version + 1);
        loop {
            let record = VersionRecord {
                version,
                sha256: sha256.clone(),
                size_bytes,
                created_at: chrono::Utc::now(),
                notes: notes.to_string(),
            };
            let path = key(&["models", name, "versions", &format!("{version}.json")]);
            match self.put_json(&path, &record, PutMode::Create).await {
                Ok(()) => break,
                Err(ServeError::Store(object_store::Error::AlreadyExists { .. })) => version += 1,
                Err(e) => return Err(e),
            }
        }
        // A new version becomes the default: publishing is deploying. Roll back to undo. A canary
        // leaves the serving version the default and splits the calls in the same write, so no
        // call reaches the new version before the split holds.
        let settings_path = key(&["models", name, "settings.json"]);
        let mut settings: ModelSettings = self.get_json(&settings_path).await?.unwrap_or_default();
        if let Some((serving, percent)) = canary_of {
            settings.default_version = Some(serving);
            settings.traffic = Some(
                [(serving, 100 - percent), (version, percent)]
                    .into_iter()
                    .collect(),
            );
            self.put_json(&settings_path, &settings, PutMode::Overwrite)
                .await?;
        } else if settings.default_version.is_none_or(|d| d < version) {
            settings.default_version = Some(version);
            self.put_json(&settings_path, &settings, PutMode::Overwrite)
                .await?;
        }
        self.refresh_model(name).await?;
        Ok(Published {
            name: name.into(),
            version,
            sha256,
            existing: false,
        })
    }

    /// Makes `version` the default (rollback or roll forward).
    pub async fn set_default(&self, name: &str, version: u64) -> Result<(), ServeError> {
        check_model_name(name)?;
        let records = self.version_records(name).await?;
        if !records.iter().any(|r| r.version == version) {
            return Err(ServeError::Invalid(format!(
                "model `{name}` has no version {version}"
            )));
        }
        let settings_path = key(&["models", name, "settings.json"]);
        let mut settings: ModelSettings = self.get_json(&settings_path).await?.unwrap_or_default();
        settings.default_version = Some(version);
        // Promoting a canary (or rolling back) is one call: the split ends with it.
        settings.traffic = None;
        self.put_json(&settings_path, &settings, PutMode::Overwrite)
            .await?;
        self.refresh_model(name).await
    }

    /// Splits unversioned calls between versions by percent. The versions must exist and the
    /// percentages add up to 100; an error says which rule broke.
    pub async fn set_traffic(
        &self,
        name: &str,
        percent: BTreeMap<u64, u32>,
    ) -> Result<(), ServeError> {
        check_model_name(name)?;
        let records = self.version_records(name).await?;
        if records.is_empty() {
            return Err(ServeError::Invalid(format!(
                "model `{name}` has no version to send traffic to"
            )));
        }
        if let Some(v) = percent
            .keys()
            .find(|v| !records.iter().any(|r| r.version == **v))
        {
            return Err(ServeError::Invalid(format!(
                "model `{name}` has no version {v}; its versions are {}",
                records
                    .iter()
                    .map(|r| r.version.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let total: u64 = percent.values().map(|&p| u64::from(p)).sum();
        if total != 100 {
            return Err(ServeError::Invalid(format!(
                "the traffic percentages add up to {total}; they must add up to 100"
            )));
        }
        let settings_path = key(&["models", name, "settings.json"]);
        let mut settings: ModelSettings = self.get_json(&settings_path).await?.unwrap_or_default();
        settings.traffic = Some(percent.into_iter().filter(|(_, p)| *p > 0).collect());
        self.put_json(&settings_path, &settings, PutMode::Overwrite)
            .await?;
        self.refresh_model(name).await
    }

    /// Logs this share (0 to 1) of the model's inference requests; 0 turns logging off.
    pub async fn set_logging(&self, name: &str, sample: f64) -> Result<(), ServeError> {
        check_model_name(name)?;
        if !(0.0..=1.0).contains(&sample) {
            return Err(ServeError::Invalid(format!(
                "the logging sample {sample} is not a share from 0 to 1"
            )));
        }
        let settings_path = key(&["models", name, "settings.json"]);
        let mut settings: ModelSettings = self.get_json(&settings_path).await?.unwrap_or_default();
        settings.log_sample = (sample > 0.0).then_some(sample);
        self.put_json(&settings_path, &settings, PutMode::Overwrite)
            .await?;
        self.refresh_model(name).await
    }

    /// The share of the model's requests to log (0 when logging is off).
    pub async fn log_sample(&self, name: &str) -> f64 {
        self.models
            .read()
            .await
            .get(name)
            .and_then(|m| m.settings.log_sample)
            .unwrap_or(0.0)
    }

    /// The store the registry keeps its models in (request logs are kept there too).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    pub async fn set_public(&self, name: &str, public: bool) -> Result<(), ServeError> {
        check_model_name(name)?;
        let settings_path = key(&["models", name, "settings.json"]);
        let mut settings: ModelSettings = self.get_json(&settings_path).await?.unwrap_or_default();
        settings.public = public;
        self.put_json(&settings_path, &settings, PutMode::Overwrite)
            .await?;
        self.refresh_model(name).await
    }

    /// Deletes a version. The default version can't be deleted: roll back first.
    pub async fn delete_version(&self, name: &str, version: u64) -> Result<(), ServeError> {
        check_model_name(name)?;
        let settings: ModelSettings = self
            .get_json(&key(&["models", name, "settings.json"]))
            .await?
            .unwrap_or_default();
        if settings.default_version == Some(version) {
            return Err(ServeError::Invalid(format!("version {version} is the default of `{name}`; make another version the default first")));
        }
        if settings
            .traffic
            .as_ref()
            .is_some_and(|t| t.contains_key(&version))
        {
            return Err(ServeError::Invalid(format!("version {version} answers part of `{name}`'s calls in its traffic split; make a version the default first, which ends the split")));
        }
        let path = key(&["models", name, "versions", &format!("{version}.json")]);
        let Some(record) = self.get_json::<VersionRecord>(&path).await? else {
            return Err(ServeError::Invalid(format!(
                "model `{name}` has no version {version}"
            )));
        };
        self.store.delete(&path).await?;
        let still_used = self
            .version_records(name)
            .await?
            .iter()
            .any(|r| r.sha256 == record.sha256);
        if !still_used {
            let _ = self
                .store
                .delete(&key(&[
                    "models",
                    name,
                    "blobs",
                    &format!("{}.tar", record.sha256),
                ]))
                .await;
        }
        self.refresh_model(name).await
    }

    /// Re-reads every model from the store (new versions from other replicas, rollbacks, deletions).
    pub async fn refresh(&self) -> Result<(), ServeError> {
        let names = self.list_names().await?;
        for name in &names {
            if let Err(e) = self.refresh_model(name).await {
                tracing::warn!(model = %name, error = %e, "could not refresh model");
            }
        }
        let mut models = self.models.write().await;
        models.retain(|n, _| names.contains(n));
        Ok(())
    }

    async fn refresh_model(&self, name: &str) -> Result<(), ServeError> {
        let settings: ModelSettings = self
            .get_json(&key(&["models", name, "settings.json"]))
            .await?
            .unwrap_or_default();
        let records = self.version_records(name).await?;
        let known: Vec<u64> = {
            let models = self.models.read().await;
            models
                .get(name)
                .map(|m| m.versions.keys().copied().collect())
                .unwrap_or_default()
        };
        let mut loaded = Vec::new();
        for r in records.iter().filter(|r| !known.contains(&r.version)) {
            match self.load_version(name, r).await {
                Ok(v) => loaded.push(v),
                Err(e) => {
                    tracing::warn!(model = %name, version = r.version, error = %e, "version could not be loaded; not serving it")
                }
            }
        }
        let mut models = self.models.write().await;
        let state = models.entry(name.to_string()).or_default();
        state.settings = settings;
        state
            .versions
            .retain(|v, _| records.iter().any(|r| r.version == *v));
        for v in loaded {
            state.versions.insert(v.record.version, Arc::new(v));
        }
        Ok(())
    }

    fn ensure_cache(&self) -> Result<&PathBuf, ServeError> {
        std::fs::create_dir_all(&self.cache_dir).map_err(|e| ServeError::Io {
            path: self.cache_dir.clone(),
            source: e,
        })?;
        Ok(&self.cache_dir)
    }

    async fn load_version(
        &self,
        name: &str,
        record: &VersionRecord,
    ) -> Result<LoadedVersion, ServeError> {
        let blob = self
            .store
            .get(&key(&[
                "models",
                name,
                "blobs",
                &format!("{}.tar", record.sha256),
            ]))
            .await?
            .bytes()
            .await?;
        let actual = hex::encode(Sha256::digest(&blob));
        if actual != record.sha256 {
            return Err(ServeError::Invalid(format!(
                "blob of {name} v{} is damaged (sha256 {actual})",
                record.version
            )));
        }
        let dir = tempfile::tempdir_in(self.ensure_cache()?).map_err(|e| ServeError::Io {
            path: self.cache_dir.clone(),
            source: e,
        })?;
        let record = record.clone();
        tokio::task::spawn_blocking(move || -> Result<LoadedVersion, ServeError> {
            let package = dir.path().join("package");
            unpack_package(&blob, &package)?;
            let (model, manifest) = load_package(&package)?;
            Ok(LoadedVersion {
                record,
                manifest,
                model,
            })
        })
        .await
        .map_err(|e| ServeError::Invalid(format!("loading failed: {e}")))?
    }

    /// The loaded version that answers most unversioned calls ([`wick_core::wire::serving_version`]).
    pub async fn serving_version(&self, name: &str) -> Option<Arc<LoadedVersion>> {
        let models = self.models.read().await;
        let state = models.get(name)?;
        let v = wick_core::wire::serving_version(
            state.settings.traffic.as_ref(),
            state.settings.default_version,
        )?;
        state.versions.get(&v).cloned()
    }

    /// The version to serve: `version` if given, else one drawn by the traffic split, else the
    /// model's default.
    pub async fn resolve(
        &self,
        name: &str,
        version: Option<u64>,
    ) -> Option<(Arc<LoadedVersion>, bool)> {
        let models = self.models.read().await;
        let state = models.get(name)?;
        let v = version
            .or_else(|| {
                state
                    .settings
                    .traffic
                    .as_ref()
                    .and_then(|split| draw(split, rand::random_range(0..100)))
            })
            .or(state.settings.default_version)?;
        state
            .versions
            .get(&v)
            .map(|l| (l.clone(), state.settings.public))
    }

    /// Each loaded version's training profile (table models trained with this Wick).
    pub async fn training_profiles(
        &self,
        name: &str,
    ) -> BTreeMap<u64, wick_core::drift::TrainingProfile> {
        let models = self.models.read().await;
        let Some(state) = models.get(name) else {
            return BTreeMap::new();
        };
        state
            .versions
            .iter()
            .filter_map(|(v, l)| Some((*v, l.manifest.training_profile.clone()?)))
            .collect()
    }

    pub async fn is_public(&self, name: &str) -> bool {
        self.models
            .read()
            .await
            .get(name)
            .is_some_and(|m| m.settings.public)
    }

    pub async fn versions_of(&self, name: &str) -> Option<Vec<u64>> {
        self.models
            .read()
            .await
            .get(name)
            .map(|m| m.versions.keys().copied().collect())
    }

    pub async fn list(&self) -> Vec<ModelListing> {
        let models = self.models.read().await;
        let mut out: Vec<ModelListing> = models
            .iter()
            .map(|(name, m)| ModelListing {
                name: name.clone(),
                default_version: m.settings.default_version,
                public: m.settings.public,
                versions: m.versions.values().map(|v| v.record.clone()).collect(),
                traffic: m.settings.traffic.clone(),
                log_sample: m.settings.log_sample,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
