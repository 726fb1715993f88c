//! The sentence encoder against sentence-transformers, on the real all-MiniLM-L6-v2 weights. The
//! reference vectors were computed once by `text/reference.py` (its docstring has the command) and
//! are pinned in `text/minilm-reference.json`.

use candle_core::Device;
use wick_core::hub::HubClient;
use wick_core::model::text_encoder::{Pooling, SentenceEncoder};

use crate::{common, fake_hub};

/// The texts of `text/sentences.py`, in its order: short, German, accents and emoji, empty, and one
/// past the model's 256-token limit.
fn sentences() -> Vec<String> {
    let long =
        vec!["The long review goes on and on about the product and its many small faults."; 30]
            .join(" ");
    [
        "A man is eating food.",
        "Wick trains models on your own data, on your own computer.",
        "Der schnelle braune Fuchs springt über den faulen Hund.",
        "naïve café résumé — “quotes”, emoji 🙂 and CJK 東京",
        "",
        &long,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * y).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|y| y.powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn minilm_vectors_equal_sentence_transformers_and_long_texts_are_counted_as_cut() {
    let reference: serde_json::Value =
        serde_json::from_str(include_str!("minilm-reference.json")).unwrap();
    let encoder = SentenceEncoder::load(&common::minilm_dir(), &Device::Cpu).unwrap();
    assert_eq!(encoder.dim(), 384);
    assert_eq!(
        encoder.max_tokens(),
        reference["max_seq_length"].as_u64().unwrap() as usize
    );
    assert_eq!(encoder.pooling(), Pooling::Mean);

    let texts = sentences();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let out = encoder.encode(&refs).unwrap();
    let expected = reference["vectors"].as_array().unwrap();
    assert_eq!(expected.len(), texts.len());
    for (i, want) in expected.iter().enumerate() {
        let want: Vec<f64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let got = &out.vectors[i * 384..(i + 1) * 384];
        let cos = cosine(got, &want);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (*g as f64 - w).abs())
            .fold(0.0, f64::max);
        println!("text {i}: cosine {cos:.7}, largest difference {worst:.2e}");
        assert!(
            cos >= 0.9999,
            "text {i}: cosine {cos} with sentence-transformers"
        );
        assert!(worst <= 1e-5, "text {i}: a value differs by {worst}");
    }
    let limit = encoder.max_tokens() as u64;
    let cut = reference["tokens_before_truncation"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t.as_u64().unwrap() > limit)
        .count();
    assert_eq!(cut, 1, "the reference has one text past the limit");
    assert_eq!(out.truncated, cut);

    // A text's vector does not depend on the batch it was padded in.
    let alone = encoder.encode(&refs[..1]).unwrap();
    let worst = alone
        .vectors
        .iter()
        .zip(&out.vectors[..384])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "padding changed a vector by {worst}");
}

/// The MiniLM folder's files, as a fake Hub serves them (`only`: just these).
fn minilm_files(only: Option<&[&str]>) -> Vec<(String, Vec<u8>)> {
    let dir = common::minilm_dir();
    [
        "config.json",
        "tokenizer.json",
        "sentence_bert_config.json",
        "modules.json",
        "1_Pooling/config.json",
        "model.safetensors",
    ]
    .into_iter()
    .filter(|f| only.is_none_or(|o| o.contains(f)))
    .map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap()))
    .collect()
}

#[test]
fn an_encoder_downloads_from_the_hub_file_by_file_and_is_cached() {
    let minilm = wick_core::hub::encoder("minilm").unwrap();
    let hub = fake_hub::serve_files(minilm.repo, minilm_files(None), fake_hub::Behaviour::Normal);
    let cache = tempfile::tempdir().unwrap();
    let client = HubClient::new(&hub.url, cache.path());
    assert!(client.cached_encoder(minilm).is_none());
    let mut progress = Vec::new();
    let dir = client
        .fetch_encoder(minilm, &mut |done, total| progress.push((done, total)))
        .unwrap();
    let weights_len = std::fs::metadata(common::minilm_dir().join("model.safetensors"))
        .unwrap()
        .len();
    assert_eq!(progress.last(), Some(&(weights_len, weights_len)));
    let from_hub = SentenceEncoder::load(&dir, &Device::Cpu).unwrap();
    let from_folder = SentenceEncoder::load(&common::minilm_dir(), &Device::Cpu).unwrap();
    let text = ["A man is eating food."];
    assert_eq!(
        from_hub.encode(&text).unwrap(),
        from_folder.encode(&text).unwrap()
    );

    // Cached: a second fetch asks the Hub nothing.
    let before = hub.requests.lock().unwrap().len();
    assert_eq!(client.cached_encoder(minilm), Some(dir.clone()));
    assert_eq!(client.fetch_encoder(minilm, &mut |_, _| {}).unwrap(), dir);
    assert_eq!(hub.requests.lock().unwrap().len(), before);
}

#[test]
fn a_plain_bert_repository_downloads_and_pools_by_the_mean_without_normalising() {
    let minilm = wick_core::hub::encoder("minilm").unwrap();
    let only: &[&str] = &["config.json", "tokenizer.json", "model.safetensors"];
    let hub = fake_hub::serve_files(
        minilm.repo,
        minilm_files(Some(only)),
        fake_hub::Behaviour::Normal,
    );
    let cache = tempfile::tempdir().unwrap();
    let client = HubClient::new(&hub.url, cache.path());
    let dir = client.fetch_encoder(minilm, &mut |_, _| {}).unwrap();
    let encoder = SentenceEncoder::load(&dir, &Device::Cpu).unwrap();
    assert_eq!(encoder.pooling(), Pooling::Mean);
    assert_eq!(encoder.max_tokens(), 512, "the model's position limit");
    let v = encoder.encode(&["A man is eating food."]).unwrap().vectors;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 0.01, "not normalised: norm {norm}");

    // A Hub without the weights says so, naming the file.
    let hub = fake_hub::serve_files(
        minilm.repo,
        minilm_files(Some(&only[..2])),
        fake_hub::Behaviour::Normal,
    );
    let cache = tempfile::tempdir().unwrap();
    let err = HubClient::new(&hub.url, cache.path())
        .fetch_encoder(minilm, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("404"),
        "{err}"
    );
}
