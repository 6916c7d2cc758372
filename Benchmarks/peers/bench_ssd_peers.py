#!/usr/bin/env python3
"""Training throughput of SSD300 (VGG16, 300x300, batch 8) in Ocelli and PyTorch, side by side.

Each engine runs in its own child process, one after the other, --rounds times interleaved
(Ocelli, PyTorch, Ocelli, ...); the table shows the median over rounds of each engine's images/s
and peak RSS, and Ocelli images/s ÷ PyTorch's (> 1: Ocelli is faster). Peak RSS is the child's
ru_maxrss from os.wait4 (this parent imports only the standard library).

A step is the whole training step on random images with 1..4 random boxes each, the same work
on both sides:

  Ocelli   `OCELLI bench ssd --arch ssd300 --batch B --steps N --threads T --json`
           -> train_images_per_s: forward in training mode, the MultiBox loss (matching of the
           8,732 default boxes, 3:1 hard negatives, smooth L1), backward, Adam's update; one
           warm-up step, then batch ÷ the median of N steps.
  PyTorch  SSD300 written here in ssd.pytorch's layout (VGG16 with pool3 in ceil mode, pool5 3x3
           stride 1, conv4_3 L2Norm with a learned scale, fc6 3x3 dilated 6, fc7 1x1, the extras
           conv8_2 .. conv11_2 with ReLU, 3x3 loc/conf heads on six maps, 4-6-6-6-4-4 boxes):
           26,285,486 parameters for 20 classes, checked. ssd.pytorch's PriorBox (VOC sizes,
           clipped) and MultiBoxLoss (per-image jaccard matching with each truth's best prior
           forced, threshold 0.5, variances 0.1/0.2, hard negatives 3:1 by confidence loss,
           smooth-L1 + cross entropy summed / N positives), Adam. torch.set_num_threads(T),
           channels_last unless --no-channels-last, model.train(); one warm-up step, then batch
           ÷ the median of N steps.

Usage (from the repository root; the venv needs torch):

    /tmp/fxvenv/bin/python Benchmarks/peers/bench_ssd_peers.py --ocelli .build/release/ocelli --rounds 3
    ... --steps 2 --rounds 1          # smoke test
    ... --json                        # one JSON object on stdout, progress on stderr
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train_peers import last_json, run_child, tail  # noqa: E402  (stdlib-only helpers)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SSD300_VOC_PARAMETERS = 26_285_486  # ssd.pytorch, 21 classes with the background
LABELS = {"ocelli": "Ocelli", "torch": "PyTorch"}


# ----------------------------------------------------------------------------- child: PyTorch

def build_ssd300(classes):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class L2Norm(nn.Module):
        def __init__(self, channels, scale=20.0):
            super().__init__()
            self.weight = nn.Parameter(torch.full((channels,), scale))

        def forward(self, x):
            return x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10) * self.weight.view(1, -1, 1, 1)

    class SSD300(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c = [], 3
            for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512]:
                if v in ("M", "C"):
                    layers.append(nn.MaxPool2d(2, 2, ceil_mode=v == "C"))
                else:
                    layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                    c = v
            layers += [nn.MaxPool2d(3, 1, 1), nn.Conv2d(512, 1024, 3, padding=6, dilation=6), nn.ReLU(inplace=True),
                       nn.Conv2d(1024, 1024, 1), nn.ReLU(inplace=True)]
            self.vgg = nn.ModuleList(layers)
            self.conv4_3 = 22  # index after conv4_3's ReLU
            self.l2norm = L2Norm(512)
            self.extras = nn.ModuleList([
                nn.Conv2d(1024, 256, 1), nn.Conv2d(256, 512, 3, stride=2, padding=1),
                nn.Conv2d(512, 128, 1), nn.Conv2d(128, 256, 3, stride=2, padding=1),
                nn.Conv2d(256, 128, 1), nn.Conv2d(128, 256, 3),
                nn.Conv2d(256, 128, 1), nn.Conv2d(128, 256, 3)])
            sources, boxes = [512, 1024, 512, 256, 256, 256], [4, 6, 6, 6, 4, 4]
            self.loc = nn.ModuleList(nn.Conv2d(s, b * 4, 3, padding=1) for s, b in zip(sources, boxes))
            self.conf = nn.ModuleList(nn.Conv2d(s, b * (classes + 1), 3, padding=1) for s, b in zip(sources, boxes))
            self.classes = classes

        def forward(self, x):
            sources = []
            for i, m in enumerate(self.vgg):
                x = m(x)
                if i == self.conv4_3:
                    sources.append(self.l2norm(x))
            sources.append(x)
            for i, m in enumerate(self.extras):
                x = F.relu(m(x), inplace=True)
                if i % 2 == 1:
                    sources.append(x)
            n = x.shape[0]
            loc = torch.cat([l(s).permute(0, 2, 3, 1).reshape(n, -1, 4) for s, l in zip(sources, self.loc)], 1)
            conf = torch.cat([c(s).permute(0, 2, 3, 1).reshape(n, -1, self.classes + 1) for s, c in zip(sources, self.conf)], 1)
            return loc, conf

    return SSD300()


def ssd300_priors():
    """ssd.pytorch's PriorBox for VOC at 300: [8732, 4] centre form, clipped to [0, 1]."""
    import itertools
    import math
    import torch
    maps, steps = [38, 19, 10, 5, 3, 1], [8, 16, 32, 64, 100, 300]
    mins, maxs = [30, 60, 111, 162, 213, 264], [60, 111, 162, 213, 264, 315]
    ratios = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
    out = []
    for k, f in enumerate(maps):
        for i, j in itertools.product(range(f), repeat=2):
            fk = 300 / steps[k]
            cx, cy = (j + 0.5) / fk, (i + 0.5) / fk
            s = mins[k] / 300
            out += [cx, cy, s, s]
            s2 = math.sqrt(s * (maxs[k] / 300))
            out += [cx, cy, s2, s2]
            for r in ratios[k]:
                out += [cx, cy, s * math.sqrt(r), s / math.sqrt(r), cx, cy, s / math.sqrt(r), s * math.sqrt(r)]
    return torch.tensor(out).view(-1, 4).clamp_(0, 1)


