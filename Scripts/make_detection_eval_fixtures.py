#!/usr/bin/env python3
"""Reference fixtures for the detection tests (Tests/OcelliVisionTests/Detection*Tests.swift):
VOC AP from a transcription of py-faster-rcnn's lib/datasets/voc_eval.py, COCO numbers from the real
pycocotools COCOeval, anchors' mean IoU from a transcription of Darknet's calc_anchors (AlexeyAB
src/detector.c + src/matrix.c do_kmeans), and greedy NMS from OpenCV's cv2.dnn.NMSBoxes checked
against a transcription of torchvision's CPU nms kernel.

Run from the repository root:

    /work/venv/bin/python Scripts/make_detection_eval_fixtures.py     # numpy, pycocotools, opencv

Made with numpy 2.4.6, pycocotools 2.0.11, opencv-python-headless 4.14.0. (torchvision 0.28.0 in
that venv is a CUDA build that does not load beside the CPU torch, so torchvision.ops.nms itself is
not called; its kernel is transcribed in `torchvision_nms` and must agree with OpenCV.)

Ground truth: a synthetic VOC-like set (integer VOC pixel corners, 4 classes, some difficult objects),
a COCO-like set (crowds, all three area ranges, > 100 detections per image), and the digits data set's
val split made by ../shared/tools/make_digits_detection.py (the recipe `ocelli datasets digits`
follows). Detections: jittered true boxes, duplicates, random false positives, and scores rounded to
two decimals so that there are ties. Everything written is a few tens of KB.
"""
import contextlib
import io
import json
import pathlib

import cv2
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "OcelliVisionTests" / "Fixtures" / "detection"


def write_json(name, value):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps(value, separators=(",", ":")) + "\n")


# ----------------------------------------------------------------------------------------------
# (a) VOC: py-faster-rcnn's voc_eval / voc_ap, transcribed (same numpy calls, same order).

def voc_ap(rec, prec, use_07_metric=False):
    if use_07_metric:
        ap = 0.
        for t in np.arange(0., 1.1, 0.1):
            if np.sum(rec >= t) == 0:
                p = 0
            else:
                p = np.max(prec[rec >= t])
            ap = ap + p / 11.
    else:
        mrec = np.concatenate(([0.], rec, [1.]))
        mpre = np.concatenate(([0.], prec, [0.]))
        for i in range(mpre.size - 1, 0, -1):
            mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
        i = np.where(mrec[1:] != mrec[:-1])[0]
        ap = np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])
    return ap


def voc_eval(recs, imagenames, detlines, classname, ovthresh=0.5, use_07_metric=False, kind=None):
    """voc_eval with the annotations already parsed (recs[image] = [{'name','bbox','difficult'}]) and
    the class' detection file as lines [image_id, score, x1, y1, x2, y2] (VOC 1-based pixels)."""
    class_recs = {}
    npos = 0
    for imagename in imagenames:
        R = [obj for obj in recs[imagename] if obj['name'] == classname]
        bbox = np.array([x['bbox'] for x in R])
        difficult = np.array([x['difficult'] for x in R]).astype(bool)
        det = [False] * len(R)
        npos = npos + sum(~difficult)
        class_recs[imagename] = {'bbox': bbox, 'difficult': difficult, 'det': det}

    image_ids = [x[0] for x in detlines]
    confidence = np.array([float(x[1]) for x in detlines])
    BB = np.array([[float(z) for z in x[2:]] for x in detlines])

    nd = len(image_ids)
    tp = np.zeros(nd)
    fp = np.zeros(nd)
    if BB.shape[0] > 0:
        # sort by confidence (the original: np.argsort(-confidence), numpy's default quicksort)
        sorted_ind = np.argsort(-confidence) if kind is None else np.argsort(-confidence, kind=kind)
        BB = BB[sorted_ind, :]
        image_ids = [image_ids[x] for x in sorted_ind]

        for d in range(nd):
            R = class_recs[image_ids[d]]
            bb = BB[d, :].astype(float)
            ovmax = -np.inf
            BBGT = R['bbox'].astype(float)

            if BBGT.size > 0:
                ixmin = np.maximum(BBGT[:, 0], bb[0])
                iymin = np.maximum(BBGT[:, 1], bb[1])
                ixmax = np.minimum(BBGT[:, 2], bb[2])
                iymax = np.minimum(BBGT[:, 3], bb[3])
                iw = np.maximum(ixmax - ixmin + 1., 0.)
                ih = np.maximum(iymax - iymin + 1., 0.)
                inters = iw * ih
                uni = ((bb[2] - bb[0] + 1.) * (bb[3] - bb[1] + 1.) +
                       (BBGT[:, 2] - BBGT[:, 0] + 1.) *
                       (BBGT[:, 3] - BBGT[:, 1] + 1.) - inters)
                overlaps = inters / uni
                ovmax = np.max(overlaps)
                jmax = np.argmax(overlaps)

            if ovmax > ovthresh:
                if not R['difficult'][jmax]:
                    if not R['det'][jmax]:
                        tp[d] = 1.
                        R['det'][jmax] = 1
                    else:
                        fp[d] = 1.
            else:
                fp[d] = 1.

    fp = np.cumsum(fp)
    tp = np.cumsum(tp)
    rec = tp / float(npos)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return voc_ap(rec, prec, use_07_metric), int(tp[-1]) if nd else 0, int(fp[-1]) if nd else 0, int(npos)


