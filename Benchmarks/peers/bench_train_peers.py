#!/usr/bin/env python3
"""Training throughput of yolov3-tiny (416x416, batch 16) in Ocelli, PyTorch and Darknet, side by side.

Each engine runs in its own child process, one after the other, --rounds times interleaved
(Ocelli, PyTorch, Darknet, Ocelli, ...); the table shows the median over rounds of each engine's
images/s and peak RSS, and Ocelli images/s ÷ the engine's images/s (> 1: Ocelli is faster).
Peak RSS is the child's ru_maxrss from os.wait4, the same way for all three. This parent process
imports only the standard library (torch and OpenCV load in children), because on Linux a child's
ru_maxrss also counts the parent's RSS at fork time.

All three build the network from the same cfg (default Data/cfg/yolov3-tiny.cfg, 80 classes) at
--size, with --threads threads, on random inputs:

  Ocelli   `OCELLI bench detect --cfg CFG --size S --train-batch B --train-steps N --threads T
           --images 1 --repeats 1 --json` -> train_images_per_s: one warm-up step, then the median
           of N steps; a step is the forward pass in training mode + backward of a mean-square loss
           on the two heads (no optimizer update; the update of 8.9M parameters is a few ms).
  PyTorch  the cfg parsed here into nn.Modules: conv + BatchNorm (no conv bias) + LeakyReLU(0.1),
           conv with bias for the linear head convs, Darknet's maxpool (size 2 stride 1 keeps 13x13:
           its window runs past the right/bottom edge, i.e. -inf padding there), route (concat),
           nearest x2 upsample. torch.set_num_threads(T), channels_last unless --no-channels-last,
           model.train(); a step = zero_grad + forward + loss mean over heads of mean((0.01*out)^2)
           + backward + SGD step (lr, momentum 0.9, weight decay from the cfg's [net]). One warm-up
           step, then the median of N steps. The child checks the head shapes ((B,255,13,13) and
           (B,255,26,26) in NCHW = (B,13,13,255)/(B,26,26,255) NHWC) and the parameter count:
           8,852,366 trainable + 6,368 BatchNorm running means/variances = 8,858,734, the number of
           values in yolov3-tiny.weights.
  Darknet  `darknet detector train DATA CFG` (no weights: random init), OMP_NUM_THREADS=T, on a
           synthetic data set written to a temp dir (32 random 416x416 JPEGs with a few boxes
           each, YOLO txt labels, classes=80, names=Data/cfg/coco.names), with a copy of the cfg
           set to batch=B subdivisions=1 width=height=S random=0 max_batches=N+2 (N =
           --darknet-steps, default 3: Darknet's CPU training takes ~25 s per iteration). Per
           iteration Darknet prints `i: loss, avg, rate, X seconds, M images`; X (wall time of
           train_network: forward + YOLO loss + backward + SGD update) of every iteration but the
           first gives the median -> images/s = B / median. The wall time between consecutive
           iteration lines is recorded as a cross-check (old Darknets measure X with clock(), CPU
           time of all threads). Data loading runs in Darknet's background threads, as in real use.
           Binary: --darknet PATH, else /tmp/darknet/darknet if it exists (pjreddie's darknet,
           `make OPENMP=1`, GPU=0); otherwise Darknet is skipped with a line saying why.

Usage (from the repository root; the venv needs torch and opencv-python-headless, numpy):

    /tmp/fxvenv/bin/python Benchmarks/peers/bench_train_peers.py --ocelli .build/release/ocelli
    ... --rounds 3 --steps 5 --darknet /tmp/darknet/darknet --darknet-steps 3
    ... --engines ocelli,torch --steps 2      # smoke test
    ... --json                                # one JSON object on stdout, progress on stderr
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CFG = os.path.join(ROOT, "Data", "cfg", "yolov3-tiny.cfg")
DEFAULT_DARKNET = "/tmp/darknet/darknet"
YOLOV3_TINY_VALUES = 8_858_734  # values in yolov3-tiny.weights (80 classes): params + BN running stats
ENGINES = ("ocelli", "torch", "darknet")
LABELS = {"ocelli": "Ocelli", "torch": "PyTorch", "darknet": "Darknet"}


# ----------------------------------------------------------------------------- the cfg (stdlib only)

def parse_cfg(path):
    """Darknet .cfg -> [(section, {key: value})], comments and blank lines dropped."""
    sections = []
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("["):
                sections.append((line.strip("[]").strip(), {}))
            elif "=" in line:
                k, v = line.split("=", 1)
                sections[-1][1][k.strip()] = v.strip()
    return sections


def darknet_train_cfg(path, batch, size, max_batches):
    """The cfg's text with [net] set for training at this batch and size, and random=0 in the heads."""
    out, section = [], None
    net_keys = {"batch": batch, "subdivisions": 1, "width": size, "height": size, "max_batches": max_batches}
    with open(path) as f:
        for raw in f:
            line = raw.split("#", 1)[0].strip()
            if line.startswith("["):
                section = line.strip("[]").strip()
                out.append(line)
                if section == "net":
                    out += [f"{k}={v}" for k, v in net_keys.items()]
                continue
            key = line.split("=", 1)[0].strip() if "=" in line else None
            if section == "net" and key in net_keys:
                continue
            if section in ("yolo", "region") and key == "random":
                out.append("random=0")
                continue
            out.append(raw.rstrip("\n"))
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- child: PyTorch

