#!/usr/bin/env python3
"""Peer benchmarks for `ocelli bench kernels --json`.

Measures the same GEMM and convolution work as the Swift command with numpy
(GEMM only) and PyTorch (GEMM and conv, if it imports), and optionally compares
against Ocelli's own numbers.

Usage:
    python bench_peers.py                          # peers only, markdown
    python bench_peers.py --threads 1              # single-threaded peers
    python bench_peers.py --json                   # peers only, one JSON object
    python bench_peers.py --ocelli ".build/release/ocelli bench kernels --json"
    python bench_peers.py --ocelli-json saved_ocelli.json
    python bench_peers.py --rounds 3 --ocelli ".build/release/ocelli bench kernels --json"

Ocelli JSON schema (exactly one object on stdout):
    {"gemm": [{"m": .., "n": .., "k": .., "gflops": ..}],
     "conv": [{"name": .., "forward_ms": .., "backward_ms": ..}],
     "threads": .., "blas": "openblas|accelerate|builtin"}

Ratios are oriented so that > 1 means Ocelli is faster:
    GEMM: ocelli_gflops / peer_gflops
    conv: torch_ms / ocelli_ms

Timing method: each case is warmed up, then repeated until about
--target-seconds of measured time (at least --min-repeats runs); the best
(minimum) time is reported.  Torch conv forward is timed under no_grad; conv
backward times only `out.backward(ones)`, computing gradients w.r.t. input,
kernel and bias (the forward that builds the graph is not timed).  Torch conv
is run in both NCHW (default) and channels_last memory formats; "torch best"
is the faster of the two, chosen separately for forward and backward.

Noise: on a shared 2-vCPU VM, 2-thread numbers can move by up to 2x between
processes (single-thread numbers are far steadier).  Compare numbers taken
close together; `--rounds N` repeats the whole suite N times, interleaving
the --ocelli command with the peers, and keeps each case's best.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from this process's
environment before numpy loads (they can force a slow OpenBLAS kernel); the
--ocelli command gets the original environment plus the thread variables.

Stdlib + numpy; torch optional.  No network access.
"""

# --------------------------------------------------------------------------
# Benchmark shapes. Keep in sync with the Swift side (`ocelli bench kernels`).
# --------------------------------------------------------------------------
# GEMM: C[m, n] = A[m, k] @ B[k, n], float32.
GEMM_SHAPES = [
    # (m, n, k)
    (512, 512, 512),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (10816, 64, 288),
]

# Conv: NHWC input, HWIO kernel, stride 1, float32, with bias.
# padding: "same" or "valid".
CONV_SHAPES = [
    # name,                 batch,   h,   w, cin, cout, kh, kw, padding
    ("yolov3-tiny conv0",       1, 416, 416,   3,   16,  3,  3, "same"),
    ("yolov3-tiny conv1",       1, 208, 208,  16,   32,  3,  3, "same"),
    ("yolov3-tiny conv2",       1, 104, 104,  32,   64,  3,  3, "same"),
    ("mnist conv1",           128,  28,  28,   1,   32,  3,  3, "valid"),
    ("mnist conv2",           128,  26,  26,  32,   64,  3,  3, "valid"),
]
# --------------------------------------------------------------------------

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time

# The original environment, kept for the Ocelli subprocess (a system OpenBLAS
# linked into Ocelli may need OPENBLAS_CORETYPE for correctness).
_ORIGINAL_ENV = dict(os.environ)


class BenchError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def _parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Benchmark numpy/torch on the shapes of `ocelli bench kernels` "
        "and compare with Ocelli's JSON output.",
    )
    p.add_argument("--threads", type=int, default=2,
                   help="threads for numpy's BLAS and torch (default: 2)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--ocelli", metavar="CMD",
                     help="command printing Ocelli's JSON, e.g. "
                     "'.build/release/ocelli bench kernels --json' (split with shlex, "
                     "run without a shell)")
    src.add_argument("--ocelli-json", metavar="FILE",
                     help="read Ocelli's JSON from FILE ('-' for stdin)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (raw numbers and ratios) instead of markdown")
    p.add_argument("--target-seconds", type=float, default=0.5,
                   help="approximate measured time per case (default: 0.5)")
    p.add_argument("--min-repeats", type=int, default=3,
                   help="minimum timed repeats per case (default: 3)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run the whole suite (and the --ocelli command) this many times, "
                   "interleaved, keeping each case's best (default: 1)")
    p.add_argument("--no-torch", action="store_true", help="skip torch even if it imports")
    p.add_argument("--ocelli-timeout", type=float, default=1800.0,
                   help="seconds to wait for the --ocelli command (default: 1800)")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.target_seconds <= 0:
        p.error("--target-seconds must be > 0")
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    if args.min_repeats < 1:
        p.error("--min-repeats must be >= 1")
    return args


