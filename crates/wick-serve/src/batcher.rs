//! Dynamic batching of image inference. Requests to one model version that arrive while the model is
//! busy wait in a queue, and a worker thread runs everything queued as one forward pass: a network
//! costs about the same for 1 image as for 16 small ones, so under load throughput grows with the
//! batch. There is no waiting timer: a request that finds the model idle runs at once on its own
//! task, so a lone caller sees no extra latency.
//!
//! A batched answer can differ from the same image run alone in the last bits of a float (the matrix
//! multiplies are blocked differently); the predicted class and rounded values do not change.

use std::sync::{mpsc, Arc, Mutex, PoisonError};

use tokio::sync::oneshot;
use wick_core::model::{Model, Prediction};

use crate::error::ApiError;

/// The most images the worker puts into one forward pass (one request may bring more by itself).
const MAX_BATCH_IMAGES: usize = 64;

struct Job {
    chw: Vec<f32>,
    n: usize,
    reply: oneshot::Sender<Result<Vec<Prediction>, ApiError>>,
}

pub struct Batcher {
    model: Arc<Model>,
    /// Held while the model runs: by a request running alone, or by the worker running a batch.
    running: Arc<Mutex<()>>,
    queue: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the worker thread; it ends when the batcher is dropped (the model version unloaded).
    pub fn start(model: Arc<Model>, name: &str) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let running = Arc::new(Mutex::new(()));
        let (worker_model, worker_running) = (model.clone(), running.clone());
        std::thread::Builder::new().name(format!("wick-batch-{name}")).spawn(move || work(&worker_model, &worker_running, &jobs))?;
        Ok(Self { model, running, queue })
    }

    /// Predicts `n` channel-first f32 images. A call of at most `inline_max_values` values that finds
    /// the model idle runs right here (a hop to another thread would cost more than the work);
    /// anything else joins the next batch.
    pub async fn predict(&self, chw: Vec<f32>, n: usize, inline_max_values: usize) -> Result<Vec<Prediction>, ApiError> {
        if chw.len() <= inline_max_values {
            if let Ok(_running) = self.running.try_lock() {
                return self.model.predict_pixels(&chw, n).map_err(bad_input);
            }
        }
        let (reply, answer) = oneshot::channel();
        let gone = || ApiError::Internal("the model's batch worker stopped; try again".into());
        self.queue.send(Job { chw, n, reply }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn bad_input(e: wick_core::WickError) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

fn work(model: &Model, running: &Mutex<()>, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut images = first.n;
        let mut batch = vec![first];
        while images < MAX_BATCH_IMAGES {
            match jobs.try_recv() {
                Ok(job) => {
                    images += job.n;
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        // The lock guards no data, so a panic elsewhere while holding it leaves nothing inconsistent.
        let _running = running.lock().unwrap_or_else(PoisonError::into_inner);
        run_batch(model, batch, images);
    }
}

fn run_batch(model: &Model, batch: Vec<Job>, images: usize) {
    if batch.len() > 1 {
        let mut chw = Vec::with_capacity(batch.iter().map(|j| j.chw.len()).sum());
        for job in &batch {
            chw.extend_from_slice(&job.chw);
        }
        if let Ok(predictions) = model.predict_pixels(&chw, images) {
            let mut predictions = predictions.into_iter();
            for job in batch {
                let _ = job.reply.send(Ok(predictions.by_ref().take(job.n).collect()));
            }
            return;
        }
        // One bad request must not fail the others: run each alone so each gets its own answer.
    }
    for job in batch {
        let _ = job.reply.send(model.predict_pixels(&job.chw, job.n).map_err(bad_input));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use wick_core::data::index_image_folder;
    use wick_core::model::{default_cnn_layers, ModelSpec};
    use wick_core::train::{train_images, CancelToken, TrainConfig};

    fn digits_model() -> (Arc<Model>, Vec<f32>, usize) {
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-data/digits");
        let index = index_image_folder(&samples).unwrap();
        let spec = ModelSpec::Cnn { input: index.default_shape(64), layers: default_cnn_layers() };
        let out = train_images(&index, &spec, &TrainConfig { epochs: 1, ..TrainConfig::default() }, &mut |_| {}, &CancelToken::new()).unwrap();
        let shape = out.model.image_shape().unwrap();
        let images = 24;
        let chw: Vec<f32> = (0..images * shape.len()).map(|i| ((i * 37) % 256) as f32 / 255.0).collect();
        (Arc::new(out.model), chw, shape.len())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_requests_are_batched_and_each_gets_its_own_answer() {
        let (model, chw, per) = digits_model();
        let alone: Vec<Prediction> = model.predict_pixels(&chw, chw.len() / per).unwrap();
        let batcher = Arc::new(Batcher::start(model.clone(), "test").unwrap());
        // Hold the model so every request queues, then let the worker batch them all.
        let held = batcher.running.lock().unwrap();
        let mut tasks = Vec::new();
        for (i, image) in chw.chunks(per).enumerate() {
            let (b, image) = (batcher.clone(), image.to_vec());
            tasks.push((i, tokio::spawn(async move { b.predict(image, 1, usize::MAX).await })));
        }
        // A request with the wrong number of values fails alone.
        let b = batcher.clone();
        let broken = tokio::spawn(async move { b.predict(vec![0.5; per - 1], 1, usize::MAX).await });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        drop(held);
        for (i, task) in tasks {
            let answer = task.await.unwrap().unwrap();
            assert_eq!(answer.len(), 1);
            match (&answer[0], &alone[i]) {
                (Prediction::Class { class_index: a, probabilities: pa, .. }, Prediction::Class { class_index: b, probabilities: pb, .. }) => {
                    assert_eq!(a, b, "image {i}");
                    for (x, y) in pa.iter().zip(pb) {
                        assert!((x - y).abs() < 1e-5, "image {i}: {x} vs {y}");
                    }
                }
                other => panic!("unexpected predictions {other:?}"),
            }
        }
        let err = broken.await.unwrap().unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(_)), "{err:?}");
    }

    #[tokio::test]
    async fn an_idle_model_answers_a_small_call_at_once() {
        let (model, chw, per) = digits_model();
        let batcher = Batcher::start(model.clone(), "test").unwrap();
        let answer = batcher.predict(chw[..per].to_vec(), 1, 4096).await.unwrap();
        assert_eq!(answer, model.predict_pixels(&chw[..per], 1).unwrap(), "alone, the answer is bit-identical");
    }
}
