#!/usr/bin/env python3
"""Peers for `ocelli mnist`: the same two MNIST models in PyTorch and Keras/TensorFlow.

Same data (the gzip IDX files in Data/mnist, parsed here with numpy), same models, same batch
sizes, epochs and optimizer (Adam, lr 0.001, betas 0.9/0.999, eps 1e-7; glorot_uniform kernels,
zero biases), the same thread count. Reports seconds per epoch, test accuracy/loss and peak RSS.

    /work/venv/bin/python Benchmarks/peers/mnist_peers.py                        # torch + keras, both models
    /work/venv/bin/python Benchmarks/peers/mnist_peers.py --framework torch --model convnet
    /work/venv/bin/python Benchmarks/peers/mnist_peers.py --epochs 1 --limit 512  # smoke test
    /work/venv/bin/python Benchmarks/peers/mnist_peers.py --ocelli .build/release/ocelli --json

Models (Keras semantics; NHWC 28x28x1 in [0, 1]; one-hot labels; categorical cross-entropy):
    seed    (batch 32, 10 epochs): Conv2D 32 3x3 relu -> Dropout 0.5 -> Conv2D 10 1x1 relu ->
            Dropout 0.5 -> Conv2D 10 26x26 linear -> Flatten -> softmax
    convnet (batch 128, 5 epochs): Conv2D 32 3x3 relu -> MaxPool 2 -> Conv2D 64 3x3 relu ->
            MaxPool 2 -> Flatten -> Dropout 0.5 -> Dense 10 softmax  (34,826 parameters)
PyTorch runs them in NCHW (its own best layout) on logits with CrossEntropyLoss (= softmax + CE).

Each framework/model pair runs in its own child process (this script with --child, or the Ocelli
binary); peak RSS is that child's ru_maxrss from os.wait4, so numbers don't mix. This parent
process imports no numpy/torch/tensorflow and stays small: on Linux a child's ru_maxrss also counts
the parent's RSS at fork time, a few MB here.

--json prints one JSON object per run per line (keys: framework, model, epochs, batch_size,
epoch_seconds, test_accuracy, test_loss, peak_rss_mb, plus threads, train_samples, seed, version,
history) and the markdown table goes to stderr; without --json, per-epoch progress goes to stderr
and the table to stdout. With --ocelli PATH it also runs
    PATH mnist --model M --json --verbose 0 [--epochs N] [--limit N] --threads T --seed S --data DIR
and parses the last line of its stdout. Skipped frameworks print {"framework", "model", "skipped"}.

Timing: an epoch is the whole pass over the (shuffled) training data, with the running loss and
accuracy computed per batch, as Keras and Ocelli do; evaluation is on the 10,000 test images with
batch 256. The table's mean s/epoch leaves out the first epoch when there is more than one (it
includes graph tracing for Keras and warm-up for all), and shows the first one separately.
Small known differences: Keras/Ocelli Adam add eps to sqrt(v) before the bias correction of the
step, PyTorch after it (immaterial with eps 1e-7); shuffling and dropout RNGs differ per framework.
"""
import argparse
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = {"seed": {"batch_size": 32, "epochs": 10}, "convnet": {"batch_size": 128, "epochs": 5}}
FRAMEWORKS = ("torch", "keras")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--framework", choices=("torch", "keras", "all"), default="all",
                   help="peer framework(s) to run (default: all that import)")
    p.add_argument("--model", choices=("seed", "convnet", "both"), default="both")
    p.add_argument("--epochs", type=int, help="epochs (default: 10 for seed, 5 for convnet)")
    p.add_argument("--batch-size", type=int, help="batch size (default: 32 for seed, 128 for convnet)")
    p.add_argument("--limit", type=int, help="use only the first N training images (smoke tests)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1, help="random seed (init, shuffling, dropout)")
    p.add_argument("--data", default=str(ROOT / "Data" / "mnist"), help="folder with the four MNIST .gz files")
    p.add_argument("--json", action="store_true", help="one JSON object per run per line on stdout")
    p.add_argument("--ocelli", metavar="PATH", help="also run `PATH mnist ...` (an Ocelli binary)")
    p.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "MODEL"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    for name in ("epochs", "batch_size", "limit", "threads"):
        v = getattr(a, name)
        if v is not None and v < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return a


def thread_env(threads):
    t = str(threads)
    return {"OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t,
            "NUMEXPR_NUM_THREADS": t, "VECLIB_MAXIMUM_THREADS": t,
            "TF_NUM_INTRAOP_THREADS": t, "TF_NUM_INTEROP_THREADS": t,
            "OCELLI_NUM_THREADS": t, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}


# ----------------------------------------------------------------------------- child side

def load_mnist(directory, limit):
    import gzip
    import numpy as np

    def idx(name):
        with gzip.open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
            raise ValueError(f"{name}: not an unsigned-byte IDX file")
        ndim = data[3]
        shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
        return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)

    xtr, ytr = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
    xte, yte = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
    if limit is not None:
        xtr, ytr = xtr[:limit], ytr[:limit]

    def scaled(x):  # NHWC float32 in [0, 1], one copy
        x = x.astype(np.float32)
        x *= np.float32(1 / 255)
        return x.reshape(*x.shape, 1)

    return scaled(xtr), ytr.astype(np.int64), scaled(xte), yte.astype(np.int64)


