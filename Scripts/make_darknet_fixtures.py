#!/usr/bin/env python3
"""Reference outputs of Darknet networks from OpenCV's Darknet importer, for OcelliDarknetTests.

OpenCV (`cv2.dnn.readNetFromDarknet`, opencv-python-headless < 5) is the reference. Photos and cfg
files come from the repository's Data/images and Data/cfg; only the real yolov3-tiny weights live
outside it, in $OCELLI_MODELS/yolov3-tiny/yolov3-tiny.weights (else ../shared/models beside the
repository).

1. yolov3-tiny with the real weights on every photo in Data/images: the input blob (blobFromImage:
   OpenCV's bilinear resize to 416x416, RGB, /255), both heads' raw outputs (the linear
   convolutions feeding [yolo]) sampled at fixed positions plus every channel's sum, and the
   detections of OpenCV's pipeline (class scores objectness x sigmoid(class) > threshold 0.25,
   per-class NMS at IoU 0.45 with NMSBoxesBatched, boxes in image pixels). Without the real
   weights this entry is copied from the existing fixture (with a warning).
2. yolov3-tiny with synthetic weights (below) on dog.jpg and horses.jpg: the same as 1, plus the
   [yolo] layers' decoded rows (OpenCV's output: x, y, w, h relative to the image, objectness,
   class scores zeroed at or below 0.2) sampled. Random weights make objectness about 0.5, so tens
   of thousands of class scores pass 0.25; the threshold is picked per photo and recorded: of 0.8,
   0.8025, ... 0.9875, the one keeping 10 to 40 detections whose decisions are furthest from
   flipping. Its `margins`, also recorded: the nearest class score to the threshold, the nearest
   IoU of two same-class candidates to 0.45, and the smallest score difference between two
   same-class candidates that overlap by more than 0.45 or are both kept.
3. yolov2-tiny-voc.cfg and yolov2-voc.cfg with synthetic weights on dog.jpg: the region input
   sampled and summed per channel, and the region layer's decoded rows (OpenCV's detection_out)
   sampled.

Synthetic weights: the floats after the header come from one splitmix64 stream, u_k in [0, 1)
(the top 24 bits of splitmix64(k), k = 0, 1, 2, ... over the whole file), mapped by what the
float is: biases (u - .5) * .2, scales .5 + u, rolling mean (u - .5) * .2, rolling variance .5 + u,
kernel weights (u - .5) * 2 * sqrt(6 / fan_in) with fan_in = size * size * channels / groups.
Computed in float64, stored as float32. Header: major 0, minor 2, revision 0, seen 0 (uint64).

Usage: [OCELLI_MODELS=/path/to/models] /path/to/venv/bin/python Scripts/make_darknet_fixtures.py
  (needs numpy and "opencv-python-headless<5", e.g. in a venv outside the repository;
  writes Tests/OcelliDarknetTests/Fixtures/opencv_reference.json)
"""
import json, os, struct, sys, tempfile
import numpy as np
import cv2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, "Data", "images")
CFG = os.path.join(ROOT, "Data", "cfg")
MODELS = os.environ.get("OCELLI_MODELS") or os.path.join(ROOT, "..", "shared", "models")
OUT = os.path.join(ROOT, "Tests", "OcelliDarknetTests", "Fixtures")
SAMPLES = 1000


