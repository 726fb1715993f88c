//! Pretrained backbones and sentence encoders, and their download from the Hugging Face Hub on
//! first use (encoders in `encoders`).
//!
//! [`BACKBONES`] lists the backbones Wick runs (the architectures candle-transformers implements, with
//! weights in its naming). [`HubClient::fetch`] downloads one with `hf-hub` into Wick's cache folder,
//! resumes an interrupted download, checks the file's SHA-256 against the Hub's ETag and that it is a
//! safetensors file, and says what to do when the Hub can't be reached.

use std::io::Read;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Repo, RepoType};
use sha2::{Digest, Sha256};

use crate::error::{Result, WickError};
use crate::model::BackboneArch;
use crate::train::{TrainEvent, TrainObserver};

mod encoders;
pub use encoders::{encoder, encoder_names, HubEncoder, DEFAULT_ENCODER, ENCODERS};

/// The Hub, unless `HF_ENDPOINT` names a mirror.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Read for a mirror of the Hub, as every Hugging Face tool does.
pub const ENDPOINT_ENV: &str = "HF_ENDPOINT";
/// Overrides the cache folder (tests, shared machines).
pub const CACHE_ENV: &str = "WICK_HUB_CACHE";
/// Times a dropped connection is resumed from where it stopped before the download gives up.
const DOWNLOAD_RETRIES: usize = 3;

/// One pretrained backbone Wick can download and train on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HubBackbone {
    /// What `--backbone` takes.
    pub name: &'static str,
    pub title: &'static str,
    pub arch: BackboneArch,
    /// Hub repository and file of its weights (candle-transformers' tensor names).
    pub repo: &'static str,
    pub file: &'static str,
    pub params_millions: f32,
    /// Size of the download.
    pub download_mb: u32,
    /// The side of the square images it was trained on; Wick resizes to it.
    pub input_px: usize,
    pub summary: &'static str,
}

/// The backbones offered for transfer learning, smallest download first.
pub const BACKBONES: &[HubBackbone] = &[
    HubBackbone {
        name: "mobilenetv4",
        title: "MobileNetV4 small",
        arch: BackboneArch::MobileNetV4Small,
        repo: "timm/mobilenetv4_conv_small.e2400_r224_in1k",
        file: "model.safetensors",
        params_millions: 3.8,
        download_mb: 15,
        input_px: 224,
        summary: "small and fast; for laptops and many photos",
    },
    HubBackbone {
        name: "resnet18",
        title: "ResNet-18",
        arch: BackboneArch::Resnet18,
        repo: "lmz/candle-resnet",
        file: "resnet18.safetensors",
        params_millions: 11.7,
        download_mb: 47,
        input_px: 224,
        summary: "a good balance of speed and accuracy",
    },
    HubBackbone {
        name: "resnet34",
        title: "ResNet-34",
        arch: BackboneArch::Resnet34,
        repo: "lmz/candle-resnet",
        file: "resnet34.safetensors",
        params_millions: 21.8,
        download_mb: 87,
        input_px: 224,
        summary: "deeper than ResNet-18, about twice as slow",
    },
    HubBackbone {
        name: "resnet50",
        title: "ResNet-50",
        arch: BackboneArch::Resnet50,
        repo: "lmz/candle-resnet",
        file: "resnet50.safetensors",
        params_millions: 25.6,
        download_mb: 103,
        input_px: 224,
        summary: "the most accurate; slowest on a CPU",
    },
];

/// The backbone Wick picks when none is named.
pub const DEFAULT_BACKBONE: &str = "resnet18";

/// A backbone by name (`resnet18`, `ResNet-18` and `resnet-18` alike).
pub fn backbone(name: &str) -> Option<&'static HubBackbone> {
    let key: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    BACKBONES.iter().find(|b| {
        b.name == key
            || b.title
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .eq_ignore_ascii_case(&key)
    })
}