ARGS = _parse_args()

# Must happen before numpy (and torch) are imported: OpenBLAS reads these at load.
for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402


def log(msg):
    if not ARGS.quiet:
        print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Environment description
# --------------------------------------------------------------------------

def numpy_blas_info():
    """Describe the BLAS numpy uses: threadpoolctl if available, else show_config."""
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        infos = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        # Prefer the library numpy ships/links (torch may load MKL later, but
        # we are called before torch is imported).
        if infos:
            i = infos[0]
            return {
                "source": "threadpoolctl",
                "internal_api": i.get("internal_api"),
                "version": i.get("version"),
                "architecture": i.get("architecture"),
                "threading_layer": i.get("threading_layer"),
                "num_threads": i.get("num_threads"),
                "filepath": i.get("filepath"),
            }
    summary = None
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        summary = blas.get("openblas configuration") or (
            "%s %s" % (blas.get("name", "?"), blas.get("version", "?")))
    except Exception:  # older numpy: show_config has no dicts mode
        summary = None
    return {"source": "numpy.show_config", "summary": summary,
            "note": "install threadpoolctl to see the OpenBLAS kernel in use"}


def describe_blas(info):
    if info.get("source") == "threadpoolctl":
        return "%s %s, kernel %s, %s threads (%s)" % (
            info.get("internal_api"), info.get("version"), info.get("architecture"),
            info.get("num_threads"), info.get("threading_layer"))
    return "%s (%s)" % (info.get("summary"), info.get("note"))


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------

def best_time(fn, target_seconds, min_repeats, warmup=1, self_timed=False):
    """Best-of-N wall time of fn() in seconds and the number of timed runs.
    With self_timed, fn returns the seconds it measured itself (used to time
    only the backward call); otherwise the whole call is timed."""
    def once():
        if self_timed:
            return fn()
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    for _ in range(warmup):
        once()
    first = once()
    best = first
    total = first
    n = 1
    # Enough repeats for ~target_seconds of measured time, bounded.
    wanted = max(min_repeats, min(1000, int(math.ceil(target_seconds / max(first, 1e-7)))))
    while n < wanted:
        t = once()
        best = min(best, t)
        total += t
        n += 1
    return best, n


# --------------------------------------------------------------------------
# numpy GEMM
# --------------------------------------------------------------------------

def bench_numpy_gemm(m, n, k, rng):
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), dtype=np.float32)
    t, reps = best_time(lambda: np.matmul(a, b, out=c), ARGS.target_seconds, ARGS.min_repeats)
    return {"gflops": 2.0 * m * n * k / t / 1e9, "ms": t * 1e3, "repeats": reps}


# --------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------

def import_torch():
    if ARGS.no_torch:
        return None, "disabled with --no-torch"
    try:
        import torch
    except Exception as e:  # ImportError, OSError from a broken install, ...
        return None, "torch not available: %s: %s" % (type(e).__name__, e)
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(0)
    return torch, None


def bench_torch_gemm(torch, m, n, k, gen):
    a = torch.randn(m, k, generator=gen, dtype=torch.float32)
    b = torch.randn(k, n, generator=gen, dtype=torch.float32)
    c = torch.empty(m, n, dtype=torch.float32)
    with torch.inference_mode():
        t, reps = best_time(lambda: torch.mm(a, b, out=c), ARGS.target_seconds, ARGS.min_repeats)
    return {"gflops": 2.0 * m * n * k / t / 1e9, "ms": t * 1e3, "repeats": reps}