def splitmix_uniform(start, n):
    k = np.arange(start, start + n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (k + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def parse_cfg(path):
    sections = []
    for line in open(path):
        line = "".join(line.split())
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            sections.append((line[1:-1], {}))
        else:
            k, v = line.split("=", 1)
            sections[-1][1].setdefault(k, v)
    return sections


def synthetic_weights(cfg_path, path):
    """Writes the synthetic weights for a cfg with conv layers only (the YOLOv2 cfgs)."""
    sections = parse_cfg(cfg_path)
    net = sections[0][1]
    c = int(net["channels"])
    h, w = int(net["height"]), int(net["width"])
    chans = []  # output channels per layer index
    floats = []
    k = 0

    def take(n, f):
        nonlocal k
        u = splitmix_uniform(k, n)
        k += n
        floats.append(f(u).astype(np.float32))

    for i, (kind, o) in enumerate(sections[1:]):
        if kind == "convolutional":
            n = int(o.get("filters", 1)); size = int(o.get("size", 1)); groups = int(o.get("groups", 1))
            take(n, lambda u: (u - .5) * .2)
            if int(o.get("batch_normalize", 0)):
                take(n, lambda u: .5 + u)
                take(n, lambda u: (u - .5) * .2)
                take(n, lambda u: .5 + u)
            fan_in = size * size * c // groups
            take(n * fan_in, lambda u: (u - .5) * 2 * np.sqrt(6.0 / fan_in))
            c = n
        elif kind == "route":
            layers = [int(x) for x in o["layers"].split(",") if x]
            layers = [i + l if l < 0 else l for l in layers]
            c = sum(chans[l] for l in layers)
        elif kind == "reorg":
            s = int(o.get("stride", 1)); c = c * s * s
        elif kind in ("maxpool", "region", "yolo", "upsample", "shortcut"):
            pass
        else:
            raise SystemExit(f"synthetic weights: unsupported section {kind}")
        chans.append(c)
    with open(path, "wb") as f:
        f.write(struct.pack("<iiiQ", 0, 2, 0, 0))
        for a in floats:
            f.write(a.tobytes())


def head_layers(net):
    names = list(net.getLayerNames())
    return [names[i - 1] for i, n in enumerate(names) if n.startswith("permute_")]


def sample(nhwc, rng):
    flat = nhwc.reshape(-1)
    idx = np.sort(rng.choice(flat.size, size=min(SAMPLES, flat.size), replace=False))
    return {"shape": list(nhwc.shape), "indices": idx.tolist(), "values": [float(v) for v in flat[idx]],
            "channel_sums": [float(v) for v in nhwc.reshape(-1, nhwc.shape[-1]).astype(np.float64).sum(0)]}


def blob_for(image_path, size):
    img = cv2.imread(image_path)
    blob = cv2.dnn.blobFromImage(img, 1 / 255.0, (size, size), swapRB=True, crop=False)
    return img, blob


def blob_summary(blob, rng):
    nhwc = blob.transpose(0, 2, 3, 1)[0]
    flat = nhwc.reshape(-1)
    idx = np.sort(rng.choice(flat.size, size=200, replace=False))
    return {"sum": float(flat.astype(np.float64).sum()), "indices": idx.tolist(), "values": [float(v) for v in flat[idx]]}


def opencv_detections(rows, width, height, thresh=0.25, nms=0.45):
    boxes, scores, classes = [], [], []
    for r in rows:
        for j, s in enumerate(r[5:]):
            if s > thresh:
                cx, cy, w, h = r[0] * width, r[1] * height, r[2] * width, r[3] * height
                boxes.append([float(cx - w / 2), float(cy - h / 2), float(w), float(h)])
                scores.append(float(s)); classes.append(j)
    if not boxes:
        return []
    keep = cv2.dnn.NMSBoxesBatched(boxes, scores, classes, thresh, nms)
    out = []
    for i in np.array(keep).reshape(-1):
        x, y, w, h = boxes[i]
        clip = lambda v, hi: min(max(v, 0.0), float(hi))
        out.append({"class_id": classes[i], "score": scores[i], "x1": clip(x, width), "y1": clip(y, height),
                    "x2": clip(x + w, width), "y2": clip(y + h, height)})
    return sorted(out, key=lambda d: (d["class_id"], -d["score"]))


def tiny_image_case(net, heads, name, rng):
    """One photo through yolov3-tiny: the case with its blob and both heads sampled, and the
    [yolo] layers' decoded rows (both heads', in output order) for the detections."""
    img, blob = blob_for(os.path.join(IMAGES, name), 416)
    net.setInput(blob)
    values = net.forward(heads + list(net.getUnconnectedOutLayersNames()))
    raw = [v.transpose(0, 2, 3, 1)[0] for v in values[:len(heads)]]
    rows = np.concatenate([v.reshape(-1, v.shape[-1]) for v in values[len(heads):]])
    case = {"image": name, "width": img.shape[1], "height": img.shape[0], "blob": blob_summary(blob, rng),
            "heads": [sample(r, rng) for r in raw]}
    return case, rows


def yolov3_tiny():
    cfg = os.path.join(CFG, "yolov3-tiny.cfg")
    weights = os.path.join(MODELS, "yolov3-tiny", "yolov3-tiny.weights")
    if not os.path.exists(weights):
        # Without the real weights the entry cannot be recomputed; keep the committed one so
        # the synthetic entries can still be regenerated.
        old = os.path.join(OUT, "opencv_reference.json")
        print(f"warning: {weights} not found (set OCELLI_MODELS); keeping yolov3_tiny from {old}", file=sys.stderr)
        return json.load(open(old))["yolov3_tiny"]
    net = cv2.dnn.readNetFromDarknet(cfg, weights)
    heads = head_layers(net)
    images = sorted(f for f in os.listdir(IMAGES) if f.endswith(".jpg"))
    result = []
    for name in images:
        case, rows = tiny_image_case(net, heads, name, np.random.default_rng(len(name)))
        case["threshold"] = 0.25
        case["detections"] = opencv_detections(rows, case["width"], case["height"], thresh=case["threshold"])
        result.append(case)
        print(name, [d["class_id"] for d in case["detections"]], file=sys.stderr)
    return {"cfg": "yolov3-tiny.cfg", "head_layers": heads, "images": result}


def iou(a, b):
    """IoU of two (x, y, w, h) boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(iw, 0.0) * max(ih, 0.0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def decision_margins(rows, thresh, dets, nms=0.45):
    """How far OpenCV's detections at `thresh` are from changing: the nearest class score to the
    threshold, the nearest IoU of two same-class candidates to `nms` (whether one drops the other),
    and the smallest score difference between two same-class candidates that overlap by more than
    `nms` (which one NMS keeps) or that are both kept (their order in the sorted list)."""
    scores = rows[:, 5:].astype(np.float64)
    nonzero = scores[scores > 0]
    margins = {"score": float(np.abs(nonzero - thresh).min()), "iou": 1.0, "order": 1.0}
    for c in range(scores.shape[1]):
        cand = np.flatnonzero(scores[:, c] > thresh)
        boxes = [(r[0] - r[2] / 2, r[1] - r[3] / 2, r[2], r[3]) for r in rows[cand, :4].astype(np.float64)]
        for i in range(len(cand)):
            for j in range(i + 1, len(cand)):
                overlap = iou(boxes[i], boxes[j])
                margins["iou"] = min(margins["iou"], abs(overlap - nms))
                if overlap > nms:
                    margins["order"] = min(margins["order"], abs(scores[cand[i], c] - scores[cand[j], c]))
        kept = sorted(d["score"] for d in dets if d["class_id"] == c)
        for a, b in zip(kept, kept[1:]):
            margins["order"] = min(margins["order"], b - a)
    return {k: float(v) for k, v in margins.items()}


def f32(v):
    """The shortest decimal that reads back as the same float32: half the characters of float64's."""
    return float(str(np.float32(v)))


def yolov3_tiny_random(names=("dog.jpg", "horses.jpg")):
    cfg = os.path.join(CFG, "yolov3-tiny.cfg")
    path = os.path.join(tempfile.gettempdir(), "yolov3-tiny.cfg.synthetic.weights")
    synthetic_weights(cfg, path)
    net = cv2.dnn.readNetFromDarknet(cfg, path)
    heads = head_layers(net)
    result = []
    for name in names:
        rng = np.random.default_rng(len(name))
        case, rows = tiny_image_case(net, heads, name, rng)
        w, h = case["width"], case["height"]
        best = None
        for t in np.round(np.arange(0.80, 0.99, 0.0025), 4):
            dets = opencv_detections(rows, w, h, thresh=float(t))
            if 10 <= len(dets) <= 40:
                m = decision_margins(rows, float(t), dets)
                if best is None or min(m.values()) > min(best[2].values()):
                    best = (float(t), dets, m)
        if best is None:
            raise SystemExit(f"{name}: no threshold in [0.8, 0.99) keeps 10 to 40 detections")
        t, dets, margins = best
        candidates = np.flatnonzero(rows[:, 5:].max(1) > t)
        idx = np.union1d(rng.choice(rows.shape[0], size=200, replace=False), candidates)
        case.update({"threshold": t, "margins": margins, "detections": dets,
                     "yolo_rows": {"count": int(rows.shape[0]), "indices": idx.tolist(),
                                   "rows": [[f32(v) for v in rows[i]] for i in idx]}})
        result.append(case)
        print(name, "synthetic: threshold", t, len(dets), "detections, margins", margins, file=sys.stderr)
    return {"cfg": "yolov3-tiny.cfg", "weights_bytes": os.path.getsize(path), "head_layers": heads,
            "nms_threshold": 0.45, "images": result}


def yolov2_random(cfg_name):
    cfg = os.path.join(CFG, cfg_name)
    path = os.path.join(tempfile.gettempdir(), f"{cfg_name}.synthetic.weights")
    synthetic_weights(cfg, path)
    net = cv2.dnn.readNetFromDarknet(cfg, path)
    heads = head_layers(net)
    img, blob = blob_for(os.path.join(IMAGES, "dog.jpg"), 416)
    net.setInput(blob)
    raw, rows = net.forward(heads + list(net.getUnconnectedOutLayersNames()))
    rng = np.random.default_rng(7)
    nhwc = raw.transpose(0, 2, 3, 1)[0]
    # Random rows, and rows where OpenCV kept a class score (its region layer runs NMS).
    scored = np.flatnonzero(rows[:, 5:].max(1) > 0)
    idx = np.union1d(rng.choice(rows.shape[0], size=250, replace=False), scored[:150])
    return {"cfg": cfg_name, "image": "dog.jpg", "weights_bytes": os.path.getsize(path), "head": sample(nhwc, rng),
            "region_rows": {"count": int(rows.shape[0]), "indices": idx.tolist(),
                            "rows": [[float(v) for v in rows[i]] for i in idx]}}


def main():
    os.makedirs(OUT, exist_ok=True)
    fixtures = {"opencv": cv2.__version__, "yolov3_tiny": yolov3_tiny(), "yolov3_tiny_random": yolov3_tiny_random(),
                "yolov2_tiny_voc": yolov2_random("yolov2-tiny-voc.cfg"), "yolov2_voc": yolov2_random("yolov2-voc.cfg")}
    with open(os.path.join(OUT, "opencv_reference.json"), "w") as f:
        json.dump(fixtures, f, separators=(",", ":"))
    print("wrote", os.path.join(OUT, "opencv_reference.json"), file=sys.stderr)


if __name__ == "__main__":
    main()