def build_torch_net(sections):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class DarknetMaxPool(nn.Module):
        """Darknet's maxpool: output (h + size - 1 - size) / stride + 1, windows that run past the
        right/bottom edge take the max of what is inside (= -inf padding there)."""
        def __init__(self, size, stride):
            super().__init__()
            self.size, self.stride = size, stride

        def forward(self, x):
            pad = self.size - 1
            left, right = pad // 2, pad - pad // 2
            h, w = x.shape[-2:]
            if left == 0 and (h + pad - self.size) // self.stride == (h - self.size) // self.stride \
                    and (w + pad - self.size) // self.stride == (w - self.size) // self.stride:
                return F.max_pool2d(x, self.size, self.stride)  # the padding is never read (2/2 on even sizes)
            return F.max_pool2d(F.pad(x, (left, right, left, right), value=float("-inf")), self.size, self.stride)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            net = sections[0][1]
            c = int(net.get("channels", 3))
            self.layers = nn.ModuleList()
            self.kinds, self.routes, self.heads, channels = [], {}, [], []
            for i, (kind, o) in enumerate(sections[1:]):
                if kind == "convolutional":
                    f, k, s = int(o["filters"]), int(o["size"]), int(o.get("stride", 1))
                    p = k // 2 if int(o.get("pad", 0)) else int(o.get("padding", 0))
                    bn = int(o.get("batch_normalize", 0))
                    mods = [nn.Conv2d(c, f, k, s, p, bias=not bn)]
                    if bn:
                        mods.append(nn.BatchNorm2d(f))
                    act = o.get("activation", "logistic")
                    if act == "leaky":
                        mods.append(nn.LeakyReLU(0.1))
                    elif act != "linear":
                        raise ValueError(f"layer {i}: activation {act} not supported")
                    m, c = nn.Sequential(*mods), f
                elif kind == "maxpool":
                    m = DarknetMaxPool(int(o["size"]), int(o.get("stride", 1)))
                elif kind == "upsample":
                    m = nn.Upsample(scale_factor=int(o.get("stride", 2)), mode="nearest")
                elif kind == "route":
                    idx = [int(v) for v in o["layers"].split(",")]
                    idx = [j if j >= 0 else i + j for j in idx]
                    self.routes[i] = idx
                    m, c = nn.Identity(), sum(channels[j] for j in idx)
                elif kind == "yolo":
                    mask = o.get("mask")
                    n = len(mask.split(",")) if mask else int(o.get("num", 1))
                    if c != n * (int(o["classes"]) + 5):
                        raise ValueError(f"layer {i}: yolo head on {c} channels, expected {n} x (classes + 5)")
                    self.heads.append(i)
                    m = nn.Identity()
                else:
                    raise ValueError(f"layer {i}: [{kind}] not supported")
                self.layers.append(m)
                self.kinds.append(kind)
                channels.append(c)

        def forward(self, x):
            outs, heads = [], []
            for i, (kind, m) in enumerate(zip(self.kinds, self.layers)):
                if kind == "route":
                    src = [outs[j] for j in self.routes[i]]
                    x = src[0] if len(src) == 1 else torch.cat(src, 1)
                else:
                    x = m(x)
                if kind == "yolo":
                    heads.append(x)
                outs.append(x)
            return heads

    return Net()