/// The names `--backbone` takes, for messages.
pub fn backbone_names() -> String {
    BACKBONES
        .iter()
        .map(|b| b.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where backbones come from and where they are kept.
#[derive(Debug, Clone)]
pub struct HubClient {
    endpoint: String,
    cache_dir: PathBuf,
}

impl HubClient {
    pub fn new(endpoint: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            endpoint: endpoint.into().trim_end_matches('/').to_string(),
            cache_dir: cache_dir.into(),
        }
    }

    /// The Hub (or the mirror in `HF_ENDPOINT`), cached in the user's cache folder (or `WICK_HUB_CACHE`).
    pub fn from_env() -> Result<Self> {
        let endpoint = std::env::var(ENDPOINT_ENV)
            .ok()
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let cache_dir = match std::env::var_os(CACHE_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => directories::ProjectDirs::from("dev", "Wick", "wick")
                .map(|d| d.cache_dir().join("hub"))
                .ok_or_else(|| WickError::Download {
                    what: "backbone weights".into(),
                    message: format!("this system has no user cache folder; set {CACHE_ENV} to a folder to keep downloads in"),
                })?,
        };
        Ok(Self::new(endpoint, cache_dir))
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Where a person may put a backbone's file by hand (offline machines); used before the Hub.
    pub fn manual_path(&self, backbone: &HubBackbone) -> PathBuf {
        self.cache_dir
            .join("manual")
            .join(format!("{}.safetensors", backbone.name))
    }

    fn repo(&self, backbone: &HubBackbone) -> Repo {
        Repo::new(backbone.repo.to_string(), RepoType::Model)
    }

    /// The backbone's file when it is already here (put by hand, or downloaded before).
    pub fn cached(&self, backbone: &HubBackbone) -> Option<PathBuf> {
        let manual = self.manual_path(backbone);
        if manual.is_file() {
            return Some(manual);
        }
        hf_hub::Cache::new(self.cache_dir.clone())
            .repo(self.repo(backbone))
            .get(backbone.file)
    }

    /// The backbone's weights file, downloaded first if it is not cached; `on_progress(done, total)`
    /// gets the bytes of a download as they arrive. A file in the cache that fails its check is
    /// removed and downloaded again.
    pub fn fetch(
        &self,
        backbone: &HubBackbone,
        on_progress: &mut dyn FnMut(u64, u64),
    ) -> Result<PathBuf> {
        let what = format!(
            "{} ({}/{} from {})",
            backbone.title, backbone.repo, backbone.file, self.endpoint
        );
        if let Some(path) = self.cached(backbone) {
            match verify(&path) {
                Ok(()) => return Ok(path),
                Err(_) if path == self.manual_path(backbone) => {
                    // A file put by hand is the person's own: say what is wrong, never delete it.
                    return Err(WickError::data(&path, "is not a safetensors file; replace it with the backbone's weights or remove it"));
                }
                Err(_) => remove_cached(&path),
            }
        }
        let mut progress = ProgressAdapter::new(on_progress);
        let path = self
            .download(&self.repo(backbone), backbone.file, &mut progress)
            .map_err(|e| {
                self.download_error(backbone.repo, &what, &self.offline_hint(backbone), e)
            })?;
        if let Err(message) = verify(&path) {
            remove_cached(&path);
            return Err(WickError::Download {
                what,
                message: format!("{message}; it was removed from the cache. Check HF_ENDPOINT if it points at a mirror, then try again"),
            });
        }
        Ok(path)
    }

    /// Downloads `file` of `repo` into the cache, resuming a partial download, with progress.
    fn download(
        &self,
        repo: &Repo,
        file: &str,
        progress: &mut ProgressAdapter<'_>,
    ) -> std::result::Result<PathBuf, ApiError> {
        let api = ApiBuilder::new()
            .with_endpoint(self.endpoint.clone())
            .with_cache_dir(self.cache_dir.clone())
            .with_token(None)
            .with_progress(false)
            .with_retries(DOWNLOAD_RETRIES)
            .build()?;
        let handle = api.repo(repo.clone());
        let mut result = handle.download_with_progress(file, &mut *progress);
        if matches!(result, Err(ApiError::InvalidResume)) {
            // A partial file longer than the file itself (it changed on the Hub): start again.
            self.remove_partial_downloads(repo);
            result = handle.download_with_progress(file, &mut *progress);
        }
        result
    }

    fn remove_partial_downloads(&self, repo: &Repo) {
        let blobs = self.cache_dir.join(repo.folder_name()).join("blobs");
        for entry in std::fs::read_dir(blobs).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// What to do without the Hub: where to put the file by hand.
    fn offline_hint(&self, backbone: &HubBackbone) -> String {
        format!(
            "To train offline, download {DEFAULT_ENDPOINT}/{}/resolve/main/{} on another machine and save it as {}, or pass a local .safetensors file as the backbone",
            backbone.repo,
            backbone.file,
            self.manual_path(backbone).display(),
        )
    }

    /// A failed download of a file of `repo`, said for the person (`what` names it).
    fn download_error(
        &self,
        repo: &str,
        what: &str,
        offline_hint: &str,
        error: ApiError,
    ) -> WickError {
        let message = match error {
            ApiError::RequestError(e) => match *e {
                ureq::Error::Status(404, _) => format!("the Hub has no such file (HTTP 404). If {ENDPOINT_ENV} points at a mirror, check that it mirrors {repo}"),
                ureq::Error::Status(code @ (401 | 403), _) => format!("the Hub refused the download (HTTP {code}). {offline_hint}"),
                ureq::Error::Status(code, _) => format!("the Hub answered HTTP {code}; try again later. {offline_hint}"),
                ureq::Error::Transport(t) => format!("could not reach {} ({t}). Check the connection, or set {ENDPOINT_ENV} to a mirror. {offline_hint}", self.endpoint),
            },
            ApiError::MissingHeader(header) | ApiError::InvalidHeader(header) => format!(
                "{} answered with something that is not a Hub file (its `{header}` header is missing or wrong). Is {ENDPOINT_ENV} a Hugging Face Hub or a mirror of one?",
                self.endpoint
            ),
            ApiError::ParseIntError(_) => format!("{} sent a file size that is not a number; is {ENDPOINT_ENV} a Hugging Face Hub?", self.endpoint),
            ApiError::TooManyRetries(e) => format!("the connection kept dropping ({e}); run again to resume the download where it stopped"),
            ApiError::IoError(e) => format!("could not write to the cache folder {} ({e}); check the disk has space", self.cache_dir.display()),
            ApiError::InvalidResume => "the partial download did not match the file; run again to start it afresh".into(),
            ApiError::LockAcquisition(path) => format!("another download of it is running (lock {}); wait for it to finish", path.display()),
        };
        WickError::Download {
            what: what.into(),
            message,
        }
    }
}

/// hf-hub's progress calls, turned into `(done, total)` bytes at most every quarter percent.
struct ProgressAdapter<'a> {
    on_progress: &'a mut dyn FnMut(u64, u64),
    done: u64,
    total: u64,
    reported: u64,
}

impl<'a> ProgressAdapter<'a> {
    fn new(on_progress: &'a mut dyn FnMut(u64, u64)) -> Self {
        Self {
            on_progress,
            done: 0,
            total: 0,
            reported: 0,
        }
    }
}

impl hf_hub::api::Progress for &mut ProgressAdapter<'_> {
    fn init(&mut self, size: usize, _filename: &str) {
        // Called again when a dropped download resumes, followed by an update of the bytes it has.
        self.total = size as u64;
        self.done = 0;
        self.reported = 0;
    }

    fn update(&mut self, size: usize) {
        self.done += size as u64;
        if self.done >= self.reported + self.total / 400 || self.done >= self.total {
            self.reported = self.done;
            (self.on_progress)(self.done, self.total);
        }
    }

    fn finish(&mut self) {}
}

/// A cached file is whole when its SHA-256 equals the Hub's ETag (the name hf-hub gives its blob,
/// the LFS object's SHA-256) and it reads as safetensors.
fn verify(path: &Path) -> std::result::Result<(), String> {
    let blob = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let etag = blob
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit()) {
        let sha =
            sha256_file(&blob).map_err(|e| format!("could not read the downloaded file ({e})"))?;
        if sha != etag {
            return Err(format!(
                "the downloaded file's SHA-256 is {sha}, the Hub said {etag}"
            ));
        }
    }
    check_safetensors_header(&blob)
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The safetensors layout: an 8-byte little-endian header length, a JSON header whose tensors'
/// byte ranges fit in the file. An HTML page or a truncated file fails here.
fn check_safetensors_header(path: &Path) -> std::result::Result<(), String> {
    read_safetensors_header(path)
        .map(|_| ())
        .map_err(|why| format!("the downloaded file is not a safetensors file ({why})"))
}

/// A safetensors file's tensor entries by name, after checking they lie inside the file.
fn read_safetensors_header(
    path: &Path,
) -> std::result::Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut size = [0u8; 8];
    file.read_exact(&mut size)
        .map_err(|_| "it is shorter than a header".to_string())?;
    let header_len = u64::from_le_bytes(size);
    if header_len == 0 || header_len > 100 << 20 || header_len + 8 > len {
        return Err("its header length does not fit the file".into());
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|_| "its header is cut short".to_string())?;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|_| "its header is not JSON".to_string())?;
    header.remove("__metadata__");
    let data_len = len - 8 - header_len;
    for (name, entry) in &header {
        let end = entry
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(|v| v.as_u64());
        match end {
            Some(end) if end <= data_len => {}
            _ => return Err(format!("tensor `{name}` lies past the end of the file")),
        }
    }
    Ok(header)
}