def conv_flops(batch, h, w, cin, cout, kh, kw, padding):
    if padding == "same":
        oh, ow = h, w
    elif padding == "valid":
        oh, ow = h - kh + 1, w - kw + 1
    else:
        raise BenchError("unknown padding %r in CONV_SHAPES" % padding)
    return 2.0 * batch * oh * ow * cout * cin * kh * kw, (oh, ow)


def bench_torch_conv_format(torch, shape, memory_format, gen):
    name, batch, h, w, cin, cout, kh, kw, padding = shape
    F = torch.nn.functional
    x0 = torch.randn(batch, cin, h, w, generator=gen, dtype=torch.float32)
    w0 = torch.randn(cout, cin, kh, kw, generator=gen, dtype=torch.float32) * (1.0 / math.sqrt(cin * kh * kw))
    b0 = torch.randn(cout, generator=gen, dtype=torch.float32)
    x = x0.contiguous(memory_format=memory_format).requires_grad_(True)
    wt = w0.contiguous(memory_format=memory_format).requires_grad_(True)
    bias = b0.clone().requires_grad_(True)
    pad = padding  # torch accepts 'same' / 'valid' for stride 1

    def fwd():
        with torch.no_grad():
            F.conv2d(x, wt, bias, stride=1, padding=pad)

    t_fwd, n_fwd = best_time(fwd, ARGS.target_seconds, ARGS.min_repeats)

    with torch.no_grad():
        grad = torch.ones_like(F.conv2d(x, wt, bias, stride=1, padding=pad))

    def bwd():
        x.grad = None
        wt.grad = None
        bias.grad = None
        out = F.conv2d(x, wt, bias, stride=1, padding=pad)
        t0 = time.perf_counter()
        out.backward(grad)
        return time.perf_counter() - t0

    t_bwd, n_bwd = best_time(bwd, ARGS.target_seconds, ARGS.min_repeats, self_timed=True)
    if x.grad is None or wt.grad is None or bias.grad is None:
        raise BenchError("torch backward did not produce all gradients for %r" % name)
    return {"forward_ms": t_fwd * 1e3, "backward_ms": t_bwd * 1e3,
            "forward_repeats": n_fwd, "backward_repeats": n_bwd}


def bench_torch_conv(torch, shape, gen):
    name, batch, h, w, cin, cout, kh, kw, padding = shape
    flops, (oh, ow) = conv_flops(batch, h, w, cin, cout, kh, kw, padding)
    nchw = bench_torch_conv_format(torch, shape, torch.contiguous_format, gen)
    cl = bench_torch_conv_format(torch, shape, torch.channels_last, gen)
    return finish_conv({
        "name": name, "batch": batch, "h": h, "w": w, "cin": cin, "cout": cout,
        "kh": kh, "kw": kw, "padding": padding, "out_h": oh, "out_w": ow,
        "forward_gflop": flops / 1e9,
        "nchw": nchw, "channels_last": cl,
    })


def finish_conv(c):
    """Fill in the "torch best" fields (forward and backward chosen separately)."""
    nchw, cl = c["nchw"], c["channels_last"]
    c["best_forward_format"], c["best_forward_ms"] = min(
        (("nchw", nchw["forward_ms"]), ("channels_last", cl["forward_ms"])), key=lambda p: p[1])
    c["best_backward_format"], c["best_backward_ms"] = min(
        (("nchw", nchw["backward_ms"]), ("channels_last", cl["backward_ms"])), key=lambda p: p[1])
    c["best_forward_gflops"] = c["forward_gflop"] / (c["best_forward_ms"] / 1e3)
    return c


# --------------------------------------------------------------------------
# Merging rounds: keep the best number of each case over all rounds.
# --------------------------------------------------------------------------

def merge_gemm_result(old, new):
    if old is None:
        return new
    best = dict(new if new["gflops"] > old["gflops"] else old)
    best["repeats"] = old["repeats"] + new["repeats"]
    return best


def merge_conv(old, new):
    if old is None:
        return new
    merged = dict(old)
    for fmt_name in ("nchw", "channels_last"):
        o, n = old[fmt_name], new[fmt_name]
        merged[fmt_name] = {
            "forward_ms": min(o["forward_ms"], n["forward_ms"]),
            "backward_ms": min(o["backward_ms"], n["backward_ms"]),
            "forward_repeats": o["forward_repeats"] + n["forward_repeats"],
            "backward_repeats": o["backward_repeats"] + n["backward_repeats"],
        }
    return finish_conv(merged)