def torch_child(a):
    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    sections = parse_cfg(a.cfg)
    net_opts = sections[0][1]
    model = build_torch_net(sections)
    trainable = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    fmt = torch.contiguous_format if a.no_channels_last else torch.channels_last
    model = model.to(memory_format=fmt).train()
    x = torch.rand(a.batch, int(net_opts.get("channels", 3)), a.size, a.size).contiguous(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=float(net_opts.get("learning_rate", 0.001)),
                          momentum=float(net_opts.get("momentum", 0.9)), weight_decay=float(net_opts.get("decay", 0.0005)))
    shapes = []

    def step():
        opt.zero_grad(set_to_none=True)
        outs = model(x)
        shapes[:] = [list(o.shape) for o in outs]
        loss = torch.stack([(0.01 * o).square().mean() for o in outs]).mean()
        loss.backward()
        opt.step()
        return loss.item()

    step()  # warm-up (oneDNN primitive creation, allocator)
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"images_per_s": a.batch / med, "step_s": med, "steps_s": times, "head_shapes_nchw": shapes,
                      "params_trainable": trainable, "bn_running_stats": stats, "params_total": trainable + stats,
                      "channels_last": not a.no_channels_last, "threads": torch.get_num_threads(),
                      "version": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available()}), flush=True)


# ----------------------------------------------------------------------------- child: Darknet's data set

def darknet_data_child(a):
    """32 random JPEGs (noise + 1-4 filled boxes) in DIR/images, YOLO labels in DIR/labels, DIR/train.txt."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(1)
    os.makedirs(os.path.join(a.data_dir, "images"), exist_ok=True)
    os.makedirs(os.path.join(a.data_dir, "labels"), exist_ok=True)
    paths = []
    for n in range(32):
        im = rng.integers(0, 256, (a.size, a.size, 3), dtype=np.uint8)
        lines = []
        for _ in range(int(rng.integers(1, 5))):
            w, h = rng.uniform(0.1, 0.5, 2)
            cx, cy = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
            x0, y0, x1, y1 = (int((cx - w / 2) * a.size), int((cy - h / 2) * a.size),
                              int((cx + w / 2) * a.size), int((cy + h / 2) * a.size))
            cv2.rectangle(im, (x0, y0), (x1, y1), tuple(int(v) for v in rng.integers(0, 256, 3)), -1)
            lines.append(f"{int(rng.integers(0, 80))} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
        path = os.path.join(a.data_dir, "images", f"{n:03d}.jpg")
        cv2.imwrite(path, im)
        with open(os.path.join(a.data_dir, "labels", f"{n:03d}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        paths.append(path)
    with open(os.path.join(a.data_dir, "train.txt"), "w") as f:
        f.write("\n".join(paths) + "\n")


# ----------------------------------------------------------------------------- parent side

def run_child(cmd, env=None, cwd=None, timeout=None):
    """Runs cmd with stdout+stderr captured line by line with arrival times.
    Returns (returncode or None on timeout, [(monotonic time, line)], peak RSS of the child in MB)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    lines = []

    def reader():
        for raw in p.stdout:
            lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.monotonic() > deadline:
            p.kill()  # the child we started, by its pid
            timed_out = True
            _, status, usage = os.wait4(p.pid, 0)
            break
        time.sleep(0.25)
    p.returncode = os.waitstatus_to_exitcode(status)
    t.join(5)
    p.stdout.close()
    return (None if timed_out else p.returncode), lines, usage.ru_maxrss / 1024


