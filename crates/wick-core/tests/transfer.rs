//! Transfer learning with a real candle-transformers ResNet-18 loaded from a safetensors file. The test
//! builds a randomly initialised backbone file itself, so the loading code is exercised offline.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use tempfile::TempDir;
use wick_core::data::{index_image_folder, ImageShape};
use wick_core::model::{Backbone, BackboneArch, ModelSpec, Prediction};
use wick_core::package::{load_package, save_package, BACKBONE_FILE};
use wick_core::train::{train_images, CancelToken, SplitName, TrainConfig, TrainEvent};

#[test]
fn resnet18_backbone_with_a_trained_head() {
    let dir = TempDir::new().unwrap();
    let weights = common::random_resnet18(dir.path());

    let index = index_image_folder(&digits3(dir.path(), 12)).unwrap();
    let input = ImageShape {
        height: 32,
        width: 32,
        channels: 3,
    };
    let spec = ModelSpec::Transfer {
        backbone: Backbone {
            arch: BackboneArch::Resnet18,
            weights: weights.clone(),
            input,
            fine_tune: false,
        },
    };
    let config = TrainConfig {
        epochs: 8,
        lr: 1e-3,
        early_stopping_patience: None,
        ..TrainConfig::default()
    };
    let mut train_loss = Vec::new();
    let out = train_images(
        &index,
        &spec,
        &config,
        &mut |e: TrainEvent| {
            if let TrainEvent::Metric {
                split: SplitName::Train,
                name,
                value,
                ..
            } = e
            {
                if name == "loss" {
                    train_loss.push(value);
                }
            }
        },
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(train_loss.len(), 8);
    assert!(
        train_loss[7] < train_loss[0],
        "the head learns: {train_loss:?}"
    );

    // Augmentation: the frozen backbone sees each training image and 3 augmented versions of it.
    let augment = wick_core::data::Augment::from_names(["flip", "crop", "color"]).unwrap();
    let mut steps = 0;
    let augmented = TrainConfig {
        epochs: 1,
        batch_size: 8,
        augment,
        ..config.clone()
    };
    let aug = train_images(
        &index,
        &spec,
        &augmented,
        &mut |e: TrainEvent| {
            if let TrainEvent::Started {
                steps_per_epoch, ..
            } = e
            {
                steps = steps_per_epoch;
            }
        },
        &CancelToken::new(),
    )
    .unwrap();
    let views = 1 + wick_core::train::AUGMENTED_VIEWS;
    assert_eq!(
        steps,
        (aug.report.rows.train * views).div_ceil(8),
        "{:?}",
        aug.report.rows
    );

    // Saliency through the frozen backbone: a map of the input's size with its peak at 1.
    let first = index.samples().unwrap()[0].0.clone();
    let pixels = wick_core::data::load_image(&first, out.model.image_shape().unwrap()).unwrap();
    let map = wick_core::explain::saliency(&out.model, &pixels).unwrap();
    assert_eq!((map.width, map.height, map.values.len()), (32, 32, 32 * 32));
    assert!(map.values.contains(&1.0) && map.values.iter().all(|v| (0.0..=1.0).contains(v)));

    let pkg = dir.path().join("t.wick");
    save_package(&out.model, &out.report, "transfer", &pkg).unwrap();
    assert!(
        pkg.join(BACKBONE_FILE).exists(),
        "the package carries its backbone"
    );
    std::fs::remove_file(&weights).unwrap();
    let (loaded, manifest) = load_package(&pkg).unwrap();
    assert_eq!(manifest.inputs[0].shape, vec![-1, 32, 32, 3]);
    let paths: Vec<_> = index
        .samples()
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .take(6)
        .collect();
    let a = out.model.predict_image_paths(&paths).unwrap();
    let b = loaded.predict_image_paths(&paths).unwrap();
    for (x, y) in a.iter().zip(&b) {
        let (
            Prediction::Class {
                probabilities: p, ..
            },
            Prediction::Class {
                probabilities: q, ..
            },
        ) = (x, y)
        else {
            panic!()
        };
        assert!(p.iter().zip(q).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

/// Three digit classes, `per_class` images each, copied into `dir`.
fn digits3(dir: &std::path::Path, per_class: usize) -> std::path::PathBuf {
    let data = dir.join("digits3");
    for class in ["0", "1", "7"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(common::sample("digits").join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(per_class) {
            std::fs::copy(f, data.join(class).join(f.file_name().unwrap())).unwrap();
        }
    }
    data
}

#[test]
fn fine_tuning_trains_the_last_stage_and_the_package_carries_it() {
    let dir = TempDir::new().unwrap();
    let weights = common::random_resnet18(dir.path());
    let index = index_image_folder(&digits3(dir.path(), 12)).unwrap();
    let input = ImageShape {
        height: 32,
        width: 32,
        channels: 3,
    };
    let spec = ModelSpec::Transfer {
        backbone: Backbone {
            arch: BackboneArch::Resnet18,
            weights: weights.clone(),
            input,
            fine_tune: true,
        },
    };
    let augment = wick_core::data::Augment::from_names(["flip"]).unwrap();
    let config = TrainConfig {
        epochs: 6,
        lr: 1e-3,
        early_stopping_patience: None,
        augment,
        ..TrainConfig::default()
    };
    let mut train_loss = Vec::new();
    let out = train_images(
        &index,
        &spec,
        &config,
        &mut |e: TrainEvent| {
            if let TrainEvent::Metric {
                split: SplitName::Train,
                name,
                value,
                ..
            } = e
            {
                if name == "loss" {
                    train_loss.push(value);
                }
            }
        },
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(train_loss.len(), 6);
    assert!(
        train_loss[5] < train_loss[0],
        "the stage and head learn: {train_loss:?}"
    );

    // The package's backbone file: the pretrained tensors, but a trained last stage.
    let pkg = dir.path().join("fine.wick");
    save_package(&out.model, &out.report, "fine", &pkg).unwrap();
    let original = candle_core::safetensors::load(&weights, &candle_core::Device::Cpu).unwrap();
    let packaged =
        candle_core::safetensors::load(pkg.join(BACKBONE_FILE), &candle_core::Device::Cpu).unwrap();
    let same = |name: &str| {
        let (a, b) = (&original[name], &packaged[name]);
        a.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            == b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    assert!(
        same("layer3.1.conv2.weight") && same("conv1.weight"),
        "the trunk is the pretrained one"
    );
    assert!(
        !same("layer4.1.conv2.weight"),
        "the last stage was fine-tuned"
    );
    // Loaded back (folded again on the CPU), it predicts as the model that trained.
    std::fs::remove_file(&weights).unwrap();
    let (loaded, manifest) = load_package(&pkg).unwrap();
    let ModelSpec::Transfer { backbone } = &manifest.spec else {
        panic!()
    };
    assert!(backbone.fine_tune);
    let paths: Vec<_> = index
        .samples()
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .take(6)
        .collect();
    let a = out.model.predict_image_paths(&paths).unwrap();
    let b = loaded.predict_image_paths(&paths).unwrap();
    for (x, y) in a.iter().zip(&b) {
        let (
            Prediction::Class {
                probabilities: p, ..
            },
            Prediction::Class {
                probabilities: q, ..
            },
        ) = (x, y)
        else {
            panic!()
        };
        assert!(
            p.iter().zip(q).all(|(a, b)| (a - b).abs() < 1e-5),
            "{p:?} vs {q:?}"
        );
    }

    // MobileNetV4 trains frozen only, and says so.
    let mobile = dir.path().join("mobile.safetensors");
    wick_core::model::transfer::write_random_weights(BackboneArch::MobileNetV4Small, &mobile)
        .unwrap();
    let spec = ModelSpec::Transfer {
        backbone: Backbone {
            arch: BackboneArch::MobileNetV4Small,
            weights: mobile,
            input,
            fine_tune: true,
        },
    };
    let err = train_images(
        &index,
        &spec,
        &TrainConfig {
            epochs: 1,
            ..config
        },
        &mut |_| {},
        &CancelToken::new(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("fine-tuning covers the ResNet backbones"),
        "{err}"
    );
}

#[test]
fn a_backbone_file_that_is_not_resnet_is_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let weights = common::write_temp(&dir, "bad.safetensors", b"not safetensors at all");
    let index = index_image_folder(&common::sample("digits")).unwrap();
    let input = ImageShape {
        height: 16,
        width: 16,
        channels: 3,
    };
    let spec = ModelSpec::Transfer {
        backbone: Backbone {
            arch: BackboneArch::Resnet18,
            weights,
            input,
            fine_tune: false,
        },
    };
    let config = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let err = train_images(&index, &spec, &config, &mut |_| {}, &CancelToken::new())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("bad.safetensors") && err.contains("safetensors"),
        "{err}"
    );
}

#[path = "support/fake_hub.rs"]
mod fake_hub;

/// A random ResNet-18 file and a client of a fake Hub serving it, with an empty cache.
fn hub_with_resnet18(
    behaviour: fake_hub::Behaviour,
) -> (
    TempDir,
    Vec<u8>,
    fake_hub::FakeHub,
    wick_core::hub::HubClient,
) {
    let dir = TempDir::new().unwrap();
    let weights = common::random_resnet18(dir.path());
    let bytes = std::fs::read(weights).unwrap();
    let b = wick_core::hub::backbone("resnet18").unwrap();
    let hub = fake_hub::serve(b.repo, b.file, bytes.clone(), behaviour);
    let client = wick_core::hub::HubClient::new(&hub.url, dir.path().join("cache"));
    (dir, bytes, hub, client)
}

#[test]
fn a_hub_backbone_downloads_resumes_after_a_dropped_connection_and_is_cached() {
    let (_dir, bytes, hub, client) = hub_with_resnet18(fake_hub::Behaviour::DropHalfway);
    let backbone = wick_core::hub::backbone("resnet18").unwrap();
    assert!(client.cached(backbone).is_none());
    let mut progress = Vec::new();
    let path = client
        .fetch(backbone, &mut |done, total| progress.push((done, total)))
        .unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file in the cache is the Hub's, whole"
    );
    let size = bytes.len() as u64;
    assert_eq!(progress.last(), Some(&(size, size)));
    assert!(
        progress.windows(2).all(|w| w[1].0 >= w[0].0),
        "progress never goes back, across the resume"
    );
    // The first transfer stopped halfway; the retry asked for the rest, not the whole file again.
    let requests = hub.requests.lock().unwrap().clone();
    let resumed: Vec<u64> = requests
        .iter()
        .filter_map(|r| r.split_once(" bytes=")?.1.strip_suffix('-')?.parse().ok())
        .collect();
    assert!(
        resumed.iter().any(|&start| start > 0 && start < size),
        "requests: {requests:?}"
    );
    assert!(
        !std::fs::read_dir(path.parent().unwrap().join("../../blobs"))
            .unwrap()
            .any(|e| e.unwrap().path().extension().is_some_and(|x| x == "part"))
    );

    // Cached: a second fetch makes no request, and the weights load as a backbone.
    let before = hub.requests.lock().unwrap().len();
    assert_eq!(client.fetch(backbone, &mut |_, _| {}).unwrap(), path);
    assert_eq!(hub.requests.lock().unwrap().len(), before);
    wick_core::model::transfer::FrozenBackbone::load(
        BackboneArch::Resnet18,
        &path,
        &candle_core::Device::Cpu,
    )
    .unwrap();
}

#[test]
fn hub_failures_say_what_happened_and_leave_no_file_in_the_cache() {
    let backbone = wick_core::hub::backbone("resnet18").unwrap();

    // The bytes don't match the ETag: refused and removed.
    let (_dir, _bytes, _hub, client) = hub_with_resnet18(fake_hub::Behaviour::WrongBytes);
    let err = client
        .fetch(backbone, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SHA-256") && err.contains("removed from the cache"),
        "{err}"
    );
    assert!(
        client.cached(backbone).is_none(),
        "a file that failed its check is not kept"
    );

    // An HTML page where the file should be (a wrong HF_ENDPOINT, a captive portal).
    let (_dir, _bytes, _hub, client) = hub_with_resnet18(fake_hub::Behaviour::HtmlPage);
    let err = client
        .fetch(backbone, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a Hub file") && err.contains("HF_ENDPOINT"),
        "{err}"
    );

    // A 404: the mirror has another repository.
    let (_dir, _bytes, _hub, client) = hub_with_resnet18(fake_hub::Behaviour::Normal);
    let err = client
        .fetch(
            wick_core::hub::backbone("resnet50").unwrap(),
            &mut |_, _| {},
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("HTTP 404") && err.contains("ResNet-50"),
        "{err}"
    );

    // Offline: nothing listens. The message says where to put the file by hand, and that works.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = TempDir::new().unwrap();
    let client =
        wick_core::hub::HubClient::new(format!("http://{closed}"), dir.path().join("cache"));
    let err = client
        .fetch(backbone, &mut |_, _| {})
        .unwrap_err()
        .to_string();
    let manual = client.manual_path(backbone);
    assert!(
        err.contains("could not reach") && err.contains(manual.to_str().unwrap()),
        "{err}"
    );
    std::fs::create_dir_all(manual.parent().unwrap()).unwrap();
    std::fs::copy(common::random_resnet18(dir.path()), &manual).unwrap();
    assert_eq!(client.fetch(backbone, &mut |_, _| {}).unwrap(), manual);
}
