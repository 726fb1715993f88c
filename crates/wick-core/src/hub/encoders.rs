//! Pretrained sentence encoders on the Hub: a sentence-transformers folder (config, tokenizer,
//! weights, and the files that say how to pool), downloaded file by file into the same cache as
//! the backbones, with the same progress, resume, checks and offline message.

use std::path::PathBuf;

use hf_hub::api::sync::ApiError;
use hf_hub::{Repo, RepoType};

use super::{remove_cached, verify, HubClient, ProgressAdapter, DEFAULT_ENDPOINT};
use crate::error::{Result, WickError};

/// One pretrained sentence encoder Wick can download and train on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HubEncoder {
    /// What `--encoder` takes.
    pub name: &'static str,
    pub title: &'static str,
    /// Hub repository (sentence-transformers layout).
    pub repo: &'static str,
    pub params_millions: f32,
    /// Size of the download (the weights; the other files are small).
    pub download_mb: u32,
    pub languages: &'static str,
    pub licence: &'static str,
    pub summary: &'static str,
}

/// The encoders offered for text, smallest download first.
pub const ENCODERS: &[HubEncoder] = &[
    HubEncoder {
        name: "minilm",
        title: "all-MiniLM-L6-v2",
        repo: "sentence-transformers/all-MiniLM-L6-v2",
        params_millions: 22.7,
        download_mb: 91,
        languages: "English",
        licence: "Apache-2.0",
        summary: "small and fast; a good first choice for English",
    },
    HubEncoder {
        name: "bge-small",
        title: "BGE small English v1.5",
        repo: "BAAI/bge-small-en-v1.5",
        params_millions: 33.4,
        download_mb: 134,
        languages: "English",
        licence: "MIT",
        summary: "stronger on English, a little slower",
    },
    HubEncoder {
        name: "multilingual-minilm",
        title: "paraphrase-multilingual-MiniLM-L12-v2",
        repo: "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
        params_millions: 118.0,
        download_mb: 471,
        languages: "50+ languages",
        licence: "Apache-2.0",
        summary: "for text in other languages than English, or several",
    },
];

/// The encoder a text model gets unless the user picks another.
pub const DEFAULT_ENCODER: &str = "minilm";

/// The files of an encoder's folder, downloaded in this order: the weights last, so that cached
/// weights mean the folder is whole. `false`: the file may be missing (a plain BERT repository has
/// no sentence-transformers files; the encoder then pools by the mean, without normalising).
const ENCODER_FILES: [(&str, bool); 6] = [
    ("config.json", true),
    ("tokenizer.json", true),
    ("sentence_bert_config.json", false),
    ("modules.json", false),
    ("1_Pooling/config.json", false),
    ("model.safetensors", true),
];

const WEIGHTS: &str = "model.safetensors";

/// An encoder by name or title (`minilm`, `all-MiniLM-L6-v2` alike).
pub fn encoder(name: &str) -> Option<&'static HubEncoder> {
    let key = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let wanted = key(name);
    ENCODERS
        .iter()
        .find(|e| key(e.name) == wanted || key(e.title) == wanted || key(e.repo) == wanted)
}

/// The names `--encoder` takes, for messages.
pub fn encoder_names() -> String {
    ENCODERS
        .iter()
        .map(|e| e.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl HubClient {
    /// Where a person may put an encoder's folder by hand (offline machines); used before the Hub.
    pub fn encoder_manual_dir(&self, encoder: &HubEncoder) -> PathBuf {
        self.cache_dir.join("manual").join(encoder.name)
    }

    fn encoder_repo(encoder: &HubEncoder) -> Repo {
        Repo::new(encoder.repo.to_string(), RepoType::Model)
    }

    /// The encoder's folder when its weights are here (put by hand, or downloaded before).
    pub fn cached_encoder(&self, encoder: &HubEncoder) -> Option<PathBuf> {
        let manual = self.encoder_manual_dir(encoder);
        if manual.join(WEIGHTS).is_file() {
            return Some(manual);
        }
        hf_hub::Cache::new(self.cache_dir.clone())
            .repo(Self::encoder_repo(encoder))
            .get(WEIGHTS)
            .and_then(|weights| weights.parent().map(PathBuf::from))
    }

    /// The encoder's folder (what [`crate::model::text_encoder::SentenceEncoder::load`] reads),
    /// downloaded first if its weights are not cached; `on_progress(done, total)` gets the bytes
    /// of each file as they arrive. Weights in the cache that fail their check are removed and
    /// downloaded again.
    pub fn fetch_encoder(
        &self,
        encoder: &HubEncoder,
        on_progress: &mut dyn FnMut(u64, u64),
    ) -> Result<PathBuf> {
        let manual = self.encoder_manual_dir(encoder);
        if manual.join(WEIGHTS).is_file() {
            // A folder put by hand is the person's own: loading it says what is wrong, if anything.
            return Ok(manual);
        }
        let repo = Self::encoder_repo(encoder);
        let cache = hf_hub::Cache::new(self.cache_dir.clone()).repo(repo.clone());
        if let Some(weights) = cache.get(WEIGHTS) {
            match verify(&weights) {
                Ok(()) => return weights_folder(&weights),
                Err(_) => remove_cached(&weights),
            }
        }
        let hint = format!(
            "To train offline, download the files of {DEFAULT_ENDPOINT}/{} (config.json, tokenizer.json, model.safetensors and, where the repository has them, sentence_bert_config.json, modules.json and 1_Pooling/config.json) on another machine into {}",
            encoder.repo,
            manual.display()
        );
        let mut progress = ProgressAdapter::new(on_progress);
        let mut weights = None;
        for (file, required) in ENCODER_FILES {
            let what = format!(
                "{} ({}/{file} from {})",
                encoder.title, encoder.repo, self.endpoint
            );
            let path = match self.download(&repo, file, &mut progress) {
                Ok(path) => path,
                Err(ApiError::RequestError(e))
                    if !required && matches!(*e, ureq::Error::Status(404, _)) =>
                {
                    continue
                }
                Err(e) => return Err(self.download_error(encoder.repo, &what, &hint, e)),
            };
            if file == WEIGHTS {
                if let Err(message) = verify(&path) {
                    remove_cached(&path);
                    return Err(WickError::Download {
                        what,
                        message: format!("{message}; it was removed from the cache. Check HF_ENDPOINT if it points at a mirror, then try again"),
                    });
                }
                weights = Some(path);
            }
        }
        match weights {
            Some(weights) => weights_folder(&weights),
            None => Err(WickError::Download {
                what: encoder.title.into(),
                message: "the download ended without the weights; run again".into(),
            }),
        }
    }
}

/// The snapshot folder holding a downloaded encoder's files.
fn weights_folder(weights: &std::path::Path) -> Result<PathBuf> {
    weights
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| WickError::data(weights, "has no folder"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoders_are_found_by_name_title_or_repository() {
        assert_eq!(encoder("minilm").map(|e| e.name), Some("minilm"));
        assert_eq!(encoder("all-MiniLM-L6-v2").map(|e| e.name), Some("minilm"));
        assert_eq!(
            encoder("BAAI/bge-small-en-v1.5").map(|e| e.name),
            Some("bge-small")
        );
        assert!(encoder(DEFAULT_ENCODER).is_some());
        assert!(encoder("gpt2").is_none());
        assert!(encoder_names().contains("multilingual-minilm"));
    }
}
