"""Runs an exported Wick model in onnxruntime and compares its outputs with Wick's own.

Usage: python check.py CASE.json. The case names the .onnx file, its inputs (dtype, shape, flat
data) and Wick's outputs for them. Prints one JSON line with the largest relative error per
output; exits 1 when the ONNX checker rejects the file or an output differs by more than `rtol`.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main() -> int:
    case = json.load(open(sys.argv[1]))
    model = onnx.load(case["onnx"])
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(case["onnx"], providers=["CPUExecutionProvider"])
    feed = {}
    for name, t in case["inputs"].items():
        if t["dtype"] == "str":
            feed[name] = np.array(t["data"], dtype=object).reshape(t["shape"])
        else:
            data = [float("nan") if v is None else v for v in t["data"]]
            feed[name] = np.array(data, dtype=t["dtype"]).reshape(t["shape"])
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, feed)))
    report, failures = {}, []
    for name, want in case["expected"].items():
        if name not in got:
            failures.append(f"output `{name}` is missing; the model has {names}")
            continue
        if want["dtype"] == "str":
            g = [str(v) for v in got[name].reshape(-1)]
            wrong = sum(a != b for a, b in zip(g, want["data"]))
            report[name] = {"mismatches": wrong}
            if wrong or len(g) != len(want["data"]):
                failures.append(f"`{name}`: {wrong} of {len(g)} labels differ")
            continue
        g = got[name].astype(np.float64).reshape(-1)
        w = np.array(want["data"], dtype=np.float64)
        if g.shape != w.shape:
            failures.append(f"`{name}`: {g.shape[0]} values, Wick gave {w.shape[0]}")
            continue
        rel = np.abs(g - w) / np.maximum(np.abs(w), case["abs_floor"])
        worst = int(np.argmax(rel))
        report[name] = {"max_rel": float(rel[worst]), "at": worst, "onnx": float(g[worst]), "wick": float(w[worst])}
        if rel[worst] > case["rtol"]:
            failures.append(f"`{name}`: element {worst} is {g[worst]!r} in onnxruntime, {w[worst]!r} in Wick")
    print(json.dumps({"onnxruntime": ort.__version__, "outputs": report, "failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