def merge_ocelli(old, new):
    """Best of two Ocelli runs: max GFLOP/s, min ms, per shape."""
    if old is None:
        return new
    merged = dict(new)
    old_gemm = {(e["m"], e["n"], e["k"]): e for e in old["gemm"]}
    old_conv = {e["name"]: e for e in old["conv"]}
    merged["gemm"] = []
    for e in new["gemm"]:
        o = old_gemm.get((e["m"], e["n"], e["k"]))
        merged["gemm"].append(dict(e, gflops=max(e["gflops"], o["gflops"])) if o else e)
    merged["conv"] = []
    for e in new["conv"]:
        o = old_conv.get(e["name"])
        merged["conv"].append(dict(e, forward_ms=min(e["forward_ms"], o["forward_ms"]),
                                   backward_ms=min(e["backward_ms"], o["backward_ms"])) if o else e)
    return merged


# --------------------------------------------------------------------------
# Ocelli JSON
# --------------------------------------------------------------------------

def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate_ocelli(obj, origin):
    def fail(msg):
        raise BenchError("Ocelli JSON from %s: %s" % (origin, msg))

    if not isinstance(obj, dict):
        fail("expected one JSON object, got %s" % type(obj).__name__)
    missing = [key for key in ("gemm", "conv", "threads", "blas") if key not in obj]
    if missing:
        fail("missing top-level key(s): %s (have: %s)" % (", ".join(missing), ", ".join(sorted(obj))))
    if not _is_num(obj["threads"]):
        fail("'threads' must be a number, got %r" % (obj["threads"],))
    if not isinstance(obj["blas"], str):
        fail("'blas' must be a string, got %r" % (obj["blas"],))
    if not isinstance(obj["gemm"], list):
        fail("'gemm' must be a list")
    if not isinstance(obj["conv"], list):
        fail("'conv' must be a list")
    for i, e in enumerate(obj["gemm"]):
        if not isinstance(e, dict):
            fail("gemm[%d] is not an object" % i)
        for key in ("m", "n", "k", "gflops"):
            if key not in e:
                fail("gemm[%d] lacks key '%s'" % (i, key))
            if not _is_num(e[key]):
                fail("gemm[%d].%s is not a finite number: %r" % (i, key, e[key]))
    for i, e in enumerate(obj["conv"]):
        if not isinstance(e, dict):
            fail("conv[%d] is not an object" % i)
        for key in ("name", "forward_ms", "backward_ms"):
            if key not in e:
                fail("conv[%d] lacks key '%s'" % (i, key))
        if not isinstance(e["name"], str):
            fail("conv[%d].name is not a string" % i)
        for key in ("forward_ms", "backward_ms"):
            if not _is_num(e[key]):
                fail("conv[%d].%s is not a finite number: %r" % (i, key, e[key]))
    return obj


def parse_ocelli_text(text, origin):
    text = text.strip()
    if not text:
        raise BenchError("Ocelli JSON from %s: empty output" % origin)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        # Tolerate log lines before the JSON: try the last line that looks like an object.
        lines = [ln for ln in text.splitlines() if ln.strip().startswith("{")]
        if lines:
            try:
                return json.loads(lines[-1])
            except json.JSONDecodeError:
                pass
        snippet = text[:400] + ("..." if len(text) > 400 else "")
        raise BenchError("Ocelli output from %s is not valid JSON (%s). Output began with:\n%s"
                         % (origin, e, snippet))


def load_ocelli_json_file(path):
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, "r", encoding="utf-8") as f:
                text = f.read()
    except OSError as e:
        raise BenchError("cannot read --ocelli-json file %r: %s" % (path, e))
    origin = "stdin" if path == "-" else repr(path)
    return validate_ocelli(parse_ocelli_text(text, origin), origin)


