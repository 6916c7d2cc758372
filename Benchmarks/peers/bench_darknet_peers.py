#!/usr/bin/env python3
"""Darknet networks in Ocelli and in OpenCV's DNN module, side by side on this machine.

For each network: batch-1 latency of the forward pass on a prepared 416x416 input (median of
--repeats runs after a warm-up) and throughput over --images forward passes (batch 1). OpenCV runs
in this process with cv2.setNumThreads(--threads); Ocelli runs `ocelli bench detect --json` with
--threads. Rounds interleave the two and keep each measurement's best, because this 2-core VM's
timings swing with load.

Networks: yolov3-tiny with its real weights (../shared/models/yolov3-tiny), yolov2-voc with the
synthetic weights of Scripts/make_darknet_fixtures.py (timings do not depend on the values).

Usage: /path/to/venv/bin/python Benchmarks/peers/bench_darknet_peers.py \\
           --ocelli .build/release/ocelli [--rounds 3] [--threads 2] [--json]
Needs numpy and "opencv-python-headless<5".
"""
import argparse, json, os, statistics, subprocess, sys, time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared")
sys.path.insert(0, os.path.join(ROOT, "Scripts"))
from make_darknet_fixtures import synthetic_weights  # noqa: E402


def networks():
    v2cfg = os.path.join(SHARED, "models", "darknet-cfg", "yolov2-voc.cfg")
    v2weights = "/tmp/ocelli-bench-yolov2-voc.weights"
    if not os.path.exists(v2weights):
        synthetic_weights(v2cfg, v2weights)
    return [
        ("yolov3-tiny", os.path.join(SHARED, "models", "yolov3-tiny", "yolov3-tiny.cfg"),
         os.path.join(SHARED, "models", "yolov3-tiny", "yolov3-tiny.weights")),
        ("yolov2-voc", v2cfg, v2weights),
    ]


def opencv(cfg, weights, image, repeats, images):
    net = cv2.dnn.readNetFromDarknet(cfg, weights)
    blob = cv2.dnn.blobFromImage(cv2.imread(image), 1 / 255.0, (416, 416), swapRB=True, crop=False)
    names = net.getUnconnectedOutLayersNames()
    for _ in range(3):
        net.setInput(blob); net.forward(names)
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); net.setInput(blob); net.forward(names); times.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    for _ in range(images):
        net.setInput(blob); net.forward(names)
    return {"latency_ms": statistics.median(times), "images_per_s": images / (time.perf_counter() - t)}


def ocelli(binary, cfg, weights, image, repeats, images, threads):
    out = subprocess.run([binary, "bench", "detect", "--cfg", cfg, "--weights", weights, "--image", image,
                          "--repeats", str(repeats), "--images", str(images), "--threads", str(threads), "--json"],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"latency_ms": r["latency_ms"], "images_per_s": r["throughput_images_per_s"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ocelli", required=True, help="path to the ocelli binary (release build)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cv2.setNumThreads(a.threads)
    image = os.path.join(SHARED, "data", "images", "dog.jpg")
    best = {}
    for r in range(a.rounds):
        for name, cfg, weights in networks():
            reps, imgs = (a.repeats, a.images) if name == "yolov3-tiny" else (max(5, a.repeats // 4), max(10, a.images // 10))
            for peer, run in (("opencv", lambda: opencv(cfg, weights, image, reps, imgs)),
                              ("ocelli", lambda: ocelli(a.ocelli, cfg, weights, image, reps, imgs, a.threads))):
                m = run()
                b = best.setdefault((name, peer), {"latency_ms": float("inf"), "images_per_s": 0.0, "images": imgs})
                b["latency_ms"] = min(b["latency_ms"], m["latency_ms"])
                b["images_per_s"] = max(b["images_per_s"], m["images_per_s"])
                print(f"round {r + 1}: {name} {peer} {m['latency_ms']:.1f} ms, {m['images_per_s']:.1f} images/s", file=sys.stderr)
    rows = []
    for name, _, _ in networks():
        o, c = best[(name, "ocelli")], best[(name, "opencv")]
        rows.append({"network": name, "ocelli_ms": o["latency_ms"], "opencv_ms": c["latency_ms"],
                     "latency_ratio": o["latency_ms"] / c["latency_ms"],
                     "ocelli_images_per_s": o["images_per_s"], "opencv_images_per_s": c["images_per_s"],
                     "throughput_images": o["images"], "throughput_ratio": c["images_per_s"] / o["images_per_s"]})
    if a.json:
        print(json.dumps({"threads": a.threads, "opencv": cv2.__version__, "rounds": a.rounds, "results": rows}))
        return
    print(f"OpenCV {cv2.__version__}, {a.threads} threads, best of {a.rounds} interleaved rounds; ratio = Ocelli time / OpenCV time")
    print("| network (416x416) | Ocelli ms | OpenCV ms | latency ratio | Ocelli img/s | OpenCV img/s | time ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['network']} | {r['ocelli_ms']:.1f} | {r['opencv_ms']:.1f} | {r['latency_ratio']:.2f}x | "
              f"{r['ocelli_images_per_s']:.1f} | {r['opencv_images_per_s']:.1f} | {r['throughput_ratio']:.2f}x |")


if __name__ == "__main__":
    main()
