#!/usr/bin/env python3
"""`ocelli detect` on a folder with the annotated images written, side by side with the same job
in OpenCV: read the image, network input (blobFromImage: bilinear resize to 416x416, RGB, /255),
forward, decode the [yolo] rows (score = objectness x class probability > 0.25), per-class NMS
(IoU 0.45, NMSBoxesBatched), draw each box and its label, write a JPEG (quality 90).

Ocelli runs `ocelli detect CFG WEIGHTS FOLDER --out OUT --no-letterbox --threads T` (the same plain
resize as blobFromImage). Its per-image time is (wall time for N images - wall time for 1 image)
/ (N - 1), so process start and weight loading cancel; OpenCV's is its loop over the N images
divided by N, after readNetFromDarknet and one warm-up image. Rounds interleave the two and keep
each one's best, because this 2-core VM's timings swing with load.

Images: Darknet's seven photos from Data/images, each copied --copies times into a folder.
Weights: the real yolov3-tiny (OCELLI_MODELS, else ../shared/models).

Usage: /path/to/venv/bin/python Benchmarks/peers/bench_detect_folder_peers.py \\
           --ocelli .build/release/ocelli [--rounds 3] [--copies 5] [--threads 2] [--json]
Needs numpy and "opencv-python-headless<5".
"""
import argparse, json, os, shutil, subprocess, tempfile, time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.environ.get("OCELLI_MODELS") or os.path.join(ROOT, "..", "shared", "models")
CFG = os.path.join(ROOT, "Data", "cfg", "yolov3-tiny.cfg")
NAMES = os.path.join(ROOT, "Data", "cfg", "coco.names")
WEIGHTS = os.path.join(MODELS, "yolov3-tiny", "yolov3-tiny.weights")


def make_folder(copies):
    folder = tempfile.mkdtemp(prefix="ocelli-detect-bench-")
    photos = sorted(f for f in os.listdir(os.path.join(ROOT, "Data", "images")) if f.endswith(".jpg"))
    for k in range(copies):
        for p in photos:
            shutil.copy(os.path.join(ROOT, "Data", "images", p), os.path.join(folder, f"{os.path.splitext(p)[0]}_{k}.jpg"))
    return folder


def opencv_job(net, outs, names, path, out_dir, write=True, thresh=0.25, nms=0.45):
    image = cv2.imread(path)
    h, w = image.shape[:2]
    net.setInput(cv2.dnn.blobFromImage(image, 1 / 255.0, (416, 416), swapRB=True, crop=False))
    rows = np.concatenate(net.forward(outs), axis=0)
    scores = rows[:, 5:]
    r, c = np.nonzero(scores > thresh)
    boxes = [[float((rows[i, 0] - rows[i, 2] / 2) * w), float((rows[i, 1] - rows[i, 3] / 2) * h),
              float(rows[i, 2] * w), float(rows[i, 3] * h)] for i in r]
    kept = []
    if len(boxes):
        kept = np.array(cv2.dnn.NMSBoxesBatched(boxes, scores[r, c].tolist(), c.tolist(), thresh, nms)).reshape(-1)
    if write:
        for k in kept:
            x, y, bw, bh = (int(v) for v in boxes[k])
            color = (int(37 * c[k]) % 255, int(17 * c[k]) % 255, int(29 * c[k]) % 255)
            cv2.rectangle(image, (x, y), (x + bw, y + bh), color, 3)
            cv2.putText(image, names[c[k]], (x, max(y - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, color, 2)
        cv2.imwrite(os.path.join(out_dir, os.path.basename(path)), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return len(kept)


def opencv(folder, threads, write):
    cv2.setNumThreads(threads)
    names = [l.strip() for l in open(NAMES) if l.strip()]
    net = cv2.dnn.readNetFromDarknet(CFG, WEIGHTS)
    outs = net.getUnconnectedOutLayersNames()
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
    out_dir = tempfile.mkdtemp(prefix="ocelli-detect-bench-cv-")
    opencv_job(net, outs, names, files[0], out_dir, write)  # warm-up
    t = time.perf_counter()
    for f in files:
        opencv_job(net, outs, names, f, out_dir, write)
    per_image = (time.perf_counter() - t) * 1000 / len(files)
    shutil.rmtree(out_dir)
    return per_image


def ocelli(binary, folder, threads, write):
    files = sorted(os.listdir(folder))
    one = tempfile.mkdtemp(prefix="ocelli-detect-bench-one-")
    shutil.copy(os.path.join(folder, files[0]), one)

    def run(path):
        out_dir = tempfile.mkdtemp(prefix="ocelli-detect-bench-out-")
        args = [binary, "detect", CFG, WEIGHTS, path, "--out", out_dir, "--no-letterbox", "--threads", str(threads)]
        if not write:
            args.append("--no-save")
        t = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        seconds = time.perf_counter() - t
        shutil.rmtree(out_dir)
        return seconds

    per_image = (run(folder) - run(one)) * 1000 / (len(files) - 1)
    shutil.rmtree(one)
    return per_image


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ocelli", required=True, help="path to the ocelli binary (release build)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    folder = make_folder(a.copies)
    best = {}
    for _ in range(a.rounds):
        for write in (True, False):
            for peer, fn in (("opencv", lambda: opencv(folder, a.threads, write)),
                             ("ocelli", lambda: ocelli(a.ocelli, folder, a.threads, write))):
                key = (peer, write)
                best[key] = min(best.get(key, float("inf")), fn())
    shutil.rmtree(folder)
    n = a.copies * 7
    result = {"images": n, "threads": a.threads, "rounds": a.rounds,
              "written": {"opencv_ms": best[("opencv", True)], "ocelli_ms": best[("ocelli", True)],
                          "ratio": best[("ocelli", True)] / best[("opencv", True)]},
              "not_written": {"opencv_ms": best[("opencv", False)], "ocelli_ms": best[("ocelli", False)],
                              "ratio": best[("ocelli", False)] / best[("opencv", False)]}}
    if a.json:
        print(json.dumps(result))
        return
    print(f"yolov3-tiny, {n} images (Darknet's 7 photos x {a.copies}), {a.threads} threads, best of {a.rounds} rounds")
    print("| job | OpenCV ms/image | Ocelli ms/image | Ocelli / OpenCV |")
    print("|---|---|---|---|")
    for label, key in (("read, forward, decode, NMS, draw, write JPEG", "written"), ("the same without drawing and writing", "not_written")):
        r = result[key]
        print(f"| {label} | {r['opencv_ms']:.1f} | {r['ocelli_ms']:.1f} | {r['ratio']:.2f}x |")


if __name__ == "__main__":
    main()