def run_ocelli(cmd):
    try:
        argv = shlex.split(cmd)
    except ValueError as e:
        raise BenchError("cannot parse --ocelli command %r: %s" % (cmd, e))
    if not argv:
        raise BenchError("--ocelli command is empty")
    env = dict(_ORIGINAL_ENV)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(ARGS.threads)
    log("running Ocelli: %s" % " ".join(shlex.quote(a) for a in argv))
    try:
        proc = subprocess.run(argv, shell=False, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, env=env, timeout=ARGS.ocelli_timeout)
    except FileNotFoundError:
        raise BenchError("Ocelli command not found: %r (build it first, e.g. "
                         "`swift build -c release`, and pass the binary path)" % argv[0])
    except PermissionError as e:
        raise BenchError("Ocelli command is not executable: %r (%s)" % (argv[0], e))
    except subprocess.TimeoutExpired:
        raise BenchError("Ocelli command timed out after %.0f s: %s" % (ARGS.ocelli_timeout, cmd))
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        raise BenchError("Ocelli command failed with exit status %d: %s\nstderr (last lines):\n%s"
                         % (proc.returncode, cmd, tail or "(empty)"))
    origin = "command %r" % cmd
    return validate_ocelli(parse_ocelli_text(proc.stdout.decode("utf-8", "replace"), origin), origin)


# --------------------------------------------------------------------------
# Ratios and reporting
# --------------------------------------------------------------------------

def _ratio(num, den):
    if num is None or den is None or den == 0:
        return None
    return num / den


def compute_ratios(peers, ocelli):
    ratios = {"gemm": [], "conv": [], "warnings": []}
    peer_gemm = {(g["m"], g["n"], g["k"]): g for g in peers["gemm"]}
    peer_conv = {c["name"]: c for c in peers["conv"]}
    seen_gemm, seen_conv = set(), set()
    for e in ocelli["gemm"]:
        key = (int(e["m"]), int(e["n"]), int(e["k"]))
        seen_gemm.add(key)
        p = peer_gemm.get(key)
        if p is None:
            ratios["warnings"].append("Ocelli GEMM m=%d n=%d k=%d has no peer measurement" % key)
        np_g = p["numpy"]["gflops"] if p else None
        th_g = p["torch"]["gflops"] if p and p.get("torch") else None
        ratios["gemm"].append({
            "m": key[0], "n": key[1], "k": key[2], "ocelli_gflops": e["gflops"],
            "numpy_gflops": np_g, "torch_gflops": th_g,
            "ocelli_over_numpy": _ratio(e["gflops"], np_g),
            "ocelli_over_torch": _ratio(e["gflops"], th_g),
        })
    for key in peer_gemm:
        if key not in seen_gemm:
            ratios["warnings"].append("peer GEMM m=%d n=%d k=%d is missing from Ocelli's JSON" % key)
    for e in ocelli["conv"]:
        name = e["name"]
        seen_conv.add(name)
        p = peer_conv.get(name)
        if p is None and name not in {sh[0] for sh in CONV_SHAPES}:
            ratios["warnings"].append("Ocelli conv %r is not in this script's CONV_SHAPES "
                                      "(name mismatch?)" % name)
        tf = p["best_forward_ms"] if p else None
        tb = p["best_backward_ms"] if p else None
        ratios["conv"].append({
            "name": name, "ocelli_forward_ms": e["forward_ms"], "ocelli_backward_ms": e["backward_ms"],
            "torch_forward_ms": tf, "torch_backward_ms": tb,
            "forward_torch_over_ocelli": _ratio(tf, e["forward_ms"]),
            "backward_torch_over_ocelli": _ratio(tb, e["backward_ms"]),
        })
    for name in peer_conv:
        if name not in seen_conv:
            ratios["warnings"].append("peer conv %r is missing from Ocelli's JSON" % name)
    if int(ocelli["threads"]) != ARGS.threads:
        ratios["warnings"].append("Ocelli ran with %s threads but peers with %d (--threads)"
                                  % (ocelli["threads"], ARGS.threads))
    return ratios


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    return "%.*f" % (digits, v)


