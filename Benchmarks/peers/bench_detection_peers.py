#!/usr/bin/env python3
"""Peer benchmark for `ocelli bench detection`: greedy NMS on 10,000 boxes (torchvision.ops.nms when it
imports, and OpenCV's cv2.dnn.NMSBoxes) and COCO box evaluation of 5,000 images' detections
(pycocotools COCOeval evaluate + accumulate + summarize), on the same data in the same run.

Usage (from the repository root, after `swift build -c release`):

    /work/venv/bin/python Benchmarks/peers/bench_detection_peers.py --ocelli .build/release/ocelli
    ... --json          # one JSON object
    ... --images 5000 --boxes 10000 --seed 1

The script writes the boxes and the COCO ground truth / results to a temporary folder, times the
peers, runs `OCELLI bench detection --boxes … --coco-gt … --coco-detections … --json` and prints
ratios (Ocelli time ÷ peer time: < 1 means Ocelli is faster). It also checks that the kept boxes
count and the 12 COCO numbers agree. Timings: NMS the fastest of --repeats runs; pycocotools one run
(it takes tens of seconds); Ocelli the fastest of its own repetitions. Single-threaded everywhere
(torch.set_num_threads(1); Ocelli's NMS and COCO evaluation are single-threaded).

numpy, pycocotools and opencv-python-headless; torch + torchvision optional (the venv's torchvision
0.28 is a CUDA build that does not load beside the CPU torch: then OpenCV is the NMS peer, which the
issue allows).
"""
import argparse
import contextlib
import io
import json
import os
import subprocess
import tempfile
import time

import cv2
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def make_boxes(n, rng):
    """Boxes clustered around 60 objects of a 1000 x 1000 image, as a detector's raw output."""
    objects = np.stack([rng.uniform(0, 1000, 60), rng.uniform(0, 1000, 60),
                        rng.uniform(20, 200, 60), rng.uniform(20, 200, 60)], axis=1)
    pick = objects[rng.integers(0, 60, n)]
    cx = pick[:, 0] + pick[:, 2] * 0.3 * rng.uniform(-1, 1, n)
    cy = pick[:, 1] + pick[:, 3] * 0.3 * rng.uniform(-1, 1, n)
    w = pick[:, 2] * rng.uniform(0.7, 1.3, n)
    h = pick[:, 3] * rng.uniform(0.7, 1.3, n)
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return boxes, rng.random(n)


def make_coco(n_images, rng, classes=10):
    """640 x 480 images, up to 15 objects each in all three area ranges (3% crowds); jittered,
    duplicated, confused and false detections (about 20 per image)."""
    images, annotations, results = [], [], []
    ann_id = 1
    for i in range(1, n_images + 1):
        images.append({"id": i, "width": 640, "height": 480, "file_name": "%012d.jpg" % i})
        for _ in range(int(rng.integers(0, 16))):
            side = [rng.uniform(6, 32), rng.uniform(32, 96), rng.uniform(96, 300)][int(rng.integers(0, 3))]
            aspect = np.exp(rng.uniform(-0.5, 0.5))
            w, h = side * aspect, side / aspect
            x, y = rng.uniform(0, max(1, 640 - w)), rng.uniform(0, max(1, 480 - h))
            c = int(rng.integers(0, classes))
            crowd = int(rng.random() < 0.03)
            annotations.append({"id": ann_id, "image_id": i, "category_id": c, "bbox": [x, y, w, h],
                                "area": w * h, "iscrowd": crowd})
            ann_id += 1
            for _ in range([0, 1, 1, 2][int(rng.integers(0, 4))]):
                dw, dh = w * np.exp(rng.uniform(-0.2, 0.2)), h * np.exp(rng.uniform(-0.2, 0.2))
                dx, dy = x + w * 0.15 * rng.uniform(-1, 1), y + h * 0.15 * rng.uniform(-1, 1)
                dc = c if rng.random() < 0.9 else int(rng.integers(0, classes))
                results.append({"image_id": i, "category_id": dc, "bbox": [dx, dy, dw, dh], "score": float(rng.random())})
        for _ in range(int(rng.integers(0, 13))):
            w, h = rng.uniform(5, 250), rng.uniform(5, 250)
            results.append({"image_id": i, "category_id": int(rng.integers(0, classes)),
                            "bbox": [rng.uniform(0, 640 - w), rng.uniform(0, 480 - h), w, h],
                            "score": float(rng.uniform(0, 0.6))})
    gt = {"images": images, "annotations": annotations,
          "categories": [{"id": k, "name": "class%d" % k} for k in range(classes)]}
    return gt, results


