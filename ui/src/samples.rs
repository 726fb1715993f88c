//! The sample datasets shipped in `sample-data/`, so a first-time user can try everything at once.

/// One sample dataset.
#[derive(Debug)]
pub struct Sample {
    pub id: &'static str,
    pub title: &'static str,
    pub blurb: &'static str,
    /// Relative to the samples folder.
    pub path: &'static str,
    /// The column a first-time user would predict.
    pub target: Option<&'static str>,
}

pub const SAMPLES: [Sample; 3] = [
    Sample {
        id: "seattle-weather",
        title: "Seattle weather",
        blurb: "1,461 days of weather. Predict the day's highest temperature (regression).",
        path: "seattle-weather.csv",
        target: Some("temp_max"),
    },
    Sample {
        id: "breast-cancer",
        title: "Breast cancer",
        blurb: "569 tumour measurements. Tell benign from malignant (classification).",
        path: "breast-cancer.csv",
        target: Some("diagnosis"),
    },
    Sample {
        id: "digits",
        title: "Handwritten digits",
        blurb: "1,797 small images of the digits 0–9 (image classification).",
        path: "digits",
        target: None,
    },
];