def md_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---:" if i else "---" for i in range(len(headers))) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def print_markdown(result):
    cfg = result["config"]
    print("## Peer configuration\n")
    print("- threads: %d; best of %d round(s), ~%.2g s per case per round"
          % (cfg["threads"], cfg["rounds"], cfg["target_seconds"]))
    print("- numpy %s, BLAS: %s" % (cfg["numpy_version"], describe_blas(cfg["numpy_blas"])))
    print("- torch: %s" % (cfg["torch_version"] or cfg["torch_note"]))
    if cfg.get("ocelli"):
        print("- Ocelli: %s threads, blas %s (%s)" % (cfg["ocelli"]["threads"], cfg["ocelli"]["blas"],
                                                    cfg["ocelli"]["source"]))
    print()

    ratios = result.get("ratios")
    if ratios is not None:
        print("## Ocelli vs peers (> 1 means Ocelli is faster)\n")
        print(md_table(
            ["GEMM m x n x k", "Ocelli GFLOP/s", "numpy GFLOP/s", "torch GFLOP/s",
             "Ocelli/numpy", "Ocelli/torch"],
            [["%dx%dx%d" % (r["m"], r["n"], r["k"]), fmt(r["ocelli_gflops"], 1),
              fmt(r["numpy_gflops"], 1), fmt(r["torch_gflops"], 1),
              fmt(r["ocelli_over_numpy"]), fmt(r["ocelli_over_torch"])] for r in ratios["gemm"]]))
        print()
        print(md_table(
            ["conv", "Ocelli fwd ms", "torch fwd ms", "fwd torch/Ocelli",
             "Ocelli bwd ms", "torch bwd ms", "bwd torch/Ocelli"],
            [[r["name"], fmt(r["ocelli_forward_ms"], 3), fmt(r["torch_forward_ms"], 3),
              fmt(r["forward_torch_over_ocelli"]), fmt(r["ocelli_backward_ms"], 3),
              fmt(r["torch_backward_ms"], 3), fmt(r["backward_torch_over_ocelli"])]
             for r in ratios["conv"]]))
        print()
        if ratios["warnings"]:
            print("Warnings:\n")
            for w in ratios["warnings"]:
                print("- " + w)
            print()

    peers = result["peers"]
    print("## Peer raw numbers\n")
    print(md_table(
        ["GEMM m x n x k", "numpy GFLOP/s", "numpy ms", "torch GFLOP/s", "torch ms"],
        [["%dx%dx%d" % (g["m"], g["n"], g["k"]), fmt(g["numpy"]["gflops"], 1), fmt(g["numpy"]["ms"], 3),
          fmt(g["torch"]["gflops"] if g.get("torch") else None, 1),
          fmt(g["torch"]["ms"] if g.get("torch") else None, 3)] for g in peers["gemm"]]))
    print()
    if peers["conv"]:
        print(md_table(
            ["conv (torch)", "input NHWC -> cout", "NCHW fwd ms", "NCHW bwd ms", "CL fwd ms",
             "CL bwd ms", "best fwd ms", "best bwd ms", "best fwd GFLOP/s"],
            [[c["name"], "%dx%dx%dx%d -> %d %s" % (c["batch"], c["h"], c["w"], c["cin"], c["cout"],
                                                   c["padding"]),
              fmt(c["nchw"]["forward_ms"], 3), fmt(c["nchw"]["backward_ms"], 3),
              fmt(c["channels_last"]["forward_ms"], 3), fmt(c["channels_last"]["backward_ms"], 3),
              "%s (%s)" % (fmt(c["best_forward_ms"], 3), c["best_forward_format"]),
              "%s (%s)" % (fmt(c["best_backward_ms"], 3), c["best_backward_format"]),
              fmt(c["best_forward_gflops"], 1)] for c in peers["conv"]]))
        print()
        print("CL = channels_last. Backward = grads w.r.t. input, kernel and bias from an upstream "
              "gradient of ones; only `out.backward()` is timed.")
    else:
        print("(no conv numbers: torch unavailable; numpy has no conv)")


# --------------------------------------------------------------------------

