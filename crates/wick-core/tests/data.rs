//! Opening tables and image folders, their statistics, and what happens with bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use image::{GrayImage, RgbImage};
use tempfile::TempDir;
use wick_core::data::{
    index_image_folder, inspect_table, prepare_tabular, read_table, ColumnKind, TabularRequest,
    Task,
};
use wick_core::polars::prelude::*;

/// Reference: pandas 3.1.1 on seattle-weather.csv: temp_max mean 16.43908281998631,
/// std (ddof=1) 7.349758097360177, min -1.6, max 35.6, 67 distinct; weather top: sun 714, fog 411.
#[test]
fn csv_statistics_match_pandas() {
    let (_, s) = inspect_table(&common::sample("seattle-weather.csv")).unwrap();
    assert_eq!(s.rows, 1461);
    assert_eq!(s.columns.len(), 7);
    let t = s.columns.iter().find(|c| c.name == "temp_max").unwrap();
    assert_eq!(t.kind, ColumnKind::Numeric);
    assert!((t.mean.unwrap() - 16.43908281998631).abs() < 1e-9);
    assert!((t.std.unwrap() - 7.349758097360177).abs() < 1e-9);
    assert_eq!(
        (t.min, t.max, t.distinct, t.missing),
        (Some(-1.6), Some(35.6), 67, 0)
    );
    let w = s.columns.iter().find(|c| c.name == "weather").unwrap();
    assert_eq!(w.kind, ColumnKind::Text);
    assert_eq!(
        w.top_values[..2],
        [("sun".to_string(), 714), ("fog".to_string(), 411)]
    );
    assert_eq!(s.preview.len(), 10);
    assert_eq!(s.preview[0][0], "2012-01-01");
}

#[test]
fn parquet_and_ndjson_open_like_csv() {
    let dir = TempDir::new().unwrap();
    let mut df = read_table(&common::sample("seattle-weather.csv")).unwrap();
    let pq = dir.path().join("w.parquet");
    ParquetWriter::new(std::fs::File::create(&pq).unwrap())
        .finish(&mut df)
        .unwrap();
    let nd = dir.path().join("w.ndjson");
    JsonWriter::new(std::fs::File::create(&nd).unwrap())
        .with_json_format(JsonFormat::JsonLines)
        .finish(&mut df)
        .unwrap();
    for path in [pq, nd] {
        let (back, summary) = inspect_table(&path).unwrap();
        assert_eq!(back.shape(), (1461, 7), "{}", path.display());
        let t = summary
            .columns
            .iter()
            .find(|c| c.name == "temp_max")
            .unwrap();
        assert!((t.mean.unwrap() - 16.43908281998631).abs() < 1e-9);
    }
}

