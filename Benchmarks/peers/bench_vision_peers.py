#!/usr/bin/env python3
"""OpenCV (and Pillow) on the work `VisionBenchmark.decodeAndLetterbox` times: decode dog.jpg,
then fit it into 416x416. Best of N runs, milliseconds, one thread.

    /work/venv/bin/python Benchmarks/peers/bench_vision_peers.py [path] [--repeat 50]
"""
import argparse
import pathlib
import time

import cv2
import numpy as np
from PIL import Image

root = pathlib.Path(__file__).resolve().parents[2]
parser = argparse.ArgumentParser()
parser.add_argument("path", nargs="?", default=str(root.parent / "shared" / "data" / "images" / "dog.jpg"))
parser.add_argument("--size", type=int, default=416)
parser.add_argument("--repeat", type=int, default=50)
args = parser.parse_args()
cv2.setNumThreads(1)


def best(fn):
    fn()
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return min(times)


img = cv2.imread(args.path)
h, w = img.shape[:2]
s = args.size
scale = min(s / w, s / h)
nw, nh = int(w * scale), int(h * scale)


def letterbox_cv():
    # The usual OpenCV letterbox: uint8 resize, grey canvas, then to float [0, 1].
    r = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((s, s, 3), 128, np.uint8)
    canvas[(s - nh) // 2:(s - nh) // 2 + nh, (s - nw) // 2:(s - nw) // 2 + nw] = r
    return canvas.astype(np.float32) / 255


def letterbox_cv_float():
    # Darknet's order: to float first, then resize.
    f = img.astype(np.float32) / 255
    r = cv2.resize(f, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((s, s, 3), 0.5, np.float32)
    canvas[(s - nh) // 2:(s - nh) // 2 + nh, (s - nw) // 2:(s - nw) // 2 + nw] = r
    return canvas


rows = [
    ("cv2.imread", best(lambda: cv2.imread(args.path))),
    ("PIL open+load", best(lambda: Image.open(args.path).load())),
    (f"cv2.resize uint8 to {nw}x{nh}", best(lambda: cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR))),
    (f"letterbox {s} (uint8 resize, then float)", best(letterbox_cv)),
    (f"letterbox {s} (float, then resize)", best(letterbox_cv_float)),
]
for name, ms in rows:
    print(f"{name:45s} {ms:8.3f} ms")
