#!/usr/bin/env python3
"""OpenCV + numpy on the work `ocelli bench augment` times for its first pipeline (Darknet's
YOLOv3 jitter .3 with placement on grey, random flip, HSV jitter .1/1.5/1.5) producing a 416x416
uint8 input from dog.jpg; boxes are not moved here (a few multiplications). Images per second,
one thread, wall and CPU time, without and with cv2.imread.

    /work/venv/bin/python Benchmarks/peers/bench_augment_peers.py [path] [--seconds 2]
"""
import argparse
import pathlib
import random
import time

import cv2
import numpy as np

root = pathlib.Path(__file__).resolve().parents[2]
parser = argparse.ArgumentParser()
parser.add_argument("path", nargs="?", default=str(root.parent / "shared" / "data" / "images" / "dog.jpg"))
parser.add_argument("--size", type=int, default=416)
parser.add_argument("--seconds", type=float, default=2)
args = parser.parse_args()
cv2.setNumThreads(1)
rng = random.Random(0)
S = args.size


def rand_scale(s):
    f = rng.uniform(1, s)
    return f if rng.random() < 0.5 else 1 / f


def augment(img, jitter=0.3, hue=0.1, saturation=1.5, exposure=1.5):
    oh, ow = img.shape[:2]
    dw, dh = jitter * ow, jitter * oh
    ar = (ow + rng.uniform(-dw, dw)) / (oh + rng.uniform(-dh, dh))
    if ar < 1:
        nh = S; nw = nh * ar
    else:
        nw = S; nh = nw / ar
    nw, nh = max(1, int(nw)), max(1, int(nh))
    dx, dy = int(rng.uniform(0, S - nw)), int(rng.uniform(0, S - nh))
    canvas = np.full((S, S, 3), 128, np.uint8)
    r = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    # Clip the placement to the canvas (offsets may be negative when the image overhangs).
    x0, y0 = max(dx, 0), max(dy, 0)
    x1, y1 = min(dx + nw, S), min(dy + nh, S)
    canvas[y0:y1, x0:x1] = r[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    # HSV jitter in float, as Darknet: H in [0, 360) from OpenCV's float conversion.
    hsv = cv2.cvtColor(canvas.astype(np.float32) / 255, cv2.COLOR_BGR2HSV)
    hsv[..., 0] = (hsv[..., 0] + 360 * rng.uniform(-hue, hue)) % 360
    hsv[..., 1] *= rand_scale(saturation)
    hsv[..., 2] *= rand_scale(exposure)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    out = (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rng.random() < 0.5:
        out = out[:, ::-1].copy()
    return out


def rate(fn):
    fn()
    n, t0, c0 = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - t0 < args.seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0), n / (time.thread_time() - c0)


img = cv2.imread(args.path)
alone = rate(lambda: augment(img))
decode = rate(lambda: augment(cv2.imread(args.path)))
print(f"OpenCV {cv2.__version__}, {args.path} -> {S}x{S}, images/s (wall, per CPU-s)")
print(f"  jitter .3 (place, flip) + HSV      augmentation only {alone[0]:6.0f} {alone[1]:6.0f}"
      f"   with imread {decode[0]:6.0f} {decode[1]:6.0f}")
