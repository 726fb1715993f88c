//! A pretrained sentence encoder: a BERT-family model in the sentence-transformers layout (the
//! Hub's `all-MiniLM-L6-v2`, `bge-small-en-v1.5`, …) turns each text into one vector. The model's
//! own files say how: `tokenizer.json` splits the text, `sentence_bert_config.json` gives the token
//! limit, `1_Pooling/config.json` mean or CLS pooling, and `modules.json` whether the vector is
//! normalised.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use serde::{Deserialize, Serialize};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::{Result, WickError};

/// How the token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The mean of the text's token vectors (padding left out).
    Mean,
    /// The first token's vector (`[CLS]`).
    Cls,
}

/// Texts encoded at once: enough to keep the matrix products busy, small enough for a laptop.
pub const ENCODE_BATCH: usize = 32;

/// A loaded encoder, ready to encode on its device.
pub struct SentenceEncoder {
    bert: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
    normalize: bool,
    max_tokens: usize,
    dim: usize,
    device: Device,
}

/// Vectors of a list of texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Row-major, `dim` values per text, in the order the texts came.
    pub vectors: Vec<f32>,
    pub dim: usize,
    /// Texts longer than the model's token limit, cut to it (as sentence-transformers does).
    pub truncated: usize,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
}

impl SentenceEncoder {
    /// Loads the encoder in `dir` (a sentence-transformers model folder, as the Hub has it).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config: BertConfig = read_json(dir, "config.json")?;
        let mut tokenizer =
            Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| WickError::Package {
                path: dir.join("tokenizer.json"),
                message: format!("not a tokenizer Wick can read: {e}"),
            })?;
        // A folder without the sentence-transformers files is a plain BERT: mean pooling, no
        // normalisation, the model's position limit.
        let pooling = match read_json_if_there::<PoolingConfig>(dir, "1_Pooling/config.json")? {
            Some(p) if p.pooling_mode_cls_token && !p.pooling_mode_mean_tokens => Pooling::Cls,
            _ => Pooling::Mean,
        };
        let normalize = read_json_if_there::<Vec<Module>>(dir, "modules.json")?
            .is_some_and(|m| m.iter().any(|m| m.kind.ends_with(".Normalize")));
        let max_tokens =
            read_json_if_there::<SentenceBertConfig>(dir, "sentence_bert_config.json")?
                .and_then(|c| c.max_seq_length)
                .unwrap_or(config.max_position_embeddings)
                .min(config.max_position_embeddings);
        // The file's own padding (often fixed at 128) and truncation give way to the model's limit.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| WickError::InvalidSpec(format!("tokenizer truncation: {e}")))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: config.pad_token_id as u32,
            ..PaddingParams::default()
        }));
        let weights = dir.join("model.safetensors");
        let tensors =
            candle_core::safetensors::load(&weights, device).map_err(|e| WickError::Package {
                path: weights.clone(),
                message: format!("the weights can't be read ({e}); download the model again"),
            })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let bert = BertModel::load(vb, &config).map_err(|e| WickError::Package {
            path: weights,
            message: format!("not a BERT encoder Wick can load: {e}"),
        })?;
        Ok(Self {
            bert,
            tokenizer,
            pooling,
            normalize,
            max_tokens,
            dim: config.hidden_size,
            device: device.clone(),
        })
    }

    /// Length of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The most tokens of a text the encoder reads; longer texts are cut.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Encodes `texts`, [`ENCODE_BATCH`] at a time.
    pub fn encode(&self, texts: &[&str]) -> Result<Encoded> {
        self.encode_with_progress(texts, &mut |_, _| {}, &|| false)
    }

    /// As [`SentenceEncoder::encode`], telling `progress` the texts done and the total after each
    /// batch, and ending with [`WickError::Cancelled`] between batches once `stop` says so (a
    /// run's `CancelToken::is_cancelled`; the model layer sits below `train`).
    pub fn encode_with_progress(
        &self,
        texts: &[&str],
        progress: &mut dyn FnMut(usize, usize),
        stop: &dyn Fn() -> bool,
    ) -> Result<Encoded> {
        let mut vectors = Vec::with_capacity(texts.len() * self.dim);
        let mut truncated = 0;
        for (i, batch) in texts.chunks(ENCODE_BATCH).enumerate() {
            if stop() {
                return Err(WickError::Cancelled);
            }
            let (batch_vectors, batch_truncated) = self.encode_batch(batch)?;
            vectors.extend(batch_vectors);
            truncated += batch_truncated;
            progress(
                (i * ENCODE_BATCH + batch.len()).min(texts.len()),
                texts.len(),
            );
        }
        Ok(Encoded {
            vectors,
            dim: self.dim,
            truncated,
        })
    }

    fn encode_batch(&self, texts: &[&str]) -> Result<(Vec<f32>, usize)> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| WickError::InvalidSpec(format!("tokenizing the text failed: {e}")))?;
        let truncated = encodings
            .iter()
            .filter(|e| !e.get_overflowing().is_empty())
            .count();
        let rows = encodings.len();
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let flat = |pick: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings.iter().flat_map(|e| pick(e).to_vec()).collect()
        };
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (rows, len), &self.device)?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (rows, len), &self.device)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (rows, len), &self.device)?;
        let hidden = self.bert.forward(&ids, &types, Some(&mask))?;
        let pooled = match self.pooling {
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean => {
                let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
                let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
                summed.broadcast_div(&counts)?
            }
        };
        let pooled = if self.normalize {
            let norm = pooled
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12, f64::MAX)?;
            pooled.broadcast_div(&norm)?
        } else {
            pooled
        };
        Ok((pooled.flatten_all()?.to_vec1::<f32>()?, truncated))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T> {
    read_json_if_there(dir, name)?.ok_or_else(|| WickError::Package {
        path: dir.join(name),
        message: "missing: a sentence encoder's folder holds config.json, tokenizer.json and model.safetensors".into(),
    })
}

fn read_json_if_there<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>> {
    let path: PathBuf = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(WickError::Io { path, source }),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| WickError::Package {
            path,
            message: format!("not valid JSON for this file: {e}"),
        })
}
