"""Reference timings for `wick bench`: the same work with pandas, numpy and PyTorch (CPU).

Each sub-command prints one JSON object. A library that is not installed prints {"missing": "name"}.
Timings exclude Python start-up and imports, as Wick's exclude process start-up.
"""
import json
import sys
import time


def out(obj):
    print(json.dumps(obj))


def csv(path):
    try:
        import pandas as pd
    except ImportError:
        return out({"missing": "pandas"})
    t = time.perf_counter()
    df = pd.read_csv(path)
    secs = time.perf_counter() - t
    out({"secs": secs, "rows": len(df), "version": pd.__version__})


def lstsq(rows, cols):
    try:
        import numpy as np
    except ImportError:
        return out({"missing": "numpy"})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols))
    y = x @ rng.standard_normal(cols) + 0.1 * rng.standard_normal(rows)
    t = time.perf_counter()
    a = np.column_stack([x, np.ones(rows)])
    np.linalg.lstsq(a, y, rcond=None)
    out({"secs": time.perf_counter() - t, "version": np.__version__})


def cnn(train_steps, infer_batches, threads):
    try:
        import torch
        from torch import nn
    except ImportError:
        return out({"missing": "torch"})
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, 10),
    )
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.rand(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        loss.item()

    step()
    t = time.perf_counter()
    for _ in range(train_steps):
        step()
    train = train_steps * 64 / (time.perf_counter() - t)
    xi = torch.rand(256, 1, 28, 28)
    with torch.no_grad():
        net(xi).sum().item()
        t = time.perf_counter()
        for _ in range(infer_batches):
            net(xi).sum().item()
        infer = infer_batches * 256 / (time.perf_counter() - t)
    out({"train_images_per_sec": train, "infer_images_per_sec": infer, "version": torch.__version__})


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "csv":
        csv(args[0])
    elif cmd == "lstsq":
        lstsq(int(args[0]), int(args[1]))
    elif cmd == "cnn":
        cnn(int(args[0]), int(args[1]), int(args[2]))
