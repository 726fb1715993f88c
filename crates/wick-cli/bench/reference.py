"""Reference timings for `wick bench`: the same work with pandas, numpy and PyTorch (CPU).

Each sub-command prints one JSON object. The training and inference commands take an optional last
argument, PyTorch's device ("cpu", the default, or "cuda"). A library that is not installed prints {"missing": "name"}.
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


def infer(batches, threads, device="cpu"):
    """LeNet inference in batches of 256."""
    try:
        import torch
    except ImportError:
        return out({"missing": "torch"})
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = _net("lenet")[0].to(device).eval()
    xi = torch.rand(256, 1, 28, 28, device=device)
    with torch.no_grad():
        net(xi).sum().item()
        t = time.perf_counter()
        for _ in range(batches):
            net(xi).sum().item()
        rate = batches * 256 / (time.perf_counter() - t)
    out({"infer_images_per_sec": rate, "version": torch.__version__})


def big(path):
    """polars' own streaming scan of the big CSV: the row count and each column's missing count,
    min, max and mean in one pass, with the streaming engine."""
    try:
        import polars as pl
    except ImportError:
        return out({"missing": "polars"})
    import resource
    t = time.perf_counter()
    lf = pl.scan_csv(path)
    numeric = [n for n, d in lf.collect_schema().items() if d.is_numeric()]
    exprs = [pl.len()] + [pl.all().null_count().name.suffix("_missing")]
    exprs += [pl.col(numeric).min().name.suffix("_min"), pl.col(numeric).max().name.suffix("_max"), pl.col(numeric).mean().name.suffix("_mean")]
    result = lf.select(exprs).collect(engine="streaming")
    secs = time.perf_counter() - t
    rows = result["len"][0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out({"secs": secs, "rows": rows, "rows_per_sec": rows / secs, "peak_mb": peak_mb, "version": pl.__version__})


def big_linear(path):
    """Least squares of `score` on every row of the big CSV, out of core, as a pandas user would
    write it: chunks of a million rows, the date's parts, the category one-hot, and XᵀX summed
    with numpy; the same columns Wick's linear model uses (it leaves the id out)."""
    try:
        import numpy as np
        import pandas as pd
    except ImportError:
        return out({"missing": "pandas"})
    import resource
    t = time.perf_counter()
    xtx, xty, rows = None, None, 0
    cats = ["alpha", "beta", "delta", "epsilon", "gamma"]
    for chunk in pd.read_csv(path, chunksize=1_000_000):
        date = pd.to_datetime(chunk["date"], format="%Y-%m-%d")
        parts = np.column_stack([date.dt.year, date.dt.month, date.dt.dayofweek, date.dt.hour,
                                 (date - pd.Timestamp("1970-01-01")).dt.days])
        onehot = np.column_stack([(chunk["category"] == c).to_numpy() for c in cats])
        x = np.column_stack([parts, onehot, chunk[list("abcdefgh")].to_numpy(), np.ones(len(chunk))]).astype(np.float64)
        y = chunk["score"].to_numpy(np.float64)
        xtx = x.T @ x if xtx is None else xtx + x.T @ x
        xty = x.T @ y if xty is None else xty + x.T @ y
        rows += len(chunk)
    np.linalg.lstsq(xtx, xty, rcond=None)
    secs = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out({"secs": secs, "rows": rows, "rows_per_sec": rows / secs, "peak_mb": peak_mb, "version": pd.__version__})


def photos(folder, threads):
    """Pillow decoding the bench's JPEGs and resizing them to 224x224 RGB (bilinear), as a PyTorch
    data loader does, on a thread pool of the same size (Pillow releases the GIL while it decodes)."""
    try:
        import numpy as np
        import PIL
        from PIL import Image
    except ImportError:
        return out({"missing": "pillow"})
    import glob
    from concurrent.futures import ThreadPoolExecutor
    paths = sorted(glob.glob(f"{folder}/*/*.jpg"))

    def load(p):
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB").resize((224, 224), Image.BILINEAR)).nbytes

    with ThreadPoolExecutor(threads) as pool:
        t = time.perf_counter()
        total = sum(pool.map(load, paths))
        secs = time.perf_counter() - t
    assert total == len(paths) * 224 * 224 * 3
    out({"images_per_sec": len(paths) / secs, "secs": secs, "version": PIL.__version__})


def gbdt(path, threads):
    """HistGradientBoostingRegressor on the generated table (target: last column), as Wick's row
    fits it: 100 trees of depth 6, rate 0.1, at least 20 rows a leaf, no L2, no early stopping."""
    try:
        import numpy as np
        import sklearn
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits
    except ImportError:
        return out({"missing": "scikit-learn"})
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    x, y = data[:, :-1], data[:, -1]
    with threadpool_limits(threads):
        model = HistGradientBoostingRegressor(max_iter=100, max_depth=6, max_leaf_nodes=None, learning_rate=0.1,
                                              min_samples_leaf=20, l2_regularization=0.0, max_bins=255,
                                              early_stopping=False, random_state=0)
        t = time.perf_counter()
        model.fit(x, y)
        fit_secs = time.perf_counter() - t
        t = time.perf_counter()
        model.predict(x)
        predict_rate = len(x) / (time.perf_counter() - t)
    out({"fit_secs": fit_secs, "predict_rows_per_sec": predict_rate, "version": sklearn.__version__})