def multibox_loss(loc_p, conf_p, truths, labels, priors, threshold=0.5, negpos=3, variances=(0.1, 0.2)):
    """ssd.pytorch's MultiBoxLoss: (smooth-L1 over positives + CE over positives and hard negatives) / N."""
    import torch
    import torch.nn.functional as F
    n, d = loc_p.shape[:2]
    pf = torch.cat([priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2], 1)
    loc_t = torch.zeros(n, d, 4)
    conf_t = torch.zeros(n, d, dtype=torch.long)
    for b in range(n):
        t = truths[b]
        lt = torch.max(t[:, None, :2], pf[None, :, :2])
        rb = torch.min(t[:, None, 2:], pf[None, :, 2:])
        inter = (rb - lt).clamp(min=0).prod(2)
        area_t = ((t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1]))[:, None]
        area_p = ((pf[:, 2] - pf[:, 0]) * (pf[:, 3] - pf[:, 1]))[None, :]
        iou = inter / (area_t + area_p - inter)
        best_prior = iou.argmax(1)
        best_truth_overlap, best_truth = iou.max(0)
        best_truth_overlap.index_fill_(0, best_prior, 2)
        for j in range(best_prior.shape[0]):
            best_truth[best_prior[j]] = j
        m = t[best_truth]
        conf = labels[b][best_truth] + 1
        conf[best_truth_overlap < threshold] = 0
        g_cxcy = ((m[:, :2] + m[:, 2:]) / 2 - priors[:, :2]) / (variances[0] * priors[:, 2:])
        g_wh = torch.log((m[:, 2:] - m[:, :2]) / priors[:, 2:]) / variances[1]
        loc_t[b] = torch.cat([g_cxcy, g_wh], 1)
        conf_t[b] = conf
    pos = conf_t > 0
    loss_l = F.smooth_l1_loss(loc_p[pos], loc_t[pos], reduction="sum")
    with torch.no_grad():
        flat = conf_p.reshape(-1, conf_p.shape[-1])
        mining = (torch.logsumexp(flat, 1) - flat.gather(1, conf_t.view(-1, 1)).squeeze(1)).view(n, d)
        mining[pos] = 0
        _, idx = mining.sort(1, descending=True)
        _, rank = idx.sort(1)
        num_neg = torch.clamp(negpos * pos.long().sum(1, keepdim=True), max=d - 1)
        neg = rank < num_neg
    sel = pos | neg
    loss_c = F.cross_entropy(conf_p[sel], conf_t[sel], reduction="sum")
    npos = pos.sum().clamp(min=1).float()
    return (loss_l + loss_c) / npos