/// Which architecture a local weights file holds, from its tensor names (candle-transformers'
/// naming): MobileNetV4 has a `conv_stem`, a bottleneck ResNet a third convolution per block, and
/// ResNet-34 a sixth block in its third stage.
pub fn detect_arch(weights: &Path) -> Result<BackboneArch> {
    let header = read_safetensors_header(weights).map_err(|why| {
        WickError::data(
            weights,
            format!(
                "is not a safetensors file ({why}); a backbone is a .safetensors file of weights"
            ),
        )
    })?;
    let has = |name: &str| header.contains_key(name);
    Ok(if has("conv_stem.weight") {
        BackboneArch::MobileNetV4Small
    } else if has("layer1.0.conv3.weight") {
        BackboneArch::Resnet50
    } else if has("layer3.5.conv1.weight") {
        BackboneArch::Resnet34
    } else if has("layer1.0.conv1.weight") {
        BackboneArch::Resnet18
    } else {
        return Err(WickError::data(
            weights,
            "holds no ResNet or MobileNetV4 weights in candle-transformers' naming (no `layer1.0.conv1.weight` or `conv_stem.weight` tensor)",
        ));
    })
}

/// Where a backbone's weights come from: a name from [`BACKBONES`], or a local safetensors file.
#[derive(Debug, Clone, PartialEq)]
pub enum BackboneSource {
    Hub(&'static HubBackbone),
    File(PathBuf),
}

impl BackboneSource {
    /// A backbone name, or the path of a file (one that exists, or ends in `.safetensors`).
    pub fn parse(text: &str) -> Result<Self> {
        let path = Path::new(text);
        if path.is_file()
            || path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
        {
            return Ok(Self::File(path.to_path_buf()));
        }
        backbone(text).map(Self::Hub).ok_or_else(|| {
            WickError::InvalidSpec(format!(
                "`{text}` is neither a backbone Wick knows ({}) nor a .safetensors file",
                backbone_names()
            ))
        })
    }