#[test]
fn semicolon_separated_files_are_detected() {
    let dir = TempDir::new().unwrap();
    let p = common::write_temp(&dir, "semi.csv", b"a;b;c\n1;2;x\n3;4;y\n");
    let df = read_table(&p).unwrap();
    assert_eq!(
        df.get_column_names()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
}

#[test]
fn task_detection_and_override() {
    let df = read_table(&common::sample("seattle-weather.csv")).unwrap();
    let req = |target: &str, task| TabularRequest {
        target: target.into(),
        task,
        ..Default::default()
    };
    assert_eq!(
        prepare_tabular(&df, &req("temp_max", None))
            .unwrap()
            .target
            .task(),
        Task::Regression
    );
    assert_eq!(
        prepare_tabular(&df, &req("weather", None))
            .unwrap()
            .target
            .task(),
        Task::Classification
    );
    assert_eq!(
        prepare_tabular(&df, &req("month", None))
            .unwrap()
            .target
            .task(),
        Task::Classification,
        "12 distinct values"
    );
    assert_eq!(
        prepare_tabular(&df, &req("month", Some(Task::Regression)))
            .unwrap()
            .target
            .task(),
        Task::Regression
    );
    // `date` holds ISO dates: a feature, as its parts, with a note saying so.
    let d = prepare_tabular(&df, &req("temp_max", None)).unwrap();
    assert!(d
        .features
        .iter()
        .any(|(n, raw)| n == "date" && matches!(raw, wick_core::data::RawColumn::Date(_))));
    assert!(
        d.warnings.iter().any(|w| w.contains("`date` holds dates")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn image_folder_index_counts_classes_and_shapes() {
    let index = index_image_folder(&common::sample("digits")).unwrap();
    assert_eq!(index.len(), 1797);
    assert_eq!(
        index.classes,
        (0..10).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    let counts = index.class_counts();
    assert_eq!(counts[0], ("0".to_string(), 178));
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<usize>(), 1797);
    let shape = index.default_shape(64);
    assert_eq!((shape.height, shape.width, shape.channels), (8, 8, 1));
    assert_eq!(
        index
            .frame
            .get_column_names()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["path", "label", "width", "height", "channels"]
    );
}

#[test]
fn mixed_image_sizes_and_channels_are_converted_and_odd_files_skipped() {
    let dir = TempDir::new().unwrap();
    for class in ["cat", "dog"] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
    }
    GrayImage::from_pixel(10, 12, image::Luma([200]))
        .save(dir.path().join("cat/a.png"))
        .unwrap();
    RgbImage::from_pixel(30, 20, image::Rgb([10, 20, 30]))
        .save(dir.path().join("cat/b.jpg"))
        .unwrap();
    RgbImage::from_pixel(16, 16, image::Rgb([255, 0, 0]))
        .save(dir.path().join("dog/c.bmp"))
        .unwrap();
    GrayImage::from_pixel(16, 16, image::Luma([0]))
        .save(dir.path().join("dog/d.png"))
        .unwrap();
    std::fs::write(dir.path().join("dog/notes.txt"), "not an image").unwrap();
    std::fs::write(dir.path().join("dog/empty.png"), b"").unwrap();
    std::fs::write(
        dir.path().join("dog/broken.png"),
        b"\x89PNG\r\n\x1a\nthis is not a png body",
    )
    .unwrap();
    let index = index_image_folder(dir.path()).unwrap();
    assert_eq!(index.len(), 4);
    assert_eq!(index.skipped.len(), 3);
    let reason = |name: &str| {
        index
            .skipped
            .iter()
            .find(|s| s.path.ends_with(name))
            .unwrap()
            .reason
            .clone()
    };
    assert!(
        reason("notes.txt").contains("unsupported"),
        "{}",
        reason("notes.txt")
    );
    assert!(
        reason("empty.png").contains("empty"),
        "{}",
        reason("empty.png")
    );
    assert!(
        reason("broken.png").contains("corrupt"),
        "{}",
        reason("broken.png")
    );
    let shape = index.default_shape(64);
    assert_eq!(shape.channels, 3, "colour images present → RGB input");
    for (path, _) in index.samples().unwrap() {
        let px = wick_core::data::load_image(&path, shape).unwrap();
        assert_eq!(px.len(), shape.len());
        assert!(px.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn image_csv_with_relative_paths() {
    let dir = TempDir::new().unwrap();
    std::fs::create_dir(dir.path().join("imgs")).unwrap();
    for i in 0..4u8 {
        GrayImage::from_pixel(5, 5, image::Luma([i * 40]))
            .save(dir.path().join(format!("imgs/{i}.png")))
            .unwrap();
    }
    let csv = common::write_temp(
        &dir,
        "list.csv",
        b"path,label\nimgs/0.png,a\nimgs/1.png,a\nimgs/2.png,b\nimgs/3.png,b\nimgs/missing.png,b\n",
    );
    let index = wick_core::data::index_image_csv(&csv).unwrap();
    assert_eq!(index.len(), 4);
    assert_eq!(index.classes, ["a", "b"]);
    assert_eq!(
        index.skipped.len(),
        1,
        "the missing file is skipped and reported"
    );
    assert!(index.skipped[0].path.ends_with("imgs/missing.png"));
}

/// Prediction from raw columns (the server's path, no frame) encodes exactly as from a frame:
/// missing numbers filled, unseen categories all zeros; a short column is named.
#[test]
fn raw_columns_encode_like_a_frame() {
    use wick_core::data::{FeatureEncoder, Preprocessor, RawColumn};
    let preprocessor = Preprocessor {
        encoders: vec![
            FeatureEncoder::Numeric {
                name: "temp".into(),
                fill: 10.0,
                mean: 12.0,
                std: 4.0,
            },
            FeatureEncoder::OneHot {
                name: "weather".into(),
                categories: vec!["rain".into(), "sun".into()],
                fill: "sun".into(),
            },
        ],
        personal: Default::default(),
    };
    let frame = df!("weather" => [Some("rain"), Some("snow"), None], "temp" => [Some(16.0), None, Some(8.0)]).unwrap();
    let columns = [
        RawColumn::Numeric(vec![Some(16.0), None, Some(8.0)]),
        RawColumn::Text(vec![Some("rain".into()), Some("snow".into()), None]),
    ];
    let from_columns = preprocessor.transform_columns(&columns, 3).unwrap();
    assert_eq!(from_columns, preprocessor.transform_frame(&frame).unwrap());
    assert_eq!(
        from_columns,
        [1.0, 1.0, 0.0, -0.5, 0.0, 0.0, -1.0, 0.0, 1.0]
    );
    let err = preprocessor.transform_columns(&columns, 4).unwrap_err();
    assert!(
        err.to_string().contains("temp") && err.to_string().contains("3 values"),
        "{err}"
    );
}

/// The streaming summary (chunks of whole rows, the 4 KiB minimum here, so the file spans dozens)
/// gives the in-memory summary's figures: rows, missing counts, min, max, mean, sd, text values.
#[test]
fn streaming_summary_matches_the_in_memory_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,x,note,city\n");
    for i in 0..3000 {
        let x = if i % 13 == 0 {
            String::new()
        } else {
            format!("{}", (i as f64 * 0.37).sin() * 100.0)
        };
        // Quoted fields with the separator and newlines inside must not split a row.
        let note = if i % 7 == 0 {
            format!("\"line one, {i}\nline two\"")
        } else {
            format!("plain {}", i % 40)
        };
        let city = ["Oslo", "Lima", "", "Pune"][i % 4];
        csv.push_str(&format!("{i},{x},{note},{city}\n"));
    }
    let path = common::write_temp(&dir, "big.csv", csv.as_bytes());
    let (_, memory) = wick_core::data::inspect_table(&path).unwrap();
    let mut calls = 0;
    let streamed = wick_core::data::summarize_csv_streaming(&path, 1024, &mut |done, total| {
        calls += 1;
        assert!(done <= total);
    })
    .unwrap();
    assert!(calls > 20, "{calls} chunks (4 KiB each at least)");
    // A seeded sample of the rows for what needs a frame: bounded, reproducible, all columns.
    let (_, a) = wick_core::data::stream_csv(&path, 1024, 500, 7, &mut |_, _| {}).unwrap();
    let (_, b) = wick_core::data::stream_csv(&path, 1024, 500, 7, &mut |_, _| {}).unwrap();
    assert!((450..=500).contains(&a.height()), "{}", a.height());
    assert!(a.equals_missing(&b), "the same seed draws the same rows");
    // The sample alone parses only the rows it keeps, and keeps the same ones.
    let c = wick_core::data::sample_csv(&path, 1024, 500, 7, &mut |_, _| {}).unwrap();
    assert!(a.equals_missing(&c), "sample_csv draws stream_csv's rows");
    assert_eq!(a.get_column_names(), ["id", "x", "note", "city"]);
    assert_eq!(streamed.rows, 3000);
    assert_eq!(streamed.preview, memory.preview);
    for (s, m) in streamed.columns.iter().zip(&memory.columns) {
        assert_eq!(
            (s.name.as_str(), s.kind, s.missing),
            (m.name.as_str(), m.kind, m.missing),
            "{}",
            s.name
        );
        for (a, b) in [
            (s.min, m.min),
            (s.max, m.max),
            (s.mean, m.mean),
            (s.std, m.std),
        ] {
            match (a, b) {
                (Some(a), Some(b)) => assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                    "{}: {a} vs {b}",
                    s.name
                ),
                (a, b) => assert_eq!(a, b, "{}", s.name),
            }
        }
        if s.kind == wick_core::data::ColumnKind::Text {
            assert_eq!(
                (s.distinct, &s.top_values),
                (m.distinct, &m.top_values),
                "{}",
                s.name
            );
        } else {
            // Numbers' distinct counts are HyperLogLog estimates: within 2%.
            assert!(
                (s.distinct as f64 - m.distinct as f64).abs() <= 0.02 * m.distinct as f64 + 1.0,
                "{}: {} vs {}",
                s.name,
                s.distinct,
                m.distinct
            );
        }
    }
}

/// Image files become model input one way everywhere: the centred region of the input's aspect
/// ratio, resized; 16-bit and grey images are converted.
#[test]
fn images_are_centre_cropped_to_the_input_and_converted() {
    let dir = TempDir::new().unwrap();
    // 12×4: black, then a white 4×4 square in the middle, then black.
    let wide = image::RgbImage::from_fn(12, 4, |x, _| {
        if (4..8).contains(&x) {
            image::Rgb([255, 255, 255])
        } else {
            image::Rgb([0, 0, 0])
        }
    });
    let path = dir.path().join("wide.png");
    wide.save(&path).unwrap();
    let square = wick_core::data::ImageShape {
        height: 4,
        width: 4,
        channels: 3,
    };
    let px = wick_core::data::load_image(&path, square).unwrap();
    assert!(
        px.iter().all(|v| *v > 0.99),
        "only the centre is kept, not stretched: {px:?}"
    );
    // A 16-bit grey PNG as RGB input: scaled to bytes, one value per channel.
    let deep =
        image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_pixel(4, 4, image::Luma([32768]));
    let path = dir.path().join("deep.png");
    deep.save(&path).unwrap();
    let px = wick_core::data::load_image(&path, square).unwrap();
    assert!(px.iter().all(|v| (v - 0.5).abs() < 0.01), "{px:?}");
}

#[test]
fn indexing_a_folder_reports_its_progress_to_the_last_file() {
    let mut seen = Vec::new();
    let index = wick_core::data::index_image_folder_with_progress(
        &common::sample("digits"),
        &mut |done, total| seen.push((done, total)),
    )
    .unwrap();
    assert_eq!(
        seen.first(),
        Some(&(0, 1797)),
        "the total is known before the headers are read"
    );
    assert_eq!(seen.last(), Some(&(1797, 1797)));
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    assert_eq!(index.samples().unwrap().len(), 1797);
}