def _net(name):
    """The networks of Wick's training rows, layer for layer (see wick_core::model::spec)."""
    from torch import nn
    if name == "lenet":
        net = nn.Sequential(
            nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, 10),
        )
        return net, (1, 28, 28), 10, 64, "adamw"
    if name == "cnn8":
        # Wick's default CNN on the 8×8 sample digits.
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, 10),
        )
        return net, (1, 8, 8), 10, 64, "adamw"
    if name == "mlp":
        # Two hidden layers of 64 on breast-cancer.csv's shape: 30 features, 2 classes.
        net = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
        return net, (30,), 2, 32, "adam"
    raise SystemExit(f"unknown network {name}")


def train(name, steps, threads, device="cpu"):
    try:
        import torch
        from torch import nn
    except ImportError:
        return out({"missing": "torch"})
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, shape, classes, batch, optimizer = _net(name)
    net = net.to(device)
    opt = (torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam)(net.parameters(), lr=1e-3)
    x = torch.rand(batch, *shape, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        loss.item()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    out({"train_samples_per_sec": steps * batch / (time.perf_counter() - t), "version": torch.__version__})


def resnet18(batch, batches, threads, device="cpu"):
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError:
        try:
            import torch
        except ImportError:
            return out({"missing": "torch"})
        return out({"missing": "torchvision"})
    from torchvision.models import resnet18 as make
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = make()
    net.fc = torch.nn.Identity()  # Wick's backbone ends at the pooled 512 features too
    net = net.eval().to(device)
    x = torch.rand(batch, 3, 224, 224, device=device)
    with torch.no_grad():
        net(x).sum().item()
        t = time.perf_counter()
        for _ in range(batches):
            net(x).sum().item()
    out({"images_per_sec": batches * batch / (time.perf_counter() - t), "version": torch.__version__})


def resnet18_fine_tune(batch, steps, threads, device="cpu"):
    """Fine-tuning a ResNet-18's layer4 and a 10-class head at 224x224, as Wick does: the rest frozen
    under no_grad, batch norms in eval mode (their statistics fixed), AdamW at 1e-4 for layer4 and
    1e-3 for the head."""
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError:
        return out({"missing": "torchvision"})
    from torch import nn
    from torchvision.models import resnet18 as make
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = make()
    net.fc = nn.Linear(512, 10)
    net = net.to(device).eval()
    trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
    for p in trunk.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW([{"params": net.layer4.parameters(), "lr": 1e-4}, {"params": net.fc.parameters(), "lr": 1e-3}], weight_decay=0.01)
    x = torch.rand(batch, 3, 224, 224, device=device)
    y = torch.arange(batch, device=device) % 10
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        with torch.no_grad():
            h = trunk(x)
        feats = torch.flatten(net.avgpool(net.layer4(h)), 1)
        loss = loss_fn(net.fc(feats), y)
        loss.backward()
        opt.step()
        loss.item()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    out({"images_per_sec": steps * batch / (time.perf_counter() - t), "version": torch.__version__})


def peak_memory(steps, threads):
    """Peak resident memory of training LeNet on 60,000 28×28 images held in memory."""
    try:
        import torch
        from torch import nn
    except ImportError:
        return out({"missing": "torch"})
    import resource
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, _, classes, batch, _ = _net("lenet")
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.rand(60000, 1, 28, 28)
    y = torch.randint(0, classes, (60000,))
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(60000)
    for s in range(steps):
        idx = order[s * batch:(s + 1) * batch]
        opt.zero_grad()
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
        loss.item()
    out({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000, "version": torch.__version__})


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "csv":
        csv(args[0])
    elif cmd == "big":
        big(args[0])
    elif cmd == "big_linear":
        big_linear(args[0])
    elif cmd == "photos":
        photos(args[0], int(args[1]))
    elif cmd == "gbdt":
        gbdt(args[0], int(args[1]))
    elif cmd == "lstsq":
        lstsq(int(args[0]), int(args[1]))
    elif cmd == "infer":
        infer(int(args[0]), int(args[1]), *args[2:3])
    elif cmd == "train":
        train(args[0], int(args[1]), int(args[2]), *args[3:4])
    elif cmd == "resnet18":
        resnet18(int(args[0]), int(args[1]), int(args[2]), *args[3:4])
    elif cmd == "resnet18-fine-tune":
        resnet18_fine_tune(int(args[0]), int(args[1]), int(args[2]), *args[3:4])
    elif cmd == "peak-memory":
        peak_memory(int(args[0]), int(args[1]))
