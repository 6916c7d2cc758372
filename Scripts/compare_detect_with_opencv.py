#!/usr/bin/env python3
"""Do trained Darknet weights give the same detections in `ocelli detect` and in OpenCV's Darknet
importer? Runs both on the same images and compares, detection by detection: the same class, every
box side within 1 pixel and the score within 0.005 (the acceptance of the YOLO training issue).

OpenCV: readNetFromDarknet(cfg, weights), blobFromImage (plain resize to the network size, RGB,
/255), the [yolo] rows (objectness x class probability per class), per-class NMS 0.45 above the
threshold (0.25). Ocelli: `ocelli detect CFG WEIGHTS IMAGES --json --no-letterbox --no-save`
(the same plain resize; for the digits, 256x256 images on a 256x256 network, both are the identity).

Usage: /path/to/venv/bin/python Scripts/compare_detect_with_opencv.py --ocelli .build/release/ocelli \\
           --cfg Data/cfg/yolo-digits.cfg --weights backup/yolo-digits_best.weights IMAGE... [--json]
Needs numpy and "opencv-python-headless<5". Exit status 1 when a detection has no match.
"""
import argparse
import json
import subprocess
import sys

import cv2
import numpy as np


def opencv_detections(net, outs, path, size, thresh, nms):
    image = cv2.imread(path)
    h, w = image.shape[:2]
    net.setInput(cv2.dnn.blobFromImage(image, 1 / 255.0, size, swapRB=True, crop=False))
    rows = np.concatenate(net.forward(outs), axis=0)
    scores = rows[:, 5:]
    r, c = np.nonzero(scores > thresh)
    boxes = [[float((rows[i, 0] - rows[i, 2] / 2) * w), float((rows[i, 1] - rows[i, 3] / 2) * h),
              float(rows[i, 2] * w), float(rows[i, 3] * h)] for i in r]
    if not boxes:
        return []
    kept = np.array(cv2.dnn.NMSBoxesBatched(boxes, scores[r, c].tolist(), c.tolist(), thresh, nms)).reshape(-1)
    return [{"class_id": int(c[k]), "score": float(scores[r[k], c[k]]), "x1": boxes[k][0], "y1": boxes[k][1],
             "x2": boxes[k][0] + boxes[k][2], "y2": boxes[k][1] + boxes[k][3]} for k in kept]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ocelli", required=True)
    ap.add_argument("--cfg", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--thresh", type=float, default=0.25)
    ap.add_argument("--nms", type=float, default=0.45)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()

    run = subprocess.run([a.ocelli, "detect", a.cfg, a.weights, *a.images, "--json", "--no-letterbox", "--no-save",
                          "--thresh", str(a.thresh), "--nms", str(a.nms)], check=True, capture_output=True, text=True)
    ocelli = {o["image"]: o["detections"] for o in map(json.loads, run.stdout.splitlines())}
    net = cv2.dnn.readNetFromDarknet(a.cfg, a.weights)
    outs = net.getUnconnectedOutLayersNames()
    size = None
    for line in open(a.cfg):
        k, _, v = line.partition("=")
        if k.strip() in ("width", "height"):
            size = (size or {}) | {k.strip(): int(v)}
    size = (size["width"], size["height"])

    worst_box, worst_score, matched, missing = 0.0, 0.0, 0, []
    for path in a.images:
        theirs = opencv_detections(net, outs, path, size, a.thresh, a.nms)
        mine = ocelli[path]
        for d in mine:
            best = None
            for t in theirs:
                if t["class_id"] != d["class_id"]:
                    continue
                box = max(abs(d[k] - t[k]) for k in ("x1", "y1", "x2", "y2"))
                if best is None or box < best[0]:
                    best = (box, abs(d["score"] - t["score"]))
            if best is None or best[0] > 1 or best[1] > 0.005:
                missing.append((path, d, best))
            else:
                matched += 1
                worst_box, worst_score = max(worst_box, best[0]), max(worst_score, best[1])
        if len(theirs) != len(mine):
            missing.append((path, f"OpenCV {len(theirs)} detections, Ocelli {len(mine)}", None))
    result = {"images": len(a.images), "detections": sum(len(v) for v in ocelli.values()), "matched": matched,
              "largest_box_difference_px": worst_box, "largest_score_difference": worst_score,
              "unmatched": [str(m) for m in missing]}
    print(json.dumps(result) if a.json else
          f"{len(a.images)} images, {result['detections']} Ocelli detections, {matched} matched by OpenCV "
          f"(largest box difference {worst_box:.3f} px, score {worst_score:.4f}); unmatched: {len(missing)}")
    for m in missing[:10]:
        print("  ", m, file=sys.stderr)
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