def last_json(lines):
    for _, line in reversed(lines):
        if line.strip().startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def tail(lines, n=15):
    return "\n".join("    " + l for _, l in lines[-n:])


def run_ocelli(a):
    binary = a.ocelli if os.path.isabs(a.ocelli) else os.path.join(ROOT, a.ocelli)
    if not os.path.exists(binary):
        return {"skipped": f"no Ocelli binary at {binary} (build with `swift build -c release` or give --ocelli PATH)"}
    cmd = [binary, "bench", "detect", "--cfg", a.cfg, "--size", str(a.size), "--train-batch", str(a.batch),
           "--train-steps", str(a.steps), "--threads", str(a.threads), "--images", "1", "--repeats", "1", "--json"]
    rc, lines, rss = run_child(cmd, timeout=a.timeout)
    if rc != 0:
        return {"error": f"exit {rc}", "output": tail(lines)}
    r = last_json(lines)
    return {"images_per_s": r["train_images_per_s"], "step_s": a.batch / r["train_images_per_s"], "peak_rss_mb": rss}


def run_torch(a):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "torch", "--cfg", a.cfg, "--size", str(a.size),
           "--batch", str(a.batch), "--steps", str(a.steps), "--threads", str(a.threads)]
    if a.no_channels_last:
        cmd.append("--no-channels-last")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    rc, lines, rss = run_child(cmd, env=env, timeout=a.timeout)
    if rc != 0:
        text = "\n".join(l for _, l in lines)
        if "No module named 'torch'" in text:
            return {"skipped": f"torch does not import in {sys.executable}"}
        return {"error": f"exit {rc}", "output": tail(lines)}
    r = last_json(lines)
    r["peak_rss_mb"] = rss
    # Checks: the heads' shapes and, for yolov3-tiny, the number of values of its .weights file.
    sections = parse_cfg(a.cfg)
    expect = []
    for kind, o in sections[1:]:
        if kind == "yolo":
            expect.append(len(o["mask"].split(",")) * (int(o["classes"]) + 5))
    if [s[1] for s in r["head_shapes_nchw"]] != expect or any(s[0] != a.batch for s in r["head_shapes_nchw"]):
        return {"error": f"head shapes {r['head_shapes_nchw']} do not match the cfg ({expect} channels)"}
    if os.path.basename(a.cfg) == "yolov3-tiny.cfg" and a.size == 416 and \
            ([s[1:] for s in r["head_shapes_nchw"]] != [[255, 13, 13], [255, 26, 26]] or r["params_total"] != YOLOV3_TINY_VALUES):
        return {"error": f"yolov3-tiny mismatch: heads {r['head_shapes_nchw']}, {r['params_total']:,} parameters "
                         f"+ BN statistics (expected {YOLOV3_TINY_VALUES:,})"}
    return r


ITERATION = re.compile(r"^\s*(\d+):\s*\S+,\s*\S+ avg(?: loss)?,\s*\S+ rate,\s*([0-9.]+) seconds,\s*(\d+) images")


def darknet_binary(a):
    path = a.darknet or (DEFAULT_DARKNET if os.path.exists(DEFAULT_DARKNET) else None)
    if path is None:
        return None, f"no --darknet given and no binary at {DEFAULT_DARKNET}"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return None, f"{path} is not an executable file"
    return os.path.abspath(path), None