def torch_child(a):
    import random
    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = build_ssd300(a.classes)
    params = sum(p.numel() for p in model.parameters())
    fmt = torch.contiguous_format if a.no_channels_last else torch.channels_last
    model = model.to(memory_format=fmt).train()
    priors = ssd300_priors()
    x = torch.rand(a.batch, 3, 300, 300).contiguous(memory_format=fmt)
    rng = random.Random(7)
    truths, labels = [], []
    for _ in range(a.batch):
        boxes, cls = [], []
        for _ in range(rng.randint(1, a.objects)):
            w, h = rng.uniform(0.1, 0.6), rng.uniform(0.1, 0.6)
            x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
            boxes.append([x0, y0, x0 + w, y0 + h])
            cls.append(rng.randrange(a.classes))
        truths.append(torch.tensor(boxes))
        labels.append(torch.tensor(cls))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    last = []

    def step():
        opt.zero_grad(set_to_none=True)
        loc, conf = model(x)
        loss = multibox_loss(loc, conf, truths, labels, priors)
        loss.backward()
        opt.step()
        last[:] = [loss.item(), list(loc.shape), list(conf.shape)]

    step()  # warm-up (oneDNN primitive creation, allocator)
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"images_per_s": a.batch / med, "step_s": med, "steps_s": times, "loss": last[0],
                      "loc_shape": last[1], "conf_shape": last[2], "parameters": params, "priors": priors.shape[0],
                      "channels_last": not a.no_channels_last, "threads": torch.get_num_threads(),
                      "version": torch.__version__}), flush=True)


# ----------------------------------------------------------------------------- parent side

def run_ocelli(a):
    binary = a.ocelli if os.path.isabs(a.ocelli) else os.path.join(ROOT, a.ocelli)
    if not os.path.exists(binary):
        return {"skipped": f"no Ocelli binary at {binary} (build with `swift build -c release` or give --ocelli PATH)"}
    cmd = [binary, "bench", "ssd", "--arch", "ssd300", "--classes", str(a.classes), "--batch", str(a.batch),
           "--steps", str(a.steps), "--objects", str(a.objects), "--threads", str(a.threads), "--json"]
    rc, lines, rss = run_child(cmd, timeout=a.timeout)
    if rc != 0:
        return {"error": f"exit {rc}", "output": tail(lines)}
    r = last_json(lines)
    if r["default_boxes"] != 8732:
        return {"error": f"Ocelli's ssd300 has {r['default_boxes']} default boxes, expected 8732"}
    if a.classes == 20 and r["parameters"] != SSD300_VOC_PARAMETERS:
        return {"error": f"Ocelli's ssd300 has {r['parameters']:,} parameters, expected {SSD300_VOC_PARAMETERS:,}"}
    return {"images_per_s": r["train_images_per_s"], "step_s": r["step_median_ms"] / 1000, "loss": r["loss"],
            "peak_rss_mb": rss}