def main():
    t_start = time.perf_counter()
    if ARGS.threads > (os.cpu_count() or ARGS.threads):
        log("warning: --threads %d exceeds the %d CPUs of this machine" % (ARGS.threads, os.cpu_count()))

    # A saved file is read up front so a bad file fails fast.
    ocelli, ocelli_source = None, None
    if ARGS.ocelli_json is not None:
        ocelli = load_ocelli_json_file(ARGS.ocelli_json)
        ocelli_source = "file %s" % ARGS.ocelli_json
    elif ARGS.ocelli is not None:
        ocelli_source = "command %s (best of %d run(s))" % (ARGS.ocelli, ARGS.rounds)

    blas = numpy_blas_info()  # before torch is imported
    log("numpy %s, BLAS: %s" % (np.__version__, describe_blas(blas)))
    torch, torch_note = import_torch()
    if torch is None:
        log(torch_note)
    else:
        log("torch %s, %d threads" % (torch.__version__, torch.get_num_threads()))

    gemm_best = {shape: {"numpy": None, "torch": None} for shape in GEMM_SHAPES}
    conv_best = {shape[0]: None for shape in CONV_SHAPES}
    for rnd in range(ARGS.rounds):
        if ARGS.rounds > 1:
            log("-- round %d/%d" % (rnd + 1, ARGS.rounds))
        # Ocelli runs first in each round (a broken command fails fast) and
        # never concurrently with the peers; rounds interleave the two.
        if ARGS.ocelli is not None:
            ocelli = merge_ocelli(ocelli, run_ocelli(ARGS.ocelli))

        rng = np.random.default_rng(0)
        for (m, n, k) in GEMM_SHAPES:
            r = bench_numpy_gemm(m, n, k, rng)
            log("numpy gemm %dx%dx%d: %.1f GFLOP/s" % (m, n, k, r["gflops"]))
            gemm_best[(m, n, k)]["numpy"] = merge_gemm_result(gemm_best[(m, n, k)]["numpy"], r)

        if torch is not None:
            # Let OpenBLAS worker threads go idle before torch's OpenMP pool spins up.
            time.sleep(0.2)
            gen = torch.Generator().manual_seed(0)
            for (m, n, k) in GEMM_SHAPES:
                r = bench_torch_gemm(torch, m, n, k, gen)
                log("torch gemm %dx%dx%d: %.1f GFLOP/s" % (m, n, k, r["gflops"]))
                gemm_best[(m, n, k)]["torch"] = merge_gemm_result(gemm_best[(m, n, k)]["torch"], r)
            for shape in CONV_SHAPES:
                c = bench_torch_conv(torch, shape, gen)
                log("torch conv %s: fwd %.3f ms (%s), bwd %.3f ms (%s)" % (
                    c["name"], c["best_forward_ms"], c["best_forward_format"],
                    c["best_backward_ms"], c["best_backward_format"]))
                conv_best[c["name"]] = merge_conv(conv_best[c["name"]], c)

    peers = {
        "gemm": [{"m": m, "n": n, "k": k, "numpy": gemm_best[(m, n, k)]["numpy"],
                  "torch": gemm_best[(m, n, k)]["torch"]} for (m, n, k) in GEMM_SHAPES],
        "conv": [conv_best[s[0]] for s in CONV_SHAPES if conv_best[s[0]] is not None],
    }

    result = {
        "config": {
            "threads": ARGS.threads,
            "numpy_version": np.__version__,
            "numpy_blas": blas,
            "torch_version": torch.__version__ if torch is not None else None,
            "torch_note": torch_note,
            "torch_threads": torch.get_num_threads() if torch is not None else None,
            "target_seconds": ARGS.target_seconds,
            "min_repeats": ARGS.min_repeats,
            "rounds": ARGS.rounds,
            "ocelli": ({"threads": ocelli["threads"], "blas": ocelli["blas"], "source": ocelli_source}
                       if ocelli is not None else None),
        },
        "shapes": {
            "gemm": [{"m": m, "n": n, "k": k} for (m, n, k) in GEMM_SHAPES],
            "conv": [dict(zip(("name", "batch", "h", "w", "cin", "cout", "kh", "kw", "padding"), s))
                     for s in CONV_SHAPES],
        },
        "peers": peers,
        "ocelli": ocelli,
        "ratios": compute_ratios(peers, ocelli) if ocelli is not None else None,
    }
    log("total time %.1f s" % (time.perf_counter() - t_start))
    if ARGS.json:
        print(json.dumps(result, indent=2, sort_keys=False))
    else:
        print_markdown(result)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("bench_peers.py: error: %s" % e, file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
