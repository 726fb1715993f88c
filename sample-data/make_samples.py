"""Writes Wick's sample datasets from the copies shipped inside PyPI packages.

Run once: `pip install scikit-learn vega_datasets pillow && python3 sample-data/make_samples.py`.
The outputs are committed; this script records exactly how they were made.
"""
import os

import numpy as np
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_digits
from vega_datasets import local_data

here = os.path.dirname(os.path.abspath(__file__))

# Regression: Seattle daily weather 2012-2015 (vega-datasets, from NOAA).
weather = local_data.seattle_weather()
weather["month"] = weather["date"].dt.month
weather["date"] = weather["date"].dt.strftime("%Y-%m-%d")
weather = weather[["date", "month", "precipitation", "temp_min", "wind", "weather", "temp_max"]]
weather.to_csv(os.path.join(here, "seattle-weather.csv"), index=False)

# Classification: Breast Cancer Wisconsin (Diagnostic), as shipped by scikit-learn.
bc = load_breast_cancer(as_frame=True)
frame = bc.frame.copy()
frame.columns = [c.replace(" ", "_") for c in frame.columns]
frame["diagnosis"] = np.where(bc.target == 0, "malignant", "benign")
frame = frame.drop(columns=["target"])
frame.to_csv(os.path.join(here, "breast-cancer.csv"), index=False, float_format="%.6g")

# Images: scikit-learn's 8x8 handwritten digits (UCI optdigits), one folder per class.
digits = load_digits()
root = os.path.join(here, "digits")
for i, (img, label) in enumerate(zip(digits.images, digits.target)):
    folder = os.path.join(root, str(label))
    os.makedirs(folder, exist_ok=True)
    pixels = np.round(img * 255.0 / 16.0).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(os.path.join(folder, f"{i:04d}.png"))

# Photos: scikit-learn's two sample JPEGs (CC BY 2.0, see sklearn/datasets/images/README.txt), unchanged.
import shutil
import sklearn.datasets

photos = os.path.join(here, "photos")
os.makedirs(photos, exist_ok=True)
for name in ["flower.jpg", "china.jpg"]:
    shutil.copyfile(os.path.join(os.path.dirname(sklearn.datasets.__file__), "images", name), os.path.join(photos, name))