def epoch_line(fw, model, epoch, epochs, seconds, loss, acc):
    print(f"[{fw} {model}] epoch {epoch + 1}/{epochs}: {seconds:.2f}s loss {loss:.4f} accuracy {acc:.4f}",
          file=sys.stderr, flush=True)


def run_torch(a, model, epochs, batch_size, data, quiet):
    import torch
    from torch import nn

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr, xte, yte = data
    # NHWC with one channel has the same memory order as NCHW: a reshape, no copy.
    xtr = torch.from_numpy(xtr.reshape(-1, 1, 28, 28))
    xte = torch.from_numpy(xte.reshape(-1, 1, 28, 28))
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)

    if model == "seed":
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Dropout(0.5),
            nn.Conv2d(32, 10, 1), nn.ReLU(), nn.Dropout(0.5),
            nn.Conv2d(10, 10, 26), nn.Flatten())  # logits; softmax is in the loss
    else:
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(64 * 5 * 5, 10))
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)  # = Keras glorot_uniform (same fans)
            nn.init.zeros_(m.bias)
    params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(a.seed)
    n = xtr.shape[0]

    epoch_seconds, hist_loss, hist_acc = [], [], []
    for epoch in range(epochs):
        start = time.perf_counter()
        net.train()
        order = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad(set_to_none=True)
            logits = net(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.detach().argmax(1) == yb).sum().item()
        seconds = time.perf_counter() - start
        epoch_seconds.append(seconds)
        hist_loss.append(loss_sum / n)
        hist_acc.append(correct / n)
        if not quiet:
            epoch_line("torch", model, epoch, epochs, seconds, hist_loss[-1], hist_acc[-1])

    net.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for s in range(0, xte.shape[0], 256):
            logits = net(xte[s:s + 256])
            yb = yte[s:s + 256]
            loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
            correct += (logits.argmax(1) == yb).sum().item()
    nt = xte.shape[0]
    return {"version": torch.__version__, "params": params, "epoch_seconds": epoch_seconds,
            "test_accuracy": correct / nt, "test_loss": loss_sum / nt,
            "history": {"loss": hist_loss, "accuracy": hist_acc}}


def run_keras(a, model, epochs, batch_size, data, quiet):
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    import keras
    from keras import layers

    keras.utils.set_random_seed(a.seed)
    xtr, ytr, xte, yte = data
    eye = np.eye(10, dtype=np.float32)
    ytr1, yte1 = eye[ytr], eye[yte]

    if model == "seed":
        net = keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"), layers.Dropout(0.5),
            layers.Conv2D(10, 1, activation="relu"), layers.Dropout(0.5),
            layers.Conv2D(10, 26), layers.Flatten(), layers.Activation("softmax")])
    else:
        net = keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation="softmax")])
    # Keras defaults: glorot_uniform kernels, zero biases; Adam lr 0.001, betas 0.9/0.999, eps 1e-7.
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
                loss="categorical_crossentropy", metrics=["accuracy"])

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)
            if not quiet:
                logs = logs or {}
                epoch_line("keras", model, epoch, epochs, self.seconds[-1],
                           float(logs.get("loss", float("nan"))), float(logs.get("accuracy", float("nan"))))

    timer = Timer()
    hist = net.fit(xtr, ytr1, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer])
    loss, acc = net.evaluate(xte, yte1, batch_size=256, verbose=0)
    return {"version": f"keras {keras.__version__}, tensorflow {tf.__version__}", "params": int(net.count_params()),
            "jit_compile": bool(getattr(net, "jit_compile", False)), "epoch_seconds": timer.seconds,
            "test_accuracy": float(acc), "test_loss": float(loss),
            "history": {k: [float(v) for v in vs] for k, vs in hist.history.items()}}


