#!/usr/bin/env python3
"""PyTorch's time for `ocelli examples separable`: standard 3x3 vs depthwise-separable
convolution at MobileNet v1's stride-1 shapes, batch 1, forward, best of repeats.

    /work/venv/bin/python Scripts/bench_separable_torch.py [--threads 2]
"""
import argparse
import time

import torch
import torch.nn.functional as F

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--budget", type=float, default=0.5)
args = parser.parse_args()
torch.set_num_threads(args.threads)

SHAPES = [(112, 32, 64), (56, 128, 128), (28, 256, 256), (14, 512, 512), (7, 1024, 1024)]


def best(fn, budget):
    fn()
    best_t, total, runs = float("inf"), 0.0, 0
    while runs < 3 or total < budget:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best_t, total, runs = min(best_t, dt), total + dt, runs + 1
        if runs >= 200:
            break
    return best_t


print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, NCHW, batch 1, forward")
print("size  C_in C_out  standard ms  separable ms  speed-up  FLOP ratio")
with torch.no_grad():
    for s, cin, cout in SHAPES:
        x = torch.rand(1, cin, s, s) * 2 - 1
        w = torch.rand(cout, cin, 3, 3) * 0.2 - 0.1
        dw = torch.rand(cin, 1, 3, 3) * 0.2 - 0.1
        pw = torch.rand(cout, cin, 1, 1) * 0.2 - 0.1
        std = best(lambda: F.conv2d(x, w, padding=1), args.budget)
        sep = best(lambda: F.conv2d(F.conv2d(x, dw, padding=1, groups=cin), pw), args.budget)
        ratio = 9 * cin * cout / (9 * cin + cin * cout)
        print(f"{s:4d} {cin:5d} {cout:5d} {std * 1e3:12.3f} {sep * 1e3:13.3f} {std / sep:9.2f} {ratio:11.2f}")