def noisy_detections(rng, image_id, objects, W, H, n_classes):
    """Detections for one image in VOC pixels: each object missed, found or found twice (jittered
    integer boxes, 8% with a wrong class), plus 0-3 false positives; scores with two decimals (ties)."""
    detections = []
    for o in objects:
        x1, y1, x2, y2 = o["voc"]
        w, h = x2 - x1 + 1, y2 - y1 + 1
        for copy in range(int(rng.choice([0, 1, 1, 1, 2]))):
            jx, jy = rng.normal(0, 0.12 * w), rng.normal(0, 0.12 * h)
            sw, sh = np.exp(rng.normal(0, 0.12)), np.exp(rng.normal(0, 0.12))
            nw, nh = max(2, int(round(w * sw))), max(2, int(round(h * sh)))
            nx1 = int(round(x1 + jx)); ny1 = int(round(y1 + jy))
            score = round(float(rng.beta(5, 2)), 2)
            c = o["class"] if rng.random() > 0.08 else int(rng.integers(0, n_classes))
            detections.append((image_id, c, score, [nx1, ny1, nx1 + nw - 1, ny1 + nh - 1]))
    for _ in range(int(rng.integers(0, 4))):
        w, h = int(rng.integers(10, W // 2)), int(rng.integers(10, H // 2))
        x1 = int(rng.integers(1, W - w)); y1 = int(rng.integers(1, H - h))
        detections.append((image_id, int(rng.integers(0, n_classes)), round(float(rng.beta(2, 5)), 2),
                           [x1, y1, x1 + w - 1, y1 + h - 1]))
    return detections


def voc_expected(images, recs, detections, classes):
    """Expected AP per class for IoU 0.5 and 0.7, 11-point and all-point:
    - "faithful": voc_eval as written, np.argsort(-confidence) (numpy's default, not stable: its order
      of tied scores depends on the numpy version and the CPU's sort kernels);
    - "stable": ties in input order (np.argsort(kind="stable")), the rule Ocelli follows;
    - "untied": scores + index * 1e-7 (no ties left), faithful voc_eval; the Swift test adds the same."""
    imagenames = [im["id"] for im in images]
    expected = {"tp": [], "fp": [], "npos": []}
    for c, name in enumerate(classes):
        lines = [[d[0], d[2]] + d[3] for d in detections if d[1] == c]
        _, tp, fp, npos = voc_eval(recs, imagenames, lines, name)
        expected["tp"].append(tp); expected["fp"].append(fp); expected["npos"].append(npos)
    differing = []
    for thr in (0.5, 0.7):
        for metric, use07 in (("voc07", True), ("voc", False)):
            for variant in ("faithful", "stable", "untied"):
                aps = []
                for c, name in enumerate(classes):
                    lines = [[d[0], d[2] + (i * 1e-7 if variant == "untied" else 0)] + d[3]
                             for i, d in enumerate(detections) if d[1] == c]
                    aps.append(float(voc_eval(recs, imagenames, lines, name, ovthresh=thr, use_07_metric=use07,
                                              kind="stable" if variant == "stable" else None)[0]))
                expected["%s_%s_iou%d" % (metric, variant, round(thr * 100))] = aps
            f, st = expected["%s_faithful_iou%d" % (metric, round(thr * 100))], expected["%s_stable_iou%d" % (metric, round(thr * 100))]
            differing += ["%s@%.1f %s" % (metric, thr, classes[c]) for c in range(len(classes)) if abs(f[c] - st[c]) > 1e-12]
    expected["faithful_differs_from_stable"] = differing
    return expected


def voc_fixture(images, detections, classes, expected):
    """Ground truth in continuous pixels (xmin = x1 - 1, xmax = x2) and detections in COCO results format."""
    gt = [{"id": im["id"], "width": im["width"], "height": im["height"],
           "objects": [{"class": o["class"], "box": [o["voc"][0] - 1, o["voc"][1] - 1, o["voc"][2], o["voc"][3]],
                        "difficult": o["difficult"]} for o in im["objects"]]} for im in images]
    results = [{"image_id": d[0], "category_id": d[1],
                "bbox": [d[3][0] - 1, d[3][1] - 1, d[3][2] - d[3][0] + 1, d[3][3] - d[3][1] + 1], "score": d[2]}
               for d in detections]
    return {"classes": classes, "images": gt, "detections": results, "expected": expected}


def make_voc(rng):
    classes = ["circle", "square", "triangle", "star"]
    images, detections = [], []
    recs = {}
    for n in range(48):
        image_id = "%06d" % (n * 3 + 5)
        W, H = int(rng.integers(200, 500)), int(rng.integers(200, 500))
        objects = []
        for _ in range(int(rng.integers(1, 6))):
            c = int(rng.integers(0, len(classes)))
            w, h = int(rng.integers(12, W // 2)), int(rng.integers(12, H // 2))
            x1 = int(rng.integers(1, W - w)); y1 = int(rng.integers(1, H - h))
            x2, y2 = x1 + w - 1, y1 + h - 1
            objects.append({"class": c, "voc": [x1, y1, x2, y2], "difficult": bool(rng.random() < 0.12)})
        images.append({"id": image_id, "width": W, "height": H, "objects": objects})
        recs[image_id] = [{"name": classes[o["class"]], "bbox": o["voc"], "difficult": int(o["difficult"])} for o in objects]

        detections += noisy_detections(rng, image_id, objects, W, H, len(classes))
    # A detection with IoU exactly 0.5 with its object, which VOC does not count (ovmax > 0.5 is strict):
    # object VOC [11, 11, 40, 30] is 30 x 20 = 600 px; detection [11, 11, 70, 30] is 60 x 20 = 1200 px
    # and holds it: 600 / 1200.
    images[0]["objects"].append({"class": 3, "voc": [11, 11, 40, 30], "difficult": False})
    recs[images[0]["id"]].append({"name": classes[3], "bbox": [11, 11, 40, 30], "difficult": 0})
    detections.append((images[0]["id"], 3, 0.97, [11, 11, 70, 30]))
    # Shuffled: each class's list mixes images, and tied scores (two decimals) span images.
    order = rng.permutation(len(detections))
    detections = [detections[i] for i in order]

    expected = voc_expected(images, recs, detections, classes)
    write_json("voc_fixture.json", voc_fixture(images, detections, classes, expected))
    differing = expected["faithful_differs_from_stable"]
    print("voc: %d images, %d objects, %d detections, mAP07 %.4f, mAP %.4f; numpy's unstable tie order changes: %s" % (
        len(images), sum(len(i["objects"]) for i in images), len(detections),
        np.mean(expected["voc07_faithful_iou50"]), np.mean(expected["voc_faithful_iou50"]), ", ".join(differing) or "nothing"))


# ----------------------------------------------------------------------------------------------
# (b) COCO: pycocotools itself.

def make_coco(rng):
    classes = ["person", "car", "dog"]
    images, annotations, results = [], [], []
    ann_id = 1
    ids = rng.permutation(np.arange(100, 100 + 7 * 40, 7))[:40]  # unsorted, non-contiguous ids
    for image_id in ids:
        image_id = int(image_id)
        W, H = 640, 480
        images.append({"id": image_id, "width": W, "height": H, "file_name": "%012d.jpg" % image_id})
        objects = []
        for _ in range(int(rng.integers(0, 7))):
            size = rng.choice(["small", "medium", "large"])
            side = {"small": rng.uniform(6, 30), "medium": rng.uniform(34, 90), "large": rng.uniform(100, 300)}[size]
            aspect = np.exp(rng.normal(0, 0.3))
            w, h = side * aspect, side / aspect
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            if rng.random() < 0.3:  # integer boxes: IoUs land exactly on thresholds sometimes
                x, y, w, h = round(x), round(y), max(1, round(w)), max(1, round(h))
            else:
                x, y, w, h = (round(float(v), 2) for v in (x, y, w, h))
            crowd = int(rng.random() < 0.1)
            c = int(rng.integers(0, len(classes)))
            # COCO's area is the segmentation's: a bit less than the box's.
            area = round(float(w * h * rng.uniform(0.6, 1.0)), 2)
            annotations.append({"id": ann_id, "image_id": image_id, "category_id": c, "bbox": [x, y, w, h],
                                "area": area, "iscrowd": crowd})
            ann_id += 1
            objects.append((c, x, y, w, h, crowd))
        for (c, x, y, w, h, crowd) in objects:
            copies = int(rng.choice([0, 1, 1, 2, 3])) if not crowd else int(rng.integers(1, 4))
            for _ in range(copies):
                nx, ny = x + rng.normal(0, 0.1 * w), y + rng.normal(0, 0.1 * h)
                nw, nh = w * np.exp(rng.normal(0, 0.1)), h * np.exp(rng.normal(0, 0.1))
                if crowd:  # pieces of the crowd region
                    nw, nh = w * rng.uniform(0.2, 0.5), h * rng.uniform(0.2, 0.5)
                    nx, ny = x + rng.uniform(0, w - nw), y + rng.uniform(0, h - nh)
                cc = c if rng.random() > 0.1 else int(rng.integers(0, len(classes)))
                results.append({"image_id": image_id, "category_id": cc,
                                "bbox": [round(float(v), 2) for v in (nx, ny, nw, nh)],
                                "score": round(float(rng.beta(4, 2)), 2)})
        if objects and objects[0][5] == 0 and rng.random() < 0.3:  # an exact copy of an integer box
            c, x, y, w, h, _ = objects[0]
            results.append({"image_id": image_id, "category_id": c, "bbox": [x, y, w, h], "score": 0.5})
        for _ in range(int(rng.integers(0, 5))):
            w, h = rng.uniform(5, 200), rng.uniform(5, 200)
            results.append({"image_id": image_id, "category_id": int(rng.integers(0, len(classes))),
                            "bbox": [round(float(v), 2) for v in (rng.uniform(0, W - w), rng.uniform(0, H - h), w, h)],
                            "score": round(float(rng.beta(2, 4)), 2)})
    # Two images with more than 100 detections of one class: maxDets matters.
    for image_id in (int(ids[1]), int(ids[2])):
        gts = [a for a in annotations if a["image_id"] == image_id and not a["iscrowd"]]
        for k in range(120):
            g = gts[k % len(gts)] if gts else None
            if g is not None and k % 3 == 0:
                x, y, w, h = g["bbox"]
                bbox = [round(x + rng.normal(0, 2), 2), round(y + rng.normal(0, 2), 2), w, h]
                c = g["category_id"]
            else:
                w, h = rng.uniform(5, 150), rng.uniform(5, 150)
                bbox = [round(float(v), 2) for v in (rng.uniform(0, 640 - w), rng.uniform(0, 480 - h), w, h)]
                c = 0
            results.append({"image_id": image_id, "category_id": c, "bbox": bbox, "score": round(float(rng.random()), 2)})
    order = rng.permutation(len(results))
    results = [results[i] for i in order]
    gt = {"images": images, "annotations": annotations,
          "categories": [{"id": i, "name": n} for i, n in enumerate(classes)]}

    coco_gt = COCO()
    coco_gt.dataset = json.loads(json.dumps(gt))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(json.loads(json.dumps(results)))
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ev.summarize()
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    recall = ev.eval["recall"]        # [T, K, A, M]
    per_class = []
    for k in range(len(classes)):
        p = precision[:, :, k, 0, 2]
        per_class.append(float(np.mean(p[p > -1])) if (p > -1).any() else -1.0)
    # Mean over recall thresholds of precision, per (t, k, a, m): pins the whole array down.
    mean_precision = np.where((precision > -1).all(axis=1), precision.mean(axis=1), -1.0)
    expected = {"stats": [float(v) for v in ev.stats], "summary": out.getvalue().rstrip("\n").split("\n"),
                "per_class_ap": per_class,
                "recall": [float(v) for v in recall.ravel()],
                "mean_precision": [float(v) for v in mean_precision.ravel()]}
    write_json("coco_fixture.json", {"ground_truth": gt, "detections": results, "expected": expected})
    areas = [a["area"] for a in annotations]
    print("coco: %d images, %d objects (%d crowd; %d small, %d medium, %d large), %d detections" % (
        len(images), len(annotations), sum(a["iscrowd"] for a in annotations),
        sum(a < 32 ** 2 for a in areas), sum(32 ** 2 <= a <= 96 ** 2 for a in areas), sum(a > 96 ** 2 for a in areas),
        len(results)))
    print(out.getvalue().rstrip())


# ----------------------------------------------------------------------------------------------
# (c) Anchors: Darknet's calc_anchors (AlexeyAB detector.c) with do_kmeans / random_centers /
# kmeans_expectation / kmeans_maximization (matrix.c), in float32, rand() replaced by numpy's generator.

def darknet_calc_anchors(boxes, k, rng):
    data = boxes.astype(np.float32)
    n = len(data)

    def dist(x, y):
        mw = x[0] if x[0] < y[0] else y[0]
        mh = x[1] if x[1] < y[1] else y[1]
        inter = np.float32(mw * mh)
        s = np.float32(x[0] * x[1] + y[0] * y[1])
        un = np.float32(s - inter)
        return np.float32(1) - np.float32(inter / un)

    # random_centers: sample() is a Fisher-Yates shuffle; the first k rows.
    s = list(range(n))
    for i in range(n - 1, -1, -1):
        j = int(rng.integers(0, i + 1))
        s[i], s[j] = s[j], s[i]
    centers = np.array([data[s[i]] for i in range(k)], dtype=np.float32)
    assignments = np.zeros(n, dtype=int)

    def maximization():
        old = centers.copy()
        centers[:] = 0
        counts = np.zeros(k, dtype=int)
        for i in range(n):
            counts[assignments[i]] += 1
            centers[assignments[i]] += data[i]
        for i in range(k):
            if counts[i]:
                centers[i] /= np.float32(counts[i])
        for i in range(k):
            for j in range(2):
                if centers[i][j] == 0:
                    centers[i][j] = old[i][j]

    def expectation():
        converged = True
        for i in range(n):
            best, best_d = 0, dist(data[i], centers[0])
            for j in range(k):
                d = dist(data[i], centers[j])
                if d < best_d:
                    best_d, best = d, j
            if best != assignments[i]:
                converged = False
            assignments[i] = best
        return converged

    if k == 1:
        maximization()
    it = 0
    while it < 1000 and not expectation():
        maximization()
        it += 1
    # avg IoU as calc_anchors prints it (float32 sum), as a fraction rather than a percentage.
    avg = np.float32(0)
    for i in range(n):
        bw, bh = data[i]
        best_d, best_iou = np.float32(np.finfo(np.float32).max), np.float32(0)
        for j in range(k):
            aw, ah = centers[j]
            inter = np.float32(min(bw, aw) * min(bh, ah))
            union = np.float32(bw * bh + aw * ah - inter)
            iou = np.float32(inter / union)
            if np.float32(1) - iou < best_d:
                best_d, best_iou = np.float32(1) - iou, iou
        avg = np.float32(avg + best_iou)
    order = np.argsort(centers[:, 0] * centers[:, 1], kind="stable")
    return float(avg / np.float32(n)), centers[order].tolist(), it


def make_anchors(rng):
    # Relative (w, h) of boxes from a few object shapes (tall, wide, square, small, large), YOLO-style.
    kinds = [(0.05, 0.08), (0.08, 0.2), (0.15, 0.35), (0.35, 0.2), (0.5, 0.6), (0.25, 0.25), (0.8, 0.75), (0.6, 0.3)]
    rel = []
    for _ in range(600):
        w, h = kinds[int(rng.integers(0, len(kinds)))]
        f = np.exp(rng.normal(0, 0.4, size=2))
        rel.append([min(1.0, w * f[0]), min(1.0, h * f[1])])
    rel = np.round(np.array(rel), 6)
    boxes = rel * 416.0
    runs = [darknet_calc_anchors(boxes, 5, np.random.default_rng(100 + s)) for s in range(10)]
    first = runs[0]
    write_json("anchors_fixture.json", {
        "relative_sizes": rel.tolist(), "size": 416, "k": 5,
        "darknet_mean_iou": first[0], "darknet_anchors": first[1],
        "darknet_mean_iou_best_of_10": max(r[0] for r in runs),
        "darknet_mean_iou_all_runs": [r[0] for r in runs]})
    print("anchors: %d boxes; Darknet k=5 mean IoU %.4f (run 0), best of 10 runs %.4f; anchors %s" % (
        len(rel), first[0], max(r[0] for r in runs), ",  ".join("%d,%d" % (round(a), round(b)) for a, b in first[1])))


# ----------------------------------------------------------------------------------------------
# (d) NMS: OpenCV's NMSBoxes on 500 random boxes, checked against torchvision's CPU kernel
# (torchvision/csrc/ops/cpu/nms_kernel.cpp) transcribed.

def torchvision_nms(boxes, scores, thr):
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for _i in range(len(order)):
        i = order[_i]
        if suppressed[i]:
            continue
        keep.append(int(i))
        for _j in range(_i + 1, len(order)):
            j = order[_j]
            if suppressed[j]:
                continue
            xx1, yy1 = max(x1[i], x1[j]), max(y1[i], y1[j])
            xx2, yy2 = min(x2[i], x2[j]), min(y2[i], y2[j])
            w, h = max(0.0, xx2 - xx1), max(0.0, yy2 - yy1)
            inter = w * h
            ovr = inter / (areas[i] + areas[j] - inter)
            if ovr > thr:
                suppressed[j] = True
    return keep


def make_nms(rng):
    n = 500
    xy = rng.uniform(0, 600, size=(n, 2))
    wh = rng.uniform(8, 140, size=(n, 2))
    boxes = np.round(np.concatenate([xy, xy + wh], axis=1), 3)
    scores = np.round(rng.random(n), 6)
    scores[scores == 0] = 1e-6
    assert len(set(scores.tolist())) == n, "distinct scores keep the order unambiguous"
    out = {"boxes": boxes.tolist(), "scores": scores.tolist(), "cases": []}
    for thr in (0.3, 0.5, 0.7):
        rects = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
        cv = [int(i) for i in np.array(cv2.dnn.NMSBoxes(rects, scores.tolist(), 0.0, thr)).ravel()]
        tv = torchvision_nms(boxes, scores, thr)
        assert cv == tv, "OpenCV and the torchvision transcription disagree at %g" % thr
        out["cases"].append({"iou_threshold": thr, "keep": cv})
        print("nms: threshold %.1f keeps %d of %d (OpenCV == torchvision kernel)" % (thr, len(cv), n))
    classes = rng.integers(0, 4, size=n)
    # Per class (batched): OpenCV's NMSBoxesBatched.
    rects = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
    batched = [int(i) for i in np.array(cv2.dnn.NMSBoxesBatched(rects, scores.tolist(), classes.tolist(), 0.0, 0.5)).ravel()]
    out["classes"] = classes.tolist()
    out["batched_keep_0_5"] = sorted(batched, key=lambda i: -scores[i])
    write_json("nms_fixture.json", out)


# ----------------------------------------------------------------------------------------------
# (e) The digits data set's val split (../shared/tools/make_digits_detection.py, the recipe
# `ocelli datasets digits` follows): VOC and COCO numbers on random detections over its first 60
# images, and Darknet's anchors on the boxes of 300 images.

def make_digits(rng):
    import shutil
    import subprocess
    import sys
    import tempfile
    import xml.etree.ElementTree as ET
    shared = ROOT.parent / "shared"
    out = pathlib.Path(tempfile.mkdtemp(prefix="digits-val-"))
    subprocess.run([sys.executable, str(shared / "tools" / "make_digits_detection.py"), "--mnist", str(shared / "data" / "mnist"),
                    "--out", str(out), "--split", "val", "--count", "300", "--seed", "1"], check=True, capture_output=True)
    classes = (out / "labels.txt").read_text().split()
    ids = (out / "ImageSets" / "Main" / "val.txt").read_text().split()
    all_images = []
    for image_id in ids:
        root = ET.parse(out / "Annotations" / (image_id + ".xml")).getroot()
        W, H = int(root.find("size/width").text), int(root.find("size/height").text)
        objects = []
        for o in root.findall("object"):
            bb = o.find("bndbox")
            objects.append({"class": classes.index(o.find("name").text),
                            "voc": [int(bb.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")],
                            "difficult": bool(int(o.find("difficult").text))})
        all_images.append({"id": image_id, "width": W, "height": H, "objects": objects})
    shutil.rmtree(out)
    images = all_images[:60]
    recs = {im["id"]: [{"name": classes[o["class"]], "bbox": o["voc"], "difficult": int(o["difficult"])} for o in im["objects"]]
            for im in images}
    detections = []
    for im in images:
        detections += noisy_detections(rng, im["id"], im["objects"], im["width"], im["height"], len(classes))
    order = rng.permutation(len(detections))
    detections = [detections[i] for i in order]
    expected = voc_expected(images, recs, detections, classes)
    fixture = voc_fixture(images, detections, classes, expected)

    # COCO on the same boxes: image ids 1…60 in val.txt order, category ids = class indices.
    gt = {"images": [{"id": n + 1, "width": im["width"], "height": im["height"], "file_name": im["id"] + ".png"}
                     for n, im in enumerate(images)],
          "annotations": [], "categories": [{"id": k, "name": c} for k, c in enumerate(classes)]}
    for n, im in enumerate(images):
        for o in im["objects"]:
            x1, y1, x2, y2 = o["voc"]
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": n + 1, "category_id": o["class"],
                                      "bbox": [x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1],
                                      "area": (x2 - x1 + 1) * (y2 - y1 + 1), "iscrowd": 0})
    number = {im["id"]: n + 1 for n, im in enumerate(images)}
    results = [dict(r, image_id=number[r["image_id"]]) for r in fixture["detections"]]
    coco_gt = COCO()
    coco_gt.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        ev.summarize()
    fixture["coco_expected"] = {"stats": [float(v) for v in ev.stats], "summary": summary.getvalue().rstrip("\n").split("\n")}

    # Anchors: (w, h) of every box of the 300 images, relative to the image, for a 416 x 416 input.
    rel = np.array([[(o["voc"][2] - o["voc"][0] + 1) / im["width"], (o["voc"][3] - o["voc"][1] + 1) / im["height"]]
                    for im in all_images for o in im["objects"]])
    runs = [darknet_calc_anchors(rel * 416.0, 5, np.random.default_rng(200 + s)) for s in range(10)]
    fixture["anchors"] = {"relative_sizes": rel.tolist(), "size": 416, "k": 5, "darknet_mean_iou": runs[0][0],
                          "darknet_mean_iou_best_of_10": max(r[0] for r in runs)}
    write_json("digits_fixture.json", fixture)
    print("digits val: %d images (eval), %d objects, %d detections, VOC07 mAP %.4f, COCO AP %.4f; "
          "anchors: %d boxes, Darknet k=5 mean IoU %.4f (best of 10: %.4f); numpy tie order changes: %s" % (
              len(images), sum(len(i["objects"]) for i in images), len(detections),
              np.mean(expected["voc07_faithful_iou50"]), ev.stats[0], len(rel), runs[0][0],
              max(r[0] for r in runs), ", ".join(expected["faithful_differs_from_stable"]) or "nothing"))


if __name__ == "__main__":
    make_voc(np.random.default_rng(6))
    make_coco(np.random.default_rng(7))
    make_anchors(np.random.default_rng(8))
    make_nms(np.random.default_rng(9))
    make_digits(np.random.default_rng(10))