    /// The side of the square input the backbone was trained on.
    pub fn input_px(&self) -> usize {
        match self {
            Self::Hub(b) => b.input_px,
            Self::File(_) => 224,
        }
    }

    /// The weights on this machine and their architecture: a Hub backbone is downloaded on first
    /// use, reporting [`TrainEvent::Downloading`] to `observer`.
    pub fn resolve(
        &self,
        client: &HubClient,
        observer: &mut dyn TrainObserver,
    ) -> Result<(BackboneArch, PathBuf)> {
        match self {
            Self::File(path) => {
                if !path.is_file() {
                    return Err(WickError::data(
                        path,
                        "does not exist; pass a backbone's .safetensors file, or a name: "
                            .to_string()
                            + &backbone_names(),
                    ));
                }
                Ok((detect_arch(path)?, path.clone()))
            }
            Self::Hub(b) => {
                let file = format!("{}/{}", b.repo, b.file);
                let path = client.fetch(b, &mut |bytes_done, bytes_total| {
                    observer.on_event(TrainEvent::Downloading {
                        file: file.clone(),
                        bytes_done,
                        bytes_total,
                    })
                })?;
                Ok((b.arch, path))
            }
        }
    }
}

/// Removes a cached file that failed its check: the blob, and the snapshot's link to it.
fn remove_cached(path: &Path) {
    if let Ok(blob) = std::fs::canonicalize(path) {
        let _ = std::fs::remove_file(blob);
    }
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn backbones_are_found_by_name_or_title() {
        assert_eq!(backbone("resnet18").unwrap().arch, BackboneArch::Resnet18);
        assert_eq!(backbone("ResNet-50").unwrap().arch, BackboneArch::Resnet50);
        assert_eq!(
            backbone("mobilenetv4").unwrap().arch,
            BackboneArch::MobileNetV4Small
        );
        assert!(backbone("vgg16").is_none());
        assert!(backbone(DEFAULT_BACKBONE).is_some());
    }

    #[test]
    fn a_page_is_not_a_safetensors_file() {
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("page.safetensors");
        std::fs::write(&html, "<!doctype html><html><body>Sign in</body></html>").unwrap();
        assert!(check_safetensors_header(&html)
            .unwrap_err()
            .contains("not a safetensors file"));
        let ok = dir.path().join("ok.safetensors");
        let t =
            candle_core::Tensor::zeros((2, 3), candle_core::DType::F32, &candle_core::Device::Cpu)
                .unwrap();
        candle_core::safetensors::save(
            &std::collections::HashMap::from([("w".to_string(), t)]),
            &ok,
        )
        .unwrap();
        check_safetensors_header(&ok).unwrap();
        // Cut short: the header says more bytes than the file has.
        let bytes = std::fs::read(&ok).unwrap();
        std::fs::write(&ok, &bytes[..bytes.len() - 4]).unwrap();
        assert!(check_safetensors_header(&ok)
            .unwrap_err()
            .contains("past the end"));
        assert!(detect_arch(&html)
            .unwrap_err()
            .to_string()
            .contains("not a safetensors file"));
    }

    #[test]
    fn a_local_file_says_which_backbone_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        for arch in [
            BackboneArch::Resnet18,
            BackboneArch::Resnet50,
            BackboneArch::MobileNetV4Small,
        ] {
            let path = dir.path().join(format!("{arch:?}.safetensors"));
            crate::model::transfer::write_random_weights(arch, &path).unwrap();
            assert_eq!(detect_arch(&path).unwrap(), arch);
        }
        assert!(
            matches!(BackboneSource::parse("resnet50").unwrap(), BackboneSource::Hub(b) if b.arch == BackboneArch::Resnet50)
        );
        assert!(matches!(
            BackboneSource::parse("mine.safetensors").unwrap(),
            BackboneSource::File(_)
        ));
        let err = BackboneSource::parse("vgg").unwrap_err().to_string();
        assert!(
            err.contains("resnet18") && err.contains("mobilenetv4"),
            "{err}"
        );
    }
}
