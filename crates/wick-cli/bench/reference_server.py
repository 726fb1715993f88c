"""A Python Open Inference Protocol server for `wick bench --serve`: FastAPI + uvicorn, with NumPy for
the linear model and PyTorch (CPU) for the CNN. It reads the very same Wick packages (safetensors +
wick.json), so both servers compute the same predictions. uvicorn runs on uvloop with the httptools
parser when they are installed (`scripts/setup.sh --bench` installs them, as `fastapi[standard]` does).

Usage: reference_server.py PORT LINEAR_PACKAGE CNN_PACKAGE
"""
import json
import os
import sys

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from safetensors.numpy import load_file

torch.set_num_threads(int(os.environ.get("REFERENCE_THREADS", "2")))
port, linear_dir, cnn_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def manifest(d):
    with open(os.path.join(d, "wick.json")) as f:
        return json.load(f)


lin_m = manifest(linear_dir)
lin_w = load_file(os.path.join(linear_dir, "model.safetensors"))
encoders = lin_m["preprocessing"]["preprocessor"]["encoders"]
means = np.array([e["mean"] for e in encoders])
stds = np.array([e["std"] for e in encoders])
coef, intercept = lin_w["linear.coefficients"], float(lin_w["linear.intercept"][0])

cnn_m = manifest(cnn_dir)
cnn_w = load_file(os.path.join(cnn_dir, "model.safetensors"))
labels = cnn_m["target"]["labels"]
layers = []
for i, layer in enumerate(cnn_m["spec"]["layers"]):
    t = layer["type"]
    if t == "conv2d":
        pad = layer["kernel"] // 2 if layer.get("padding", "same") == "same" else 0
        w = torch.from_numpy(cnn_w[f"layers.{i}.weight"])
        conv = torch.nn.Conv2d(w.shape[1], w.shape[0], layer["kernel"], stride=layer.get("stride", 1), padding=pad)
        conv.weight.data, conv.bias.data = w, torch.from_numpy(cnn_w[f"layers.{i}.bias"])
        layers.append(conv)
    elif t == "max_pool2d":
        layers.append(torch.nn.MaxPool2d(layer["size"]))
    elif t == "activation":
        layers.append(torch.nn.ReLU())
    elif t == "flatten":
        layers.append(torch.nn.Flatten())
    elif t == "dense":
        w = torch.from_numpy(cnn_w[f"layers.{i}.weight"])
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data, lin.bias.data = w, torch.from_numpy(cnn_w[f"layers.{i}.bias"])
        layers.append(lin)
    else:
        raise SystemExit(f"reference server: layer {t} not supported")
out = torch.nn.Linear(cnn_w["output.weight"].shape[1], cnn_w["output.weight"].shape[0])
out.weight.data, out.bias.data = torch.from_numpy(cnn_w["output.weight"]), torch.from_numpy(cnn_w["output.bias"])
cnn = torch.nn.Sequential(*layers, out).eval()
shape = cnn_m["preprocessing"]["shape"]

app = FastAPI()


@app.get("/v2/health/ready")
def ready():
    return {"ready": True}


@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request):
    body = await request.json()
    if name == "linear":
        inputs = {i["name"]: np.asarray(i["data"], dtype=np.float64) for i in body["inputs"]}
        x = np.stack([inputs[e["name"]] for e in encoders], axis=1)
        y = ((x - means) / stds) @ coef + intercept
        outputs = [{"name": lin_m["target"]["name"], "shape": [len(y)], "datatype": "FP64", "data": y.tolist()}]
    elif name == "cnn":
        i = body["inputs"][0]
        n = i["shape"][0]
        x = torch.tensor(i["data"], dtype=torch.float32).reshape(n, shape["height"], shape["width"], shape["channels"]) / 255.0
        with torch.no_grad():
            p = torch.softmax(cnn(x.permute(0, 3, 1, 2)), dim=1)
        best = p.argmax(1).tolist()
        outputs = [
            {"name": "label", "shape": [n], "datatype": "BYTES", "data": [labels[b] for b in best]},
            {"name": "probabilities", "shape": [n, len(labels)], "datatype": "FP32", "data": p.flatten().tolist()},
        ]
    else:
        return JSONResponse({"error": f"model {name} not found"}, status_code=404)
    return {"model_name": name, "model_version": "1", "outputs": outputs}


uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