def child_main(a):
    for k, v in thread_env(a.threads).items():  # before numpy/torch/tensorflow load (set by the parent too)
        os.environ.setdefault(k, v)
    import resource
    fw, model = a.child
    epochs = a.epochs or DEFAULTS[model]["epochs"]
    batch_size = a.batch_size or DEFAULTS[model]["batch_size"]
    out = {"framework": fw, "model": model, "epochs": epochs, "batch_size": batch_size}
    if fw == "keras":
        try:
            import tensorflow  # noqa: F401  (import before loading data: a failed import is a skip)
            import keras  # noqa: F401
        except Exception as e:  # ImportError, or a broken install
            out["skipped"] = f"tensorflow/keras did not import: {type(e).__name__}: {e}"
            print(json.dumps(out), flush=True)
            return 0
    data = load_mnist(a.data, a.limit)
    run = run_torch if fw == "torch" else run_keras
    result = run(a, model, epochs, batch_size, data, quiet=a.json)
    out.update(result)
    out.update({"threads": a.threads, "seed": a.seed, "train_samples": int(data[0].shape[0]),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    print(json.dumps(out), flush=True)
    return 0


# ----------------------------------------------------------------------------- parent side

def run_child(cmd, env, cwd=None):
    """Runs cmd; returns (returncode, stdout text, peak RSS of that child in MB)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, cwd=cwd)
    out = p.stdout.read()
    p.stdout.close()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, out.decode("utf-8", "replace"), usage.ru_maxrss / 1024


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line on stdout")


def summarize(secs):
    if not secs:
        return float("nan"), float("nan")
    rest = secs[1:] if len(secs) > 1 else secs
    return secs[0], sum(rest) / len(rest)


def table(results, models, a):
    lines = []
    for model in models:
        rows = [r for r in results if r["model"] == model]
        if not rows:
            continue
        d = DEFAULTS[model]
        samples = next((r["train_samples"] for r in rows if "train_samples" in r), min(a.limit or 60000, 60000))
        lines += ["", f"### {model} (batch {a.batch_size or d['batch_size']}, {a.epochs or d['epochs']} epochs, "
                      f"{samples} training images, {a.threads} threads)", "",
                  "| framework | first epoch s | mean s/epoch (after the first) | ÷ PyTorch s/epoch | "
                  "test accuracy | test loss | peak RSS MB |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        torch_row = next((r for r in rows if r["framework"] == "torch" and "epoch_seconds" in r), None)
        torch_mean = summarize(torch_row["epoch_seconds"])[1] if torch_row else None
        for r in rows:
            if "epoch_seconds" not in r:
                why = r.get("skipped") or r.get("error") or "no result"
                lines.append(f"| {r['framework']} | skipped: {why} | | | | | |")
                continue
            first_s, mean_s = summarize(r["epoch_seconds"])
            ratio = f"{mean_s / torch_mean:.2f}" if torch_mean else "–"
            lines.append(f"| {r['framework']} | {first_s:.2f} | {mean_s:.2f} | {ratio} | "
                         f"{r['test_accuracy']:.4f} | {r['test_loss']:.4f} | {r['peak_rss_mb']:.0f} |")
    if lines:
        lines += ["", "Mean s/epoch leaves out the first epoch when there are several; "
                      "÷ PyTorch > 1 means slower than PyTorch. Peak RSS: the run's own process (ru_maxrss)."]
    return "\n".join(lines[1:])


def main():
    a = parse_args()
    if a.child:
        return child_main(a)

    models = ["seed", "convnet"] if a.model == "both" else [a.model]
    frameworks = list(FRAMEWORKS) if a.framework == "all" else [a.framework]
    env = dict(os.environ)
    env.update(thread_env(a.threads))
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(var, None)

    skip_reason = {}
    for fw, module in (("torch", "torch"), ("keras", "tensorflow")):
        if fw in frameworks and importlib.util.find_spec(module) is None:
            hint = " (pip install tensorflow-cpu)" if fw == "keras" else ""
            skip_reason[fw] = f"{module} is not installed in {sys.executable}{hint}"

    ocelli = None
    if a.ocelli:
        ocelli = os.path.abspath(a.ocelli) if os.sep in a.ocelli else a.ocelli

    results, failed = [], False
    log = sys.stderr
    for model in models:
        runs = [(fw, None) for fw in frameworks]
        if ocelli:
            runs.append(("ocelli", ocelli))
        for fw, binary in runs:
            epochs = a.epochs or DEFAULTS[model]["epochs"]
            batch_size = a.batch_size or DEFAULTS[model]["batch_size"]
            if fw in skip_reason:
                r = {"framework": fw, "model": model, "epochs": epochs, "batch_size": batch_size,
                     "skipped": skip_reason[fw]}
                print(f"[{fw} {model}] skipped: {skip_reason[fw]}", file=log, flush=True)
            else:
                if binary:
                    cmd = [binary, "mnist", "--model", model, "--json", "--verbose", "0"]
                    if a.epochs:
                        cmd += ["--epochs", str(a.epochs)]
                    if a.batch_size:
                        cmd += ["--batch-size", str(a.batch_size)]
                    if a.limit:
                        cmd += ["--limit", str(a.limit)]
                    cmd += ["--threads", str(a.threads), "--seed", str(a.seed), "--data", a.data]
                else:
                    cmd = [sys.executable, os.path.abspath(__file__), "--child", fw, model,
                           "--threads", str(a.threads), "--seed", str(a.seed), "--data", a.data]
                    if a.epochs:
                        cmd += ["--epochs", str(a.epochs)]
                    if a.batch_size:
                        cmd += ["--batch-size", str(a.batch_size)]
                    if a.limit:
                        cmd += ["--limit", str(a.limit)]
                    if a.json:
                        cmd.append("--json")
                print(f"[{fw} {model}] running: {' '.join(cmd)}", file=log, flush=True)
                t0 = time.perf_counter()
                try:
                    rc, out, rss = run_child(cmd, env, cwd=str(ROOT))
                    r = last_json(out) if rc == 0 else None
                    if r is None:
                        raise RuntimeError(f"exit status {rc}; stdout tail: {out.strip()[-300:]!r}")
                except Exception as e:  # a failed run is reported, the others still run
                    r = {"framework": fw, "model": model, "epochs": epochs, "batch_size": batch_size,
                         "error": f"{type(e).__name__}: {e}"}
                    failed = True
                    print(f"[{fw} {model}] failed: {r['error']}", file=log, flush=True)
                else:
                    r.setdefault("framework", fw)
                    if "skipped" in r:
                        skip_reason[fw] = r["skipped"]
                        print(f"[{fw} {model}] skipped: {r['skipped']}", file=log, flush=True)
                    else:
                        if "peak_rss_mb" in r:
                            r["peak_rss_mb_self"] = r["peak_rss_mb"]
                        r["peak_rss_mb"] = rss  # the child's ru_maxrss from wait4, the same way for all
                        r["wall_seconds"] = time.perf_counter() - t0
                        first_s, mean_s = summarize(r["epoch_seconds"])
                        print(f"[{fw} {model}] done: first epoch {first_s:.2f}s, mean {mean_s:.2f}s/epoch, "
                              f"test accuracy {r['test_accuracy']:.4f}, peak RSS {rss:.0f} MB", file=log, flush=True)
            results.append(r)
            if a.json:
                print(json.dumps(r), flush=True)

    print(table(results, models, a), file=sys.stderr if a.json else sys.stdout, flush=True)
    explicit = a.framework != "all"
    if failed or (explicit and all("skipped" in r for r in results if r["framework"] == a.framework)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