def best_ms(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, (time.perf_counter() - t) * 1000)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ocelli", help="path of the ocelli binary (e.g. .build/release/ocelli)")
    ap.add_argument("--boxes", type=int, default=10000)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--iou", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    cv2.setNumThreads(1)

    boxes, scores = make_boxes(args.boxes, rng)
    gt, results = make_coco(args.images, rng)
    tmp = tempfile.mkdtemp(prefix="ocelli-bench-detection-")
    paths = {k: os.path.join(tmp, k + ".json") for k in ("boxes", "gt", "results")}
    with open(paths["boxes"], "w") as f:
        json.dump({"boxes": boxes.tolist(), "scores": scores.tolist()}, f)
    with open(paths["gt"], "w") as f:
        json.dump(gt, f)
    with open(paths["results"], "w") as f:
        json.dump(results, f)

    out = {"nms_boxes": args.boxes, "coco_images": args.images, "coco_objects": len(gt["annotations"]),
           "coco_detections": len(results)}

    # NMS peers.
    rects = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    out["opencv_nms_ms"], keep = best_ms(lambda: cv2.dnn.NMSBoxes(rects, scores, 0.0, args.iou), args.repeats)
    out["opencv_nms_kept"] = int(len(np.array(keep).ravel()))
    try:
        import torch
        import torchvision
        torch.set_num_threads(1)
        tb, ts = torch.from_numpy(boxes).float(), torch.from_numpy(scores).float()
        torchvision.ops.nms(tb, ts, args.iou)
        out["torchvision_nms_ms"], keep = best_ms(lambda: torchvision.ops.nms(tb, ts, args.iou), args.repeats)
        out["torchvision_nms_kept"] = int(len(keep))
    except Exception as e:  # noqa: BLE001 - any import or load failure means "not available"
        out["torchvision_nms_error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")

    # pycocotools: evaluate + accumulate + summarize (the results already loaded, as Ocelli's are).
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(paths["gt"])
        coco_dt = coco_gt.loadRes(paths["results"])
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    out["pycocotools_eval_ms"] = (time.perf_counter() - t) * 1000
    out["pycocotools_stats"] = [float(v) for v in ev.stats]

    if args.ocelli:
        cmd = [args.ocelli, "bench", "detection", "--boxes", paths["boxes"], "--iou", str(args.iou),
               "--coco-gt", paths["gt"], "--coco-detections", paths["results"], "--json"]
        env = dict(os.environ, OCELLI_NUM_THREADS="1")
        o = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1])
        out["ocelli_nms_ms"] = o["nms_ms"]
        out["ocelli_nms_kept"] = o["nms_kept"]
        out["ocelli_coco_eval_ms"] = o["coco_eval_ms"]
        out["ocelli_stats"] = o["coco_stats"]
        out["stats_max_abs_difference"] = float(np.max(np.abs(np.array(o["coco_stats"]) - np.array(out["pycocotools_stats"]))))
        out["nms_ratio_vs_opencv"] = o["nms_ms"] / out["opencv_nms_ms"]
        if "torchvision_nms_ms" in out:
            out["nms_ratio_vs_torchvision"] = o["nms_ms"] / out["torchvision_nms_ms"]
        out["coco_ratio_vs_pycocotools"] = o["coco_eval_ms"] / out["pycocotools_eval_ms"]

    if args.json:
        print(json.dumps(out, sort_keys=True))
        return
    print("data: %d boxes for NMS (IoU %.2f); COCO: %d images, %d objects, %d detections" % (
        args.boxes, args.iou, args.images, out["coco_objects"], out["coco_detections"]))
    print("")
    print("| work | peer | peer ms | Ocelli ms | Ocelli ÷ peer |")
    print("|---|---|---:|---:|---:|")
    o_nms = out.get("ocelli_nms_ms")
    for peer in ("torchvision", "opencv"):
        key = peer + "_nms_ms"
        if key in out:
            print("| NMS %d boxes | %s | %.3f | %s | %s |" % (
                args.boxes, {"torchvision": "torchvision.ops.nms", "opencv": "cv2.dnn.NMSBoxes"}[peer], out[key],
                "%.3f" % o_nms if o_nms is not None else "-", "%.2f" % (o_nms / out[key]) if o_nms is not None else "-"))
    o_coco = out.get("ocelli_coco_eval_ms")
    print("| COCO eval %d images | pycocotools | %.0f | %s | %s |" % (
        args.images, out["pycocotools_eval_ms"], "%.0f" % o_coco if o_coco is not None else "-",
        "%.3f" % (o_coco / out["pycocotools_eval_ms"]) if o_coco is not None else "-"))
    if "torchvision_nms_error" in out:
        print("\ntorchvision not available: " + out["torchvision_nms_error"])
    if o_nms is not None:
        print("\nkept: Ocelli %d, OpenCV %d%s; COCO stats max |Ocelli − pycocotools| = %.2g" % (
            out["ocelli_nms_kept"], out["opencv_nms_kept"],
            ", torchvision %d" % out["torchvision_nms_kept"] if "torchvision_nms_kept" in out else "",
            out["stats_max_abs_difference"]))


if __name__ == "__main__":
    main()