def prepare_darknet(a, workdir):
    """Writes the data set, .data and cfg once per run; returns (data path, cfg path)."""
    names = os.path.join(ROOT, "Data", "cfg", "coco.names")
    if not os.path.exists(names):
        found = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(ROOT, "Data")) for f in fs if f == "coco.names"]
        if not found:
            raise FileNotFoundError("coco.names not found under Data/")
        names = found[0]
    rc, lines, _ = run_child([sys.executable, os.path.abspath(__file__), "--child", "darknet-data",
                              "--data-dir", workdir, "--size", str(a.size)])
    if rc != 0:
        raise RuntimeError("writing Darknet's data set failed:\n" + tail(lines))
    data = os.path.join(workdir, "train.data")
    with open(data, "w") as f:
        f.write(f"classes=80\ntrain={workdir}/train.txt\nvalid={workdir}/train.txt\nnames={names}\nbackup={workdir}/backup\n")
    os.makedirs(os.path.join(workdir, "backup"), exist_ok=True)
    cfg = os.path.join(workdir, "train.cfg")
    with open(cfg, "w") as f:
        f.write(darknet_train_cfg(a.cfg, a.batch, a.size, a.darknet_steps + 2))
    return data, cfg


def run_darknet(a, binary, data, cfg, workdir):
    cmd = [binary, "detector", "train", data, cfg]
    if shutil.which("stdbuf"):
        cmd = ["stdbuf", "-oL", "-eL"] + cmd  # line-buffered, so lines arrive (and are timed) as printed
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    timeout = a.darknet_timeout or 180 + 120 * (a.darknet_steps + 2)
    rc, lines, rss = run_child(cmd, env=env, cwd=workdir, timeout=timeout)
    its = [(t, int(m.group(1)), float(m.group(2))) for t, l in lines for m in [ITERATION.match(l)] if m]
    if rc != 0 and len(its) < 2:
        why = f"timed out after {timeout} s" if rc is None else f"exit {rc}"
        return {"error": f"{why}, {len(its)} iterations", "output": tail(lines)}
    if not its:
        return {"error": "no iteration lines in Darknet's output", "output": tail(lines)}
    secs = [s for _, _, s in its]
    timed = secs[1:] if len(secs) > 1 else secs
    walls = [b[0] - a_[0] for a_, b in zip(its, its[1:])]
    med = statistics.median(timed)
    r = {"images_per_s": a.batch / med, "step_s": med, "steps_s": secs, "wall_between_lines_s": walls,
         "iterations": len(its), "peak_rss_mb": rss}
    if rc is None:
        r["note"] = f"timed out after {timeout} s; used the {len(its)} iterations printed"
    if walls and abs(statistics.median(walls) / med - 1) > 0.25:
        r["warning"] = (f"Darknet's seconds ({med:.2f}) and the wall time between its lines "
                        f"({statistics.median(walls):.2f}) differ by > 25%")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ocelli", default=".build/release/ocelli", help="the ocelli binary (relative to the repository root)")
    ap.add_argument("--darknet", help=f"Darknet's darknet binary (default: {DEFAULT_DARKNET} if it exists)")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of ocelli,torch,darknet")
    ap.add_argument("--cfg", default=DEFAULT_CFG)
    ap.add_argument("--size", type=int, default=416)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5, help="timed steps after 1 warm-up step (Ocelli, PyTorch)")
    ap.add_argument("--darknet-steps", type=int, default=3, help="Darknet runs N+2 iterations and times all but the first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the table shows medians")
    ap.add_argument("--no-channels-last", action="store_true", help="PyTorch in NCHW (default: channels_last)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per Ocelli/PyTorch child")
    ap.add_argument("--darknet-timeout", type=float, help="seconds per Darknet child (default 180 + 120 per iteration)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--child", choices=("torch", "darknet-data"), help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.cfg = os.path.abspath(a.cfg)
    if a.child == "torch":
        return torch_child(a)
    if a.child == "darknet-data":
        return darknet_data_child(a)

    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ENGINES]
    if bad:
        ap.error(f"unknown engines {bad}; choose from {','.join(ENGINES)}")
    skipped, runs = {}, {e: [] for e in engines}
    workdir = dn = None
    if "darknet" in engines:
        binary, why = darknet_binary(a)
        if binary is None:
            skipped["darknet"] = why
        else:
            # Darknet finds a label file by replacing the first "images" / "JPEGImages" / "raw" in the
            # image's path with "labels": the folder above images/ must not contain them.
            while True:
                workdir = tempfile.mkdtemp(prefix="ocelli-darknet-train-")
                if not re.search("images|JPEGImages|raw", workdir):
                    break
                os.rmdir(workdir)
            dn = (binary,) + prepare_darknet(a, workdir)
    try:
        for rnd in range(a.rounds):
            for e in engines:
                if e in skipped:
                    continue
                r = (run_ocelli(a) if e == "ocelli" else run_torch(a) if e == "torch" else run_darknet(a, dn[0], dn[1], dn[2], workdir))
                if "skipped" in r:
                    skipped[e] = r["skipped"]
                    print(f"{LABELS[e]} skipped: {r['skipped']}", file=sys.stderr)
                    continue
                if "error" in r:
                    print(f"round {rnd + 1}: {LABELS[e]} failed: {r['error']}\n{r.get('output', '')}", file=sys.stderr)
                    runs[e].append(r)
                    continue
                runs[e].append(r)
                extra = "".join(f"; {r[k]}" for k in ("note", "warning") if k in r)
                print(f"round {rnd + 1}: {LABELS[e]} {r['images_per_s']:.2f} images/s ({r['step_s']:.3f} s/step), "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB{extra}", file=sys.stderr, flush=True)
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    rows = []
    for e in engines:
        ok = [r for r in runs[e] if "error" not in r]
        if e in skipped or not ok:
            continue
        rows.append({"engine": e, "images_per_s": statistics.median(r["images_per_s"] for r in ok),
                     "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in ok), "rounds_ok": len(ok),
                     "runs": [{k: v for k, v in r.items() if k != "output"} for r in runs[e]]})
    oc = next((r for r in rows if r["engine"] == "ocelli"), None)
    for r in rows:
        r["ocelli_ratio"] = oc["images_per_s"] / r["images_per_s"] if oc else None
    failed = {e: runs[e][-1]["error"] for e in engines if e not in skipped and runs[e] and all("error" in r for r in runs[e])}
    tr = next((r["runs"][0] for r in rows if r["engine"] == "torch"), {})
    if a.json:
        print(json.dumps({"cfg": os.path.relpath(a.cfg, ROOT) if a.cfg.startswith(ROOT) else a.cfg, "size": a.size,
                          "batch": a.batch, "threads": a.threads, "steps": a.steps, "darknet_steps": a.darknet_steps,
                          "rounds": a.rounds, "torch_version": tr.get("version"), "channels_last": not a.no_channels_last,
                          "results": rows, "skipped": skipped, "failed": failed}))
        return 0
    name = os.path.splitext(os.path.basename(a.cfg))[0]
    layout = "NCHW" if a.no_channels_last else "channels_last"
    print(f"{name} {a.size}x{a.size}, batch {a.batch}, {a.threads} threads, median of {a.rounds} interleaved round(s); "
          f"each round: median of {a.steps} steps after 1 warm-up (Darknet: of iterations 2..{a.darknet_steps + 2})."
          + (f" PyTorch {tr['version']}, {layout}." if tr else ""))
    print()
    print("| engine | images/s | peak RSS MB | Ocelli ÷ engine |")
    print("|---|---:|---:|---:|")
    for r in rows:
        ratio = f"{r['ocelli_ratio']:.2f}" if r["ocelli_ratio"] is not None else "–"
        print(f"| {LABELS[r['engine']]} | {r['images_per_s']:.2f} | {r['peak_rss_mb']:.0f} | {ratio} |")
    print()
    print("A step: Ocelli forward (training mode) + backward of a mean-square loss on the heads; PyTorch the same + SGD "
          "update; Darknet forward + YOLO loss + backward + SGD update. Peak RSS: the child's ru_maxrss.")
    for e, why in skipped.items():
        print(f"{LABELS[e]} skipped: {why}.")
    for e, why in failed.items():
        print(f"{LABELS[e]} failed: {why}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
