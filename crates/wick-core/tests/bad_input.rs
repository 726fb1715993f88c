//! Every kind of bad input gets an error that names the file, row or column and says what to do.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::Path;

use image::GrayImage;
use tempfile::TempDir;
use wick_core::data::{
    index_image_folder, load_image, prepare_tabular, read_table, ImageShape, TabularRequest,
};
use wick_core::model::ModelSpec;
use wick_core::train::TableData;
use wick_core::train::{train_table, CancelToken, TrainConfig};

fn read_err(dir: &TempDir, name: &str, contents: &[u8]) -> String {
    let path = common::write_temp(dir, name, contents);
    read_table(&path).unwrap_err().to_string()
}

fn prepare_err(csv: &[u8], target: &str, features: Option<Vec<&str>>) -> String {
    let dir = TempDir::new().unwrap();
    let path = common::write_temp(&dir, "t.csv", csv);
    let df = read_table(&path).unwrap();
    let req = TabularRequest {
        target: target.into(),
        features: features.map(|f| f.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    prepare_tabular(&df, &req).unwrap_err().to_string()
}

#[test]
fn empty_file() {
    let dir = TempDir::new().unwrap();
    let e = read_err(&dir, "empty.csv", b"");
    assert!(
        e.contains("empty.csv") && e.contains("empty (0 bytes)"),
        "{e}"
    );
    let e = read_err(&dir, "blank.csv", b"\n\n  \n");
    assert!(e.contains("blank lines"), "{e}");
}

#[test]
fn header_only() {
    let dir = TempDir::new().unwrap();
    let e = read_err(&dir, "h.csv", b"a,b,c\n");
    assert!(e.contains("h.csv") && e.contains("no rows"), "{e}");
}

#[test]
fn ragged_rows() {
    let dir = TempDir::new().unwrap();
    let e = read_err(&dir, "r.csv", b"a,b,c\n1,2,3\n4,5,6,7,8\n9,10,11\n");
    assert!(
        e.contains("r.csv") && e.contains("row 2 has 5 fields but the header has 3"),
        "{e}"
    );
}

#[test]
fn non_utf8_bytes() {
    let dir = TempDir::new().unwrap();
    let e = read_err(&dir, "latin1.csv", b"name,value\ncaf\xe9,1\nb,2\n");
    assert!(
        e.contains("latin1.csv") && e.contains("not UTF-8") && e.contains("line 2"),
        "{e}"
    );
}

#[test]
fn mixed_separators() {
    let dir = TempDir::new().unwrap();
    let e = read_err(&dir, "mixed.csv", b"a,b;c\n1,2;3\n");
    assert!(e.contains("mixed.csv") && e.contains("separator"), "{e}");
}

#[test]
fn unknown_extension() {
    let dir = TempDir::new().unwrap();
    let e = read_err(&dir, "data.xlsx", b"PK\x03\x04");
    assert!(e.contains(".csv") && e.contains("data.xlsx"), "{e}");
}

#[test]
fn target_missing_constant_or_empty() {
    let csv = b"x,y,c,n\n1,2,k,\n2,4,k,\n3,6,k,\n4,8,k,\n5,10,k,\n";
    let e = prepare_err(csv, "z", None);
    assert!(e.contains("column `z`") && e.contains("x, y, c, n"), "{e}");
    let e = prepare_err(csv, "c", None);
    assert!(
        e.contains("column `c`") && e.contains("same value in every row"),
        "{e}"
    );
    let e = prepare_err(csv, "n", None);
    assert!(
        e.contains("column `n`") && e.contains("every value is missing"),
        "{e}"
    );
}

#[test]
fn id_like_and_constant_columns_are_left_out_with_a_note_and_can_be_named() {
    let mut csv = String::from("id,name,same,x,y\n");
    for i in 0..80 {
        csv.push_str(&format!("{i},user{i},1,{},{}\n", i % 5, i % 7));
    }
    let dir = TempDir::new().unwrap();
    let path = common::write_temp(&dir, "t.csv", csv.as_bytes());
    let df = read_table(&path).unwrap();
    let auto = prepare_tabular(
        &df,
        &TabularRequest {
            target: "y".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        auto.features
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["x"]
    );
    for column in ["id", "name"] {
        assert!(
            auto.warnings
                .iter()
                .any(|w| w.contains(&format!("`{column}` looks like an ID"))
                    && w.contains("unless you choose it as a feature")),
            "{:?}",
            auto.warnings
        );
    }
    assert!(
        auto.warnings
            .iter()
            .any(|w| w.contains("`same` has the same value in every row")),
        "{:?}",
        auto.warnings
    );
    // Named explicitly, an ID-like text column is used: its 50 most frequent values, the rest "other".
    let named = prepare_tabular(
        &df,
        &TabularRequest {
            target: "y".into(),
            features: Some(vec!["name".into(), "x".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(named.features.len(), 2);
    assert!(
        named
            .warnings
            .iter()
            .any(|w| w.contains("`name` has 80 distinct values") && w.contains("50 most frequent")),
        "{:?}",
        named.warnings
    );
}

#[test]
fn nan_and_inf_values() {
    let e = prepare_err(b"x,y\n1,2\nNaN,3\n3,4\n4,5\n5,6\n", "y", None);
    assert!(
        e.contains("column `x`") && e.contains("row 2") && e.contains("NaN"),
        "{e}"
    );
    let e = prepare_err(b"x,y\n1,2\n2,inf\n3,4\n4,5\n5,6\n", "y", Some(vec!["x"]));
    assert!(e.contains("`y`") && e.contains("row 2"), "{e}");
}

#[test]
fn wrong_model_for_the_task() {
    let path = common::sample("breast-cancer.csv");
    let df = read_table(&path).unwrap();
    let req = TabularRequest {
        target: "diagnosis".into(),
        ..Default::default()
    };
    let spec = ModelSpec::Linear {
        ridge_alpha: 0.0,
        poly_degree: 1,
    };
    let e = train_table(
        TableData::new(&df, &path, &req),
        &spec,
        &TrainConfig::default(),
        &mut |_| {},
        &CancelToken::new(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("logistic regression"), "{e}");
}

#[test]
fn corrupt_and_zero_byte_images() {
    let dir = TempDir::new().unwrap();
    let broken = common::write_temp(&dir, "broken.png", b"\x89PNG\r\n\x1a\ngarbage");
    let empty = common::write_temp(&dir, "empty.jpg", b"");
    let shape = ImageShape {
        height: 8,
        width: 8,
        channels: 1,
    };
    for p in [broken, empty] {
        let e = load_image(&p, shape).unwrap_err().to_string();
        assert!(e.contains(p.file_name().unwrap().to_str().unwrap()), "{e}");
    }
}

fn folder_with(counts: &[(&str, usize)]) -> TempDir {
    let dir = TempDir::new().unwrap();
    for (class, n) in counts {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        for i in 0..*n {
            GrayImage::from_pixel(4, 4, image::Luma([i as u8]))
                .save(dir.path().join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    dir
}

#[test]
fn class_folder_with_fewer_than_two_images() {
    let dir = folder_with(&[("a", 3), ("b", 1)]);
    let e = index_image_folder(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("class `b` has 1 image") && e.contains("at least 2"),
        "{e}"
    );
}

#[test]
fn image_folder_without_class_folders() {
    let dir = TempDir::new().unwrap();
    GrayImage::new(2, 2).save(dir.path().join("x.png")).unwrap();
    let e = index_image_folder(dir.path()).unwrap_err().to_string();
    assert!(e.contains("sub-folder"), "{e}");
    let e = index_image_folder(Path::new("/no/such/folder"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/no/such/folder"), "{e}");
}

#[test]
fn a_class_with_a_single_row_is_named_and_still_trains() {
    let mut csv = String::from("x,label\n");
    for i in 0..60 {
        csv.push_str(&format!(
            "{},{}\n",
            i % 2,
            if i % 2 == 0 { "even" } else { "odd" }
        ));
    }
    csv.push_str("1,lonely\n");
    let dir = TempDir::new().unwrap();
    let path = common::write_temp(&dir, "t.csv", csv.as_bytes());
    let df = read_table(&path).unwrap();
    let request = TabularRequest {
        target: "label".into(),
        ..Default::default()
    };
    for spec in [
        wick_core::model::ModelSpec::Logistic,
        wick_core::model::ModelSpec::default_gbdt(),
        wick_core::model::ModelSpec::default_forest(),
    ] {
        let out = wick_core::train::train_table(
            TableData::new(&df, &path, &request),
            &spec,
            &Default::default(),
            &mut |_| {},
            &Default::default(),
        )
        .unwrap();
        assert!(
            out.report
                .warnings
                .iter()
                .any(|w| w.contains("class `lonely` of `label` has a single row")),
            "{:?}",
            out.report.warnings
        );
    }
}

/// A large file's bad rows past the sample it was opened with are named when training reaches them.
#[test]
fn a_streamed_run_names_the_row_that_breaks_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("x,kind,y\n");
    for i in 0..3000 {
        csv.push_str(&format!("{},{},{}\n", i % 17, ["a", "b"][i % 2], i % 5));
    }
    let head = csv.clone();
    csv.push_str("3,a,inf\n");
    let path = common::write_temp(&dir, "big.csv", csv.as_bytes());
    let (_, sample) = wick_core::data::stream_csv(&path, 4096, 500, 0, &mut |_, _| {}).unwrap();
    let options = wick_core::train::StreamOptions {
        chunk_bytes: 4096,
        sample_rows: 500,
        memory_budget_bytes: 1 << 30,
    };
    let request = TabularRequest {
        target: "y".into(),
        task: Some(wick_core::data::Task::Regression),
        ..Default::default()
    };
    let linear = ModelSpec::Linear {
        ridge_alpha: 0.0,
        poly_degree: 1,
    };
    let train = |path: &Path, spec: &ModelSpec, config: &TrainConfig| {
        wick_core::train::train_csv_streamed(
            TableData::new(&sample, path, &request),
            spec,
            config,
            &options,
            &mut |_| {},
            &CancelToken::new(),
        )
        .err()
        .unwrap()
        .to_string()
    };
    let err = train(&path, &linear, &TrainConfig::default());
    assert!(
        err.contains("`y`") && err.contains("row 3001") && err.contains("finite"),
        "{err}"
    );
    // Text past the 10,000 rows whose types the file's head fixes: the file and the row.
    let path = common::write_temp(
        &dir,
        "text.csv",
        format!("{head}{head}{head}{head}three,a,1\n")
            .replace("x,kind,y\n", "")
            .replacen("", "x,kind,y\n", 1)
            .as_bytes(),
    );
    let err = train(&path, &linear, &TrainConfig::default());
    assert!(
        err.contains("text.csv") && err.contains("row 12001 has a value that does not fit"),
        "{err}"
    );
    // A fixed split of row numbers does not fit a streamed file.
    let fixed = TrainConfig {
        fixed_split: Some(wick_core::data::Split {
            train: vec![0],
            valid: vec![],
            test: vec![],
        }),
        ..TrainConfig::default()
    };
    let err = train(&path, &linear, &fixed);
    assert!(err.contains("fixed split"), "{err}");
}

/// A file whose header reads but whose pixels don't (a truncated PNG; the JPEG decoder fills a cut
/// JPEG with grey instead) is skipped and counted when training decodes it; the run goes on.
#[test]
fn a_truncated_image_found_mid_training_is_skipped_and_counted() {
    for spec_kind in ["cnn", "transfer", "fine-tune"] {
        let dir = TempDir::new().unwrap();
        for class in ["dark", "light"] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            for i in 0..12u8 {
                let base = if class == "dark" { 20 } else { 200 };
                let image = image::RgbImage::from_fn(40, 40, |x, y| {
                    image::Rgb([base + (x as u8 % 9) + i, base + (y as u8 % 7), base])
                });
                image
                    .save(dir.path().join(class).join(format!("{i}.png")))
                    .unwrap();
            }
        }
        let good = std::fs::read(dir.path().join("dark/0.png")).unwrap();
        std::fs::write(
            dir.path().join("dark/truncated.png"),
            &good[..good.len() * 7 / 10],
        )
        .unwrap();
        let index = index_image_folder(dir.path()).unwrap();
        assert_eq!(
            index.samples().unwrap().len(),
            25,
            "the header reads, so indexing keeps it"
        );
        let shape = ImageShape {
            height: 32,
            width: 32,
            channels: 3,
        };
        let spec = if spec_kind == "cnn" {
            ModelSpec::Cnn {
                input: shape,
                layers: wick_core::model::default_cnn_layers(),
            }
        } else {
            let weights = common::random_resnet18(dir.path());
            let fine_tune = spec_kind == "fine-tune";
            ModelSpec::Transfer {
                backbone: wick_core::model::Backbone {
                    arch: wick_core::model::BackboneArch::Resnet18,
                    weights,
                    input: shape,
                    fine_tune,
                },
            }
        };
        let config = TrainConfig {
            epochs: 1,
            split: wick_core::data::SplitFractions {
                valid: 0.0,
                test: 0.0,
            },
            ..TrainConfig::default()
        };
        let out = wick_core::train::train_images(
            &index,
            &spec,
            &config,
            &mut |_| {},
            &CancelToken::new(),
        )
        .unwrap();
        assert_eq!(
            out.report.rows.train, 24,
            "{spec_kind}: the truncated file is left out"
        );
        assert!(
            out.report
                .warnings
                .iter()
                .any(|w| w.contains("skipped 1 images that could not be decoded")
                    && w.contains("truncated.png")),
            "{spec_kind}: {:?}",
            out.report.warnings
        );
    }
}

/// Phone photos store their rotation in EXIF: decoding applies it, so the model sees them upright.
#[test]
fn exif_orientation_is_applied_when_decoding() {
    let dir = TempDir::new().unwrap();
    let image = image::RgbImage::from_fn(8, 4, |x, _| image::Rgb([x as u8 * 30, 0, 0]));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    // An APP1 segment after SOI: EXIF, big-endian TIFF, one IFD entry (0x0112 Orientation = 6,
    // "rotate 90° clockwise to view").
    let mut exif =
        b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0".to_vec();
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend(((exif.len() + 2) as u16).to_be_bytes());
    app1.append(&mut exif);
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend(app1);
    with_exif.extend(&jpeg[2..]);
    let path = common::write_temp(&dir, "phone.jpg", &with_exif);
    let upright = wick_core::data::images::decode_image(&path).unwrap();
    assert_eq!(
        (upright.width(), upright.height()),
        (4, 8),
        "turned upright"
    );
}

/// A PNG whose header claims 30,000 × 30,000 pixels (900 million; a decompression bomb), written as
/// a header and a token of data: decoding must refuse it by the image crate's limits, not allocate.
fn bomb_png(path: &std::path::Path) {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let chunk = |kind: &[u8], data: &[u8]| -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc32(&[kind, data].concat()).to_be_bytes());
        out
    };
    let mut ihdr = 30_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&30_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grey
    let png = [
        b"\x89PNG\r\n\x1a\n".to_vec(),
        chunk(b"IHDR", &ihdr),
        chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]),
        chunk(b"IEND", &[]),
    ]
    .concat();
    std::fs::write(path, png).unwrap();
}

#[test]
fn a_decompression_bomb_is_refused_and_a_single_class_folder_is_named() {
    let dir = TempDir::new().unwrap();
    for class in ["dark", "light"] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        for i in 0..6u8 {
            let base = if class == "dark" { 20 } else { 200 };
            image::GrayImage::from_fn(12, 12, |x, _| image::Luma([base + x as u8 + i]))
                .save(dir.path().join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    bomb_png(&dir.path().join("dark/huge.png"));
    let index = index_image_folder(dir.path()).unwrap();
    let shape = ImageShape {
        height: 12,
        width: 12,
        channels: 1,
    };
    let spec = ModelSpec::Cnn {
        input: shape,
        layers: wick_core::model::default_cnn_layers(),
    };
    let config = TrainConfig {
        epochs: 1,
        split: wick_core::data::SplitFractions {
            valid: 0.0,
            test: 0.0,
        },
        ..TrainConfig::default()
    };
    let out =
        wick_core::train::train_images(&index, &spec, &config, &mut |_| {}, &CancelToken::new())
            .unwrap();
    let note = out
        .report
        .warnings
        .iter()
        .find(|w| w.contains("huge.png"))
        .cloned()
        .unwrap_or_default();
    assert!(
        note.contains("skipped 1 images")
            && note.contains("30000×30000 pixels")
            && note.contains("over the 512 MB limit"),
        "{:?}",
        out.report.warnings
    );
    assert_eq!(out.report.rows.train, 12);

    // A folder with one class can't train a classifier: the message says so and names it.
    let one = TempDir::new().unwrap();
    std::fs::create_dir(one.path().join("cats")).unwrap();
    for i in 0..3 {
        std::fs::copy(
            dir.path().join("dark/0.png"),
            one.path().join(format!("cats/{i}.png")),
        )
        .unwrap();
    }
    let err = index_image_folder(one.path()).err().unwrap().to_string();
    assert!(
        err.contains(one.path().to_str().unwrap()) && err.contains("only one class"),
        "{err}"
    );
}