def run_torch(a):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "torch", "--classes", str(a.classes),
           "--batch", str(a.batch), "--steps", str(a.steps), "--objects", str(a.objects), "--threads", str(a.threads)]
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
    if r["priors"] != 8732 or r["loc_shape"] != [a.batch, 8732, 4] or r["conf_shape"] != [a.batch, 8732, a.classes + 1]:
        return {"error": f"PyTorch's SSD300: {r['priors']} priors, outputs {r['loc_shape']} {r['conf_shape']}"}
    if a.classes == 20 and r["parameters"] != SSD300_VOC_PARAMETERS:
        return {"error": f"PyTorch's SSD300 has {r['parameters']:,} parameters, expected {SSD300_VOC_PARAMETERS:,}"}
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ocelli", default=".build/release/ocelli", help="the ocelli binary (relative to the repository root)")
    ap.add_argument("--engines", default="ocelli,torch", help="comma-separated subset of ocelli,torch")
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--objects", type=int, default=4, help="each image gets 1..N random boxes")
    ap.add_argument("--steps", type=int, default=5, help="timed steps after 1 warm-up step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the table shows medians")
    ap.add_argument("--no-channels-last", action="store_true", help="PyTorch in NCHW (default: channels_last)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per child")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--child", choices=("torch",), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child == "torch":
        return torch_child(a)

    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in LABELS]
    if bad:
        ap.error(f"unknown engines {bad}; choose from ocelli,torch")
    skipped, runs = {}, {e: [] for e in engines}
    for rnd in range(a.rounds):
        for e in engines:
            if e in skipped:
                continue
            r = run_ocelli(a) if e == "ocelli" else run_torch(a)
            if "skipped" in r:
                skipped[e] = r["skipped"]
                print(f"{LABELS[e]} skipped: {r['skipped']}", file=sys.stderr)
                continue
            runs[e].append(r)
            if "error" in r:
                print(f"round {rnd + 1}: {LABELS[e]} failed: {r['error']}\n{r.get('output', '')}", file=sys.stderr)
                continue
            print(f"round {rnd + 1}: {LABELS[e]} {r['images_per_s']:.2f} images/s ({r['step_s']:.3f} s/step), "
                  f"loss {r['loss']:.3f}, peak RSS {r['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)

    rows = []
    for e in engines:
        ok = [r for r in runs[e] if "error" not in r]
        if e in skipped or not ok:
            continue
        rows.append({"engine": e, "images_per_s": statistics.median(r["images_per_s"] for r in ok),
                     "all_images_per_s": [r["images_per_s"] for r in ok],
                     "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in ok), "rounds_ok": len(ok)})
    oc = next((r for r in rows if r["engine"] == "ocelli"), None)
    for r in rows:
        r["ocelli_ratio"] = oc["images_per_s"] / r["images_per_s"] if oc else None
    failed = {e: runs[e][-1]["error"] for e in engines if e not in skipped and runs[e] and all("error" in r for r in runs[e])}
    tv = next((r.get("version") for r in runs.get("torch", []) if "version" in r), None)
    if a.json:
        print(json.dumps({"arch": "ssd300", "classes": a.classes, "batch": a.batch, "threads": a.threads, "steps": a.steps,
                          "rounds": a.rounds, "torch_version": tv, "channels_last": not a.no_channels_last,
                          "results": rows, "skipped": skipped, "failed": failed}))
        return 1 if failed else 0
    layout = "NCHW" if a.no_channels_last else "channels_last"
    print(f"SSD300 ({a.classes} classes), batch {a.batch}, {a.threads} threads, median of {a.rounds} interleaved round(s); "
          f"each round: median of {a.steps} steps after 1 warm-up." + (f" PyTorch {tv}, {layout}." if tv else ""))
    print()
    print("| engine | images/s (rounds) | peak RSS MB | Ocelli ÷ engine |")
    print("|---|---:|---:|---:|")
    for r in rows:
        ratio = f"{r['ocelli_ratio']:.2f}" if r["ocelli_ratio"] is not None else "–"
        each = ", ".join(f"{v:.2f}" for v in r["all_images_per_s"])
        print(f"| {LABELS[r['engine']]} | {r['images_per_s']:.2f} ({each}) | {r['peak_rss_mb']:.0f} | {ratio} |")
    for e, why in skipped.items():
        print(f"{LABELS[e]} skipped: {why}.")
    for e, why in failed.items():
        print(f"{LABELS[e]} failed: {why}.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
