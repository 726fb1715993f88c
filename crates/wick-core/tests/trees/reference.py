"""The scikit-learn figures pinned in tests/trees/reference.rs.

Run: OMP_NUM_THREADS=2 python crates/wick-core/tests/trees/reference.py   (scikit-learn 1.9.1)
Rows with index % 5 == 0 are the test rows; every other row trains (scikit-learn's defaults use no
validation split below 10,000 rows; Wick's run uses rows with index % 5 == 1 for early stopping).
"""
import pandas as pd
from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.metrics import accuracy_score, r2_score

cases = [
    ("breast-cancer.csv", "diagnosis", None),
    ("seattle-weather.csv", "weather", ["month", "precipitation", "temp_min", "wind", "temp_max"]),
    ("seattle-weather.csv", "temp_max", ["month", "precipitation", "temp_min", "wind", "weather"]),
]
for file, target, features in cases:
    df = pd.read_csv(f"sample-data/{file}")
    X = df[features] if features else df.drop(columns=[target])
    X = X.copy()
    for c in X.columns:
        if not pd.api.types.is_numeric_dtype(X[c]):
            X[c] = X[c].astype("category")
    y = df[target]
    test = df.index % 5 == 0
    regression = pd.api.types.is_numeric_dtype(y)
    for name, model in [
        ("hist_gradient_boosting", (HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier)(random_state=0, categorical_features="from_dtype")),
        ("random_forest", (RandomForestRegressor if regression else RandomForestClassifier)(random_state=0)),
    ]:
        Xf = X if name.startswith("hist") else X.apply(lambda c: c.cat.codes if str(c.dtype) == "category" else c)
        model.fit(Xf[~test], y[~test])
        p = model.predict(Xf[test])
        score = r2_score(y[test], p) if regression else accuracy_score(y[test], p)
        print(f"{file} {target} {name}: {'r2' if regression else 'accuracy'} {score!r}")
