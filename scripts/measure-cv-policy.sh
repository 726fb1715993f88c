#!/usr/bin/env bash
# How cross-validation should treat small tables (issue 21): 5-fold accuracy of boosted trees, mean
# over seeds 0-4, for Wick's policy (a validation hold-out in each fold for early stopping) and the
# alternatives, beside scikit-learn's HistGradientBoostingClassifier. ARCHITECTURE.md has the table.
#   scripts/measure-cv-policy.sh [path/to/wick]     (default: target/debug/wick)
set -euo pipefail
cd "$(dirname "$0")/.."
wick=${1:-target/debug/wick}
dir=target/cv-policy
mkdir -p "$dir"
venv="$dir/venv"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install --quiet scikit-learn pandas; }
"$venv/bin/python" - "$dir" <<'PY'
import sys
import pandas as pd
from sklearn.datasets import load_wine
d = sys.argv[1]
w = load_wine(as_frame=True).frame
w["target"] = w["target"].map(lambda c: f"c{c}")
w.to_csv(f"{d}/wine.csv", index=False)
pd.read_csv("sample-data/seattle-weather.csv").iloc[:300].to_csv(f"{d}/weather300.csv", index=False)
PY
weather_features="--features month,precipitation,temp_min,wind,temp_max"
declare -A data=(
  [wine]="$dir/wine.csv --target target"
  [cancer]="sample-data/breast-cancer.csv --target diagnosis"
  [weather300]="$dir/weather300.csv --target weather $weather_features"
  [weather]="sample-data/seattle-weather.csv --target weather $weather_features"
)
declare -A variant=(
  [holdout_early_stopping]=""
  [every_row_300_trees]="--valid-fraction 0"
  [every_row_100_trees]="--valid-fraction 0 --trees 100"
)
for name in wine cancer weather300 weather; do
  for v in holdout_early_stopping every_row_300_trees every_row_100_trees; do
    sum=0
    for seed in 0 1 2 3 4; do
      # The first accuracy row is the cross-validation table's mean.
      # shellcheck disable=SC2086
      "$wick" train ${data[$name]} --model gbdt --cv 5 --seed "$seed" ${variant[$v]} \
        --out "$dir/cv.wick" > "$dir/out.txt" 2>&1
      acc=$(grep -m1 "│ accuracy ┆" "$dir/out.txt" | awk -F'┆' '{print $2}' | tr -d ' ')
      sum=$(python3 -c "print($sum + $acc)")
    done
    echo "$name wick_$v $(python3 -c "print(round($sum / 5, 4))")"
  done
done
"$venv/bin/python" - "$dir" <<'PY' 2>/dev/null
import sys
import numpy as np, pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score
d = sys.argv[1]
weather = ["month", "precipitation", "temp_min", "wind", "temp_max"]
sets = {"wine": (f"{d}/wine.csv", "target", None),
        "cancer": ("sample-data/breast-cancer.csv", "diagnosis", None),
        "weather300": (f"{d}/weather300.csv", "weather", weather),
        "weather": ("sample-data/seattle-weather.csv", "weather", weather)}
for name, (path, target, features) in sets.items():
    df = pd.read_csv(path)
    y = df[target]
    x = (df[features] if features else df.drop(columns=[target])).select_dtypes("number")
    accs = [cross_val_score(HistGradientBoostingClassifier(random_state=s), x, y,
                            cv=StratifiedKFold(5, shuffle=True, random_state=s)).mean() for s in range(5)]
    print(name, "sklearn_hgb", round(float(np.mean(accs)), 4))
PY
