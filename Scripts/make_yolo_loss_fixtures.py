#!/usr/bin/env python3
"""Reference values for Darknet's two YOLO training losses and keras-yolo2's YOLOv2 loss, from
independent numpy transcriptions of the original code, for the Swift implementations in
OcelliDetection.

Run from the repository root (only numpy is needed):

    python3 Scripts/make_yolo_loss_fixtures.py
    # without numpy: python3 -m venv /tmp/fxvenv && /tmp/fxvenv/bin/pip install numpy
    #                /tmp/fxvenv/bin/python3 Scripts/make_yolo_loss_fixtures.py

Made with numpy 2.4.6. Writes (each well under 400 KB):

    Tests/OcelliDetectionTests/Fixtures/yolo_losses.json        (Darknet [yolo] and [region])
    Tests/OcelliDetectionTests/Fixtures/keras_yolo2_loss.json   (keras-yolo2 custom_loss)

What is transcribed
-------------------
pjreddie/darknet at commit f6afaabcdf85f77e7aff2ec55c020c0e297c77f9 (src/yolo_layer.c last changed
in 481d9d98abc8ef1225feac45d04a9514935832bf):

* src/yolo_layer.c: forward_yolo_layer (the CPU path; the GPU path runs the same function on the
  GPU-activated output), get_yolo_box, delta_yolo_box, delta_yolo_class, entry_index.
* src/region_layer.c: forward_region_layer with coords = 4, softmax = 1, background = 0, no
  softmax_tree / map (the `hier` branches are left out), get_region_box, delta_region_box,
  delta_region_class (non-tree branch), entry_index.
* src/box.c: float_to_box, overlap, box_intersection, box_union, box_iou.
* src/activations.h logistic_activate (1./(1.+exp(-x)) in double, stored as float),
  src/blas.c softmax / softmax_cpu, src/utils.c mag_array and int_index,
  src/parser.c parse_yolo / parse_region (defaults: yolo max 90, ignore_thresh .5, truth_thresh 1;
  region thresh .5, all scales 1, rescore 0, bias_match 0, and the truth loops hard-code 30 boxes).

The arithmetic follows C's: float32 where Darknet stores floats, double where C promotes (exp/log
results, `x * double-literal`), sums accumulated sequentially in float32 in Darknet's order. The
iteration order is Darknet's (b, j, i, n for predictions, then b, t for truths, per batch item)
since later assignments overwrite earlier ones. `cost` is Darknet's
pow(mag_array(delta), 2) = Sigma delta^2 (a float32 sequential sum in NCHW order); note it is the
sum of the squared *deltas*, i.e. the scales enter squared, and there is no 1/2.

Sign convention
---------------
Darknet's `l.delta` is the NEGATIVE gradient of 1/2 * Sigma scale * (target - output)^2 with
respect to the layer's *activated* outputs (for the w/h entries the output is the raw logit), e.g.
delta_x = scale * (tx - sigmoid(x_logit)), delta_obj = 1 - sigmoid(o) or 0 - sigmoid(o).
* [yolo]: backward_yolo_layer adds l.delta to the previous layer's delta unchanged (no activation
  gradient), so for the logistic entries (x, y, objectness, classes) the delta is the negative
  gradient of (binary) cross-entropy with respect to the logits, and for w/h of the scaled L2.
* [region]: the class entries (softmax) likewise give the negative gradient of class_scale * CE
  with respect to the logits. BUT backward_region_layer_gpu multiplies the x, y and objectness
  deltas by the logistic gradient sigmoid * (1 - sigmoid) before passing them on (so these are
  L2-through-sigmoid gradients), and the CPU backward_region_layer is entirely commented out (a CPU
  build propagates nothing). The fixture's "delta" is l.delta as forward_region_layer leaves it,
  before any of that.

Fixture layout (yolo_losses.json)
---------------------------------
{"source", "yolo": [case...], "region": [case...]}; a case has "name", "batch", "grid_h", "grid_w",
"net_w", "net_h", "classes", "num" (anchors in the cfg), "anchors" (2*num: yolo in input pixels,
region in grid cells); yolo: "mask", "ignore_thresh", "truth_thresh"; region: "thresh",
"coord_scale", "object_scale", "noobject_scale", "class_scale", "rescore", "bias_match", "seen"
(the value of *net.seen that forward_region_layer compares with 12800; train_network_datum has
already added this batch to it). "input": raw logits, flat NHWC, index ((b*grid_h + j)*grid_w +
i)*C + c, C = A*(5 + classes), c = a*(5 + classes) + entry (0..3 x y w h, 4 objectness, 5.. classes),
A = len(mask) for yolo, num for region. Darknet's own layout is NCHW with the same channel
numbering; it is transposed when written. "truths": per batch item, [x, y, w, h, class] normalised
to the network input (centre x/y). "delta": Darknet's l.delta, NHWC like "input". "cost".
"stats": avg_iou/count, avg_cat/class_count ("class"), avg_obj/count ("obj"),
avg_anyobj/(w*h*A*batch) ("no_obj"), recall/count ("recall50"), recall75/count ("recall75"),
count; 0 where count is 0 (Darknet divides by zero). The region layer computes no recall75: its
value here uses the yolo definition (predicted box of the assigned anchor with IoU > .75).
Every float is written as the shortest decimal that reads back as the same float32.

Checked: the deltas, costs and stats of all six cases were compared with the real C (this commit's
src/yolo_layer.c, region_layer.c, box.c, activations.c, blas.c, utils.c, ... linked to a small
harness that fills a layer and a network and calls forward_yolo_layer / forward_region_layer):
bit-identical with gcc -O0; with Darknet's own -Ofast a few region deltas differ in the last bit
(<= 6e-8) and the cost in the 7th digit. Tests should compare with a relative tolerance (~1e-5).

Cases (seeded; logits N(0, 1.5) rounded to 3 decimals, a few slots "aimed" at a truth so that
IoUs pass the thresholds; nets 160x128, yolov3-tiny anchors scaled to it, yolo-voc anchors scaled
to a 5x4 grid):
* yolo tiny_mask345: 5x4 grid, mask 3,4,5, ignore .7: truths whose best anchor is outside the mask,
  two truths on one cell and anchor with different classes (delta_yolo_class's shortcut), ignored
  objectness.
* yolo tiny_mask012_empty_image: 10x8 grid, mask 0,1,2, ignore .5; batch item 1 has no truths.
* yolo mask234_truth_thresh: ignore .3, truth_thresh .6: the truth_thresh branch on assigned and on
  unassigned slots, then the class shortcut on those slots.
* region voc_seen0_rescore_biasmatch: yolo-voc's settings, seen 0 (prior regression on), rescore 1,
  bias_match 1, two truths on one cell and anchor.
* region seen20000_norescore_predmatch_empty_image: no prior, rescore 0, bias_match 0 (the anchor
  picked by the predicted shape differs from the shape match for several truths), other scales;
  batch item 1 has no truths.
* region seen12799_rescore_predmatch: the last `seen` with the prior, rescore 1, bias_match 0.

Quirks a reimplementation easily gets wrong (all reproduced here):
* [yolo] x, y are logistic, w, h raw; delta_x = scale*(tx - sigmoid) is applied to the logit as is.
* [yolo] the truth's anchor is matched over all `num` anchors (shape IoU, anchors / net size, first
  best); a truth whose best anchor is in another layer's mask is skipped here entirely (no count),
  but it still suppresses the no-object delta through the best-IoU test, which uses all truths.
* [yolo] delta_yolo_class: when the class block's first entry already has a nonzero delta (a
  second truth on the same cell and anchor, or the truth_thresh branch), only the true class entry
  is written: the targets become multi-label. avg_cat is still incremented.
* [yolo] truth_thresh branch: the box target is the best truth seen from the predicting cell, so
  tx = truth.x*w - i can be outside [0, 1]; its class delta does not touch avg_cat.
* both: the truth's cell is (int)(x*w) (no clamp); comparisons are strict (>), ties go to the first.
* both: the truth list ends at the first x == 0; [region] reads at most 30 (its `max` is unused).
* [region] softmax over the classes (every (b, anchor, cell) separately); delta_region_class is
  called with tag = !softmax = 0, so a later truth on the same slot rewrites the whole class block.
* [region] bias_match 0 picks the anchor by the *predicted* shape at the truth's cell.
* [region] prior regression (seen < 12800, counted in images, net.seen already incremented by
  this batch): every slot gets box deltas .01*(target - output) toward the cell centre and the
  anchor shape, later overwritten on assigned slots. Its w/h target is
  log(float(float(bias/w)*w)/bias), which for some anchors is 1.19e-7 instead of 0.
* [region] box scale coord_scale*(2 - w*h); objectness object_scale*(1 - p), or
  object_scale*(iou - p) with rescore, iou of the predicted box before the update.
* cost is Sigma delta^2 (not 1/2 Sigma scale*err^2).

keras-yolo2 (keras_yolo2_loss.json)
-----------------------------------
experiencor/keras-yolo2 at commit 8bc3fcdc123a5d6b9624ed4188e07b876b79dac5: frontend.py
YOLO.custom_loss (all of it, float32 like the TF graph; class_wt all ones as in YOLO.__init__),
with y_true / true_boxes built like preprocessing.py BatchGenerator.__getitem__ (x, y, w, h in grid
units, x and y absolute (cell index + offset, despite the comment "relative position to the
containing cell"), at the responsible cell and anchor, the anchor by shape IoU, first best; the
class one-hot *accumulates* when two objects land on one cell and anchor; true_boxes is a ring
buffer of max_boxes boxes per image).
Checked: the real custom_loss source, exec'd under tensorflow 2.21 tf.compat.v1 graph mode and run
seen + 1 times, gives the same five numbers within 2e-7 relative.

{"source", "cases": [case...]}; a case has "name", "batch", "grid_h", "grid_w" (equal: see below),
"boxes" (anchors), "classes", "anchors" (2*boxes, grid cells), "object_scale", "no_object_scale",
"coord_scale", "class_scale", "warmup_batches", "seen" (batches the loss has already been
evaluated on), "max_boxes", "y_pred" (raw network output, flat [batch, grid_h, grid_w, boxes,
5 + classes]), "y_true" (same shape), "true_boxes" (flat [batch, 1, 1, 1, max_boxes, 4], grid
units), "loss_xy", "loss_wh", "loss_conf", "loss_class", "loss".
Cases: "warmup" (config.json's scales 5/1/1/1, warmup_batches 3, seen 2: the last warm-up batch;
two objects on one cell and anchor so y_true has two class bits) and "after_warmup_buffer_wraps"
(scales 4/.5/2/1.5, seen 3: the first batch after warm-up; 5 objects in a 4-box buffer).

Quirks:
* Warm-up test: the graph's tf.Variable `seen` is assign_add'ed first and compared
  `seen + 1 < warmup_batches + 1`: warm-up while (batches before this one) < warmup_batches. The
  variable counts every evaluation of the loss, validation batches too (train() puts the
  validation batches into warmup_batches for that reason).
* During warm-up the returned loss has a constant + 10 ("loss" includes it; the parts do not), and
  coord_mask becomes 1 on every anchor (coord_scale is NOT applied, not even on responsible
  anchors); non-responsible anchors regress to (cell + 0.5, anchor w/h), responsible ones keep
  their true box. nb_coord_box is then batch*H*W*B.
* loss_wh is on raw w/h in grid units (no sqrt); xy and wh are absolute grid coordinates.
* The confidence target is the IoU of the predicted and the y_true box at that slot (not 1), and
  TF differentiates through it (no stop_gradient); the no-object mask uses the best IoU with the
  true_boxes *buffer*, strict < 0.6, times (1 - y_true conf); responsible anchors get
  object_scale whatever their IoU. nb_conf_box counts conf_mask > 0.
* Classes: argmax of y_true's class bits (the lowest index on a collision), sparse softmax CE,
  normalised by the number of responsible slots (+1e-6) and not halved; xy, wh, conf are halved.
* cell_grid is tile/reshape for x then a transpose for y: it only works for square grids
  (grid_h == grid_w, always so in keras-yolo2 since its input is square).

"""
import json
import math
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "OcelliDetectionTests" / "Fixtures"
DARKNET_COMMIT = "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9"
KERAS_YOLO2_COMMIT = "8bc3fcdc123a5d6b9624ed4188e07b876b79dac5"

F = np.float32
# NEP 50 promotion (float32 op Python scalar -> float32) is assumed.
assert int(np.__version__.split(".")[0]) >= 2


# ----------------------------------------------------------------------------------------------
# Writing numbers
# ----------------------------------------------------------------------------------------------

def num(x):
    """A float32 as the Python float of its shortest round-tripping decimal."""
    x32 = F(x)
    assert np.isfinite(x32), x
    v = float(str(x32))
    assert F(v) == x32, (x32, v)
    return v


def nums(a):
    return [num(v) for v in np.asarray(a, dtype=F).ravel()]


# ----------------------------------------------------------------------------------------------
# src/box.c, src/activations.h, src/blas.c, src/utils.c
# ----------------------------------------------------------------------------------------------

def overlap(x1, w1, x2, w2):
    l1 = x1 - w1 / 2
    l2 = x2 - w2 / 2
    left = l1 if l1 > l2 else l2
    r1 = x1 + w1 / 2
    r2 = x2 + w2 / 2
    right = r1 if r1 < r2 else r2
    return F(right - left)


def box_intersection(a, b):
    w = overlap(a[0], a[2], b[0], b[2])
    h = overlap(a[1], a[3], b[1], b[3])
    if w < 0 or h < 0:
        return F(0)
    return F(w * h)


def box_union(a, b):
    i = box_intersection(a, b)
    return F(a[2] * a[3] + b[2] * b[3] - i)


def box_iou(a, b):
    """Boxes are tuples of float32 (x, y, w, h), centre-based."""
    return F(box_intersection(a, b) / box_union(a, b))


def logistic(x):
    """logistic_activate: 1./(1. + exp(-x)) evaluated in double, stored as float."""
    return (1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))).astype(F)


def softmax(values, temp=F(1)):
    """blas.c softmax on one group (n values), float sum in order, exp in double."""
    largest = F(-3.4028234663852886e38)
    for v in values:
        if v > largest:
            largest = v
    out = []
    s = F(0)
    for v in values:
        e = F(math.exp(float(v / temp - largest / temp)))
        s = F(s + e)
        out.append(e)
    return [F(e / s) for e in out]


def darknet_cost(delta_nchw):
    """pow(mag_array(delta, n), 2): float sum of squares in memory order, sqrt, squared."""
    sq = (delta_nchw.ravel() * delta_nchw.ravel()).astype(F)
    s = np.add.accumulate(sq, dtype=F)[-1] if sq.size else F(0)
    mag = F(math.sqrt(float(s)))
    return F(float(mag) ** 2)


def truth_list(truths, max_boxes):
    """net.truth for one image as Darknet reads it: up to max_boxes, ending at the first x == 0."""
    out = []
    for t in truths[:max_boxes]:
        t = [F(v) for v in t]
        if not t[0]:
            break
        out.append(t)
    return out


# ----------------------------------------------------------------------------------------------
# src/yolo_layer.c
# ----------------------------------------------------------------------------------------------

def get_yolo_box(x, biases, n, b, a, i, j, lw, lh, w, h):
    """x is the layer output as (batch, A, E, lh, lw); n is the anchor (bias) index, a the slot."""
    return (F((i + x[b, a, 0, j, i]) / lw),
            F((j + x[b, a, 1, j, i]) / lh),
            F(math.exp(float(x[b, a, 2, j, i])) * float(biases[2 * n]) / w),
            F(math.exp(float(x[b, a, 3, j, i])) * float(biases[2 * n + 1]) / h))


def delta_yolo_box(truth, x, biases, n, b, a, i, j, lw, lh, w, h, delta, scale):
    pred = get_yolo_box(x, biases, n, b, a, i, j, lw, lh, w, h)
    iou = box_iou(pred, truth)
    tx = F(truth[0] * lw - i)
    ty = F(truth[1] * lh - j)
    tw = F(math.log(float(F(F(truth[2] * w) / biases[2 * n]))))
    th = F(math.log(float(F(F(truth[3] * h) / biases[2 * n + 1]))))
    delta[b, a, 0, j, i] = F(scale * (tx - x[b, a, 0, j, i]))
    delta[b, a, 1, j, i] = F(scale * (ty - x[b, a, 1, j, i]))
    delta[b, a, 2, j, i] = F(scale * (tw - x[b, a, 2, j, i]))
    delta[b, a, 3, j, i] = F(scale * (th - x[b, a, 3, j, i]))
    return iou


def delta_yolo_class(output, delta, b, a, j, i, cls, classes, avg_cat, trace):
    """Returns the new avg_cat (None when the caller passes no avg_cat pointer)."""
    if delta[b, a, 5, j, i]:  # `if (delta[index])`: only the first class entry is looked at
        trace["class_shortcut"] += 1
        delta[b, a, 5 + cls, j, i] = F(1 - output[b, a, 5 + cls, j, i])
        if avg_cat is not None:
            avg_cat = F(avg_cat + output[b, a, 5 + cls, j, i])
        return avg_cat
    for n in range(classes):
        delta[b, a, 5 + n, j, i] = F((1 if n == cls else 0) - output[b, a, 5 + n, j, i])
        if n == cls and avg_cat is not None:
            avg_cat = F(avg_cat + output[b, a, 5 + n, j, i])
    return avg_cat


def forward_yolo_layer(inp, truths, cfg):
    """inp: raw input (batch, A, 5 + classes, h, w) float32 (Darknet's NCHW order)."""
    batch, A, E, lh, lw = inp.shape
    classes = cfg["classes"]
    mask = cfg["mask"]
    total = cfg["num"]
    biases = np.asarray(cfg["anchors"], dtype=F)
    netw, neth = cfg["net_w"], cfg["net_h"]
    ignore_thresh = F(cfg["ignore_thresh"])
    truth_thresh = F(cfg["truth_thresh"])
    assert E == 5 + classes and A == len(mask)

    out = inp.copy()
    out[:, :, 0:2] = logistic(inp[:, :, 0:2])
    out[:, :, 4:] = logistic(inp[:, :, 4:])
    delta = np.zeros_like(inp)

    trace = dict(ignored=0, truth_thresh=0, truth_thresh_not_assigned=0, class_shortcut=0,
                 skipped_truths=0, assigned=set(), same_anchor_twice=0)
    avg_iou = recall = recall75 = avg_cat = avg_obj = avg_anyobj = F(0)
    count = class_count = 0
    tt_slots = set()
    for b in range(batch):
        T = truth_list(truths[b], 90)
        for j in range(lh):
            for i in range(lw):
                for n in range(A):
                    pred = get_yolo_box(out, biases, mask[n], b, n, i, j, lw, lh, netw, neth)
                    best_iou = F(0)
                    best_t = 0
                    for t, truth in enumerate(T):
                        iou = box_iou(pred, truth)
                        if iou > best_iou:
                            best_iou = iou
                            best_t = t
                    avg_anyobj = F(avg_anyobj + out[b, n, 4, j, i])
                    delta[b, n, 4, j, i] = F(0 - out[b, n, 4, j, i])
                    if best_iou > ignore_thresh:
                        delta[b, n, 4, j, i] = F(0)
                        trace["ignored"] += 1
                    if best_iou > truth_thresh:
                        trace["truth_thresh"] += 1
                        tt_slots.add((b, n, j, i))
                        delta[b, n, 4, j, i] = F(1 - out[b, n, 4, j, i])
                        cls = int(T[best_t][4])
                        delta_yolo_class(out, delta, b, n, j, i, cls, classes, None, trace)
                        truth = T[best_t]
                        delta_yolo_box(truth, out, biases, mask[n], b, n, i, j, lw, lh, netw, neth,
                                       delta, F(2 - truth[2] * truth[3]))
        assigned = []
        for t, truth in enumerate(T):
            best_iou = F(0)
            best_n = 0
            i = int(F(truth[0] * lw))
            j = int(F(truth[1] * lh))
            truth_shift = (F(0), F(0), truth[2], truth[3])
            for n in range(total):
                pred = (F(0), F(0), F(biases[2 * n] / netw), F(biases[2 * n + 1] / neth))
                iou = box_iou(pred, truth_shift)
                if iou > best_iou:
                    best_iou = iou
                    best_n = n
            mask_n = mask.index(best_n) if best_n in mask else -1  # int_index
            if mask_n >= 0:
                if (mask_n, j, i) in assigned:
                    trace["same_anchor_twice"] += 1
                assigned.append((mask_n, j, i))
                iou = delta_yolo_box(truth, out, biases, best_n, b, mask_n, i, j, lw, lh, netw, neth,
                                     delta, F(2 - truth[2] * truth[3]))
                avg_obj = F(avg_obj + out[b, mask_n, 4, j, i])
                delta[b, mask_n, 4, j, i] = F(1 - out[b, mask_n, 4, j, i])
                cls = int(truth[4])
                avg_cat = delta_yolo_class(out, delta, b, mask_n, j, i, cls, classes, avg_cat, trace)
                count += 1
                class_count += 1
                if iou > .5:
                    recall = F(recall + 1)
                if iou > .75:
                    recall75 = F(recall75 + 1)
                avg_iou = F(avg_iou + iou)
            else:
                trace["skipped_truths"] += 1
        trace["truth_thresh_not_assigned"] += len(
            [s for s in tt_slots if s[0] == b and (s[1], s[2], s[3]) not in assigned])

    cost = darknet_cost(delta)
    stats = dict(
        avg_iou=F(avg_iou / count) if count else F(0),
        **{"class": F(avg_cat / class_count) if class_count else F(0)},
        obj=F(avg_obj / count) if count else F(0),
        no_obj=F(avg_anyobj / (lw * lh * A * batch)),
        recall50=F(recall / count) if count else F(0),
        recall75=F(recall75 / count) if count else F(0),
        count=count)
    del trace["assigned"]
    return out, delta, cost, stats, trace


# ----------------------------------------------------------------------------------------------
# src/region_layer.c (coords 4, softmax 1, background 0, no tree, no map)
# ----------------------------------------------------------------------------------------------

def get_region_box(x, biases, n, b, i, j, w, h):
    return (F((i + x[b, n, 0, j, i]) / w),
            F((j + x[b, n, 1, j, i]) / h),
            F(math.exp(float(x[b, n, 2, j, i])) * float(biases[2 * n]) / w),
            F(math.exp(float(x[b, n, 3, j, i])) * float(biases[2 * n + 1]) / h))


def delta_region_box(truth, x, biases, n, b, i, j, w, h, delta, scale):
    pred = get_region_box(x, biases, n, b, i, j, w, h)
    iou = box_iou(pred, truth)
    tx = F(truth[0] * w - i)
    ty = F(truth[1] * h - j)
    tw = F(math.log(float(F(F(truth[2] * w) / biases[2 * n]))))
    th = F(math.log(float(F(F(truth[3] * h) / biases[2 * n + 1]))))
    delta[b, n, 0, j, i] = F(scale * (tx - x[b, n, 0, j, i]))
    delta[b, n, 1, j, i] = F(scale * (ty - x[b, n, 1, j, i]))
    delta[b, n, 2, j, i] = F(scale * (tw - x[b, n, 2, j, i]))
    delta[b, n, 3, j, i] = F(scale * (th - x[b, n, 3, j, i]))
    return iou


def delta_region_class(output, delta, b, n, j, i, cls, classes, scale, avg_cat, tag):
    """Non-tree branch. tag = !l.softmax, so with softmax = 1 the shortcut is never taken."""
    if delta[b, n, 5, j, i] and tag:
        delta[b, n, 5 + cls, j, i] = F(scale * (1 - output[b, n, 5 + cls, j, i]))
        return avg_cat
    for c in range(classes):
        delta[b, n, 5 + c, j, i] = F(scale * ((1 if c == cls else 0) - output[b, n, 5 + c, j, i]))
        if c == cls:
            avg_cat = F(avg_cat + output[b, n, 5 + c, j, i])
    return avg_cat


def forward_region_layer(inp, truths, cfg):
    batch, A, E, lh, lw = inp.shape
    classes = cfg["classes"]
    biases = np.asarray(cfg["anchors"], dtype=F)
    assert E == 5 + classes and A == cfg["num"]
    thresh = F(cfg["thresh"])
    coord_scale, object_scale = F(cfg["coord_scale"]), F(cfg["object_scale"])
    noobject_scale, class_scale = F(cfg["noobject_scale"]), F(cfg["class_scale"])
    rescore, bias_match, seen = cfg["rescore"], cfg["bias_match"], cfg["seen"]

    out = inp.copy()
    out[:, :, 0:2] = logistic(inp[:, :, 0:2])
    out[:, :, 4] = logistic(inp[:, :, 4])
    for b in range(batch):
        for n in range(A):
            for j in range(lh):
                for i in range(lw):
                    p = softmax([inp[b, n, 5 + c, j, i] for c in range(classes)])
                    for c in range(classes):
                        out[b, n, 5 + c, j, i] = p[c]
    delta = np.zeros_like(inp)

    trace = dict(thresh_zeroed=0, prior=0, same_anchor_twice=0, bias_match_differs=0)
    avg_iou = recall = recall75 = avg_cat = avg_obj = avg_anyobj = F(0)
    count = class_count = 0
    for b in range(batch):
        T = truth_list(truths[b], 30)
        for j in range(lh):
            for i in range(lw):
                for n in range(A):
                    pred = get_region_box(out, biases, n, b, i, j, lw, lh)
                    best_iou = F(0)
                    for truth in T:
                        iou = box_iou(pred, truth)
                        if iou > best_iou:
                            best_iou = iou
                    avg_anyobj = F(avg_anyobj + out[b, n, 4, j, i])
                    delta[b, n, 4, j, i] = F(noobject_scale * (0 - out[b, n, 4, j, i]))
                    if best_iou > thresh:
                        delta[b, n, 4, j, i] = F(0)
                        trace["thresh_zeroed"] += 1
                    if seen < 12800:
                        trace["prior"] += 1
                        truth = (F((i + .5) / lw), F((j + .5) / lh),
                                 F(biases[2 * n] / lw), F(biases[2 * n + 1] / lh))
                        delta_region_box(truth, out, biases, n, b, i, j, lw, lh, delta, F(.01))
        assigned = []
        for t, truth in enumerate(T):
            best_iou = F(0)
            best_n = 0
            shape_best_iou, shape_best_n = F(0), 0
            i = int(F(truth[0] * lw))
            j = int(F(truth[1] * lh))
            truth_shift = (F(0), F(0), truth[2], truth[3])
            for n in range(A):
                pred = get_region_box(out, biases, n, b, i, j, lw, lh)
                shape = (F(0), F(0), F(biases[2 * n] / lw), F(biases[2 * n + 1] / lh))
                if bias_match:
                    pred = shape
                pred = (F(0), F(0), pred[2], pred[3])
                iou = box_iou(pred, truth_shift)
                if iou > best_iou:
                    best_iou = iou
                    best_n = n
                siou = box_iou(shape, truth_shift)
                if siou > shape_best_iou:
                    shape_best_iou, shape_best_n = siou, n
            if best_n != shape_best_n:
                trace["bias_match_differs"] += 1
            if (best_n, j, i) in assigned:
                trace["same_anchor_twice"] += 1
            assigned.append((best_n, j, i))
            iou = delta_region_box(truth, out, biases, best_n, b, i, j, lw, lh, delta,
                                   F(coord_scale * (2 - truth[2] * truth[3])))
            if iou > .5:
                recall = F(recall + 1)
            if iou > .75:
                recall75 = F(recall75 + 1)  # not in Darknet's region layer (see docstring)
            avg_iou = F(avg_iou + iou)
            avg_obj = F(avg_obj + out[b, best_n, 4, j, i])
            delta[b, best_n, 4, j, i] = F(object_scale * (1 - out[b, best_n, 4, j, i]))
            if rescore:
                delta[b, best_n, 4, j, i] = F(object_scale * (iou - out[b, best_n, 4, j, i]))
            cls = int(truth[4])
            avg_cat = delta_region_class(out, delta, b, best_n, j, i, cls, classes, class_scale,
                                         avg_cat, tag=False)
            count += 1
            class_count += 1

    cost = darknet_cost(delta)
    stats = dict(
        avg_iou=F(avg_iou / count) if count else F(0),
        **{"class": F(avg_cat / class_count) if class_count else F(0)},
        obj=F(avg_obj / count) if count else F(0),
        no_obj=F(avg_anyobj / (lw * lh * A * batch)),
        recall50=F(recall / count) if count else F(0),
        recall75=F(recall75 / count) if count else F(0),
        count=count)
    return out, delta, cost, stats, trace


# ----------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------

def logit(p):
    return math.log(p / (1 - p))


def random_logits(rng, shape):
    """N(0, 1.5) rounded to 3 decimals (short in JSON), as float32."""
    return np.round(rng.normal(0.0, 1.5, size=shape), 3).astype(F)


def truths_from_pixels(objs, net_w, net_h):
    """objs: (cx, cy, w, h, class) in input pixels -> Darknet's normalised [x, y, w, h, class]."""
    return [[F(cx / net_w), F(cy / net_h), F(w / net_w), F(h / net_h), F(c)] for cx, cy, w, h, c in objs]


def aim(inp, rng, b, a, i, j, truth, lw, lh, anchor_w_cells, anchor_h_cells, noise=0.08):
    """Overwrite the x, y, w, h logits of slot (b, a, j, i) so that its box is near `truth`
    (normalised); anchors in grid cells. The centre is clipped into the slot's own cell."""
    tx = min(max(float(truth[0]) * lw - i, 0.04), 0.96)
    ty = min(max(float(truth[1]) * lh - j, 0.04), 0.96)
    tw = math.log(float(truth[2]) * lw / anchor_w_cells)
    th = math.log(float(truth[3]) * lh / anchor_h_cells)
    vals = [logit(tx), logit(ty), tw, th] + list(rng.normal(0, noise, 4))
    for k in range(4):
        inp[b, a, k, j, i] = F(round(vals[k] + vals[4 + k], 3))


def to_nhwc(a):
    """(batch, A, E, h, w) -> flat ((b*h + j)*w + i)*A*E + a*E + e."""
    return np.ascontiguousarray(a.transpose(0, 3, 4, 1, 2)).ravel()


# yolov3-tiny anchors (416x416) scaled to a 160x128 network.
TINY416 = [10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319]
NET_W, NET_H = 160, 128
TINY = [round(v * (NET_W if k % 2 == 0 else NET_H) / 416, 2) for k, v in enumerate(TINY416)]
# yolo-voc (yolov2) anchors for a 13x13 grid, scaled to a 5x4 grid.
VOC13 = [1.3221, 1.73145, 3.19275, 4.00944, 5.05587, 8.09892, 9.47112, 4.84053, 11.2364, 10.0071]
VOC54 = [round(v * (5 if k % 2 == 0 else 4) / 13, 4) for k, v in enumerate(VOC13)]


def yolo_cases():
    rng = np.random.default_rng(20240611)
    cases = []

    def make(name, grid_w, grid_h, mask, classes, ignore, truth_th, objs, aims):
        cfg = dict(name=name, batch=2, grid_h=grid_h, grid_w=grid_w, net_w=NET_W, net_h=NET_H,
                   classes=classes, num=6, anchors=TINY, mask=mask, ignore_thresh=ignore,
                   truth_thresh=truth_th)
        A = len(mask)
        inp = random_logits(rng, (2, A, 5 + classes, grid_h, grid_w))
        truths = [truths_from_pixels(o, NET_W, NET_H) for o in objs]
        for b, t, a, di, dj in aims:  # aim slot a of the truth's cell shifted by (di, dj)
            tr = truths[b][t]
            i = int(F(tr[0] * grid_w)) + di
            j = int(F(tr[1] * grid_h)) + dj
            aw = TINY[2 * mask[a]] / NET_W * grid_w
            ah = TINY[2 * mask[a] + 1] / NET_H * grid_h
            aim(inp, rng, b, a, i, j, tr, grid_w, grid_h, aw, ah)
        _, delta, cost, stats, trace = forward_yolo_layer(inp, truths, cfg)
        print(f"yolo {name}: cost {cost:.4f} stats {stats} trace {trace}")
        cases.append((cfg, inp, truths, delta, cost, stats, trace))
        return trace

    # 1. The yolov3-tiny coarse head: mask 3,4,5 (large anchors), 5x4 grid (stride 32).
    tr = make("tiny_mask345", 5, 4, [3, 4, 5], 4, 0.7, 1.0,
              [[(50, 40, 30, 26, 1),     # anchor 3, cell (1,1)
                (60, 50, 50, 55, 2),     # anchor 4, same cell (1,1)
                (120, 90, 8, 10, 0),     # best anchor 0: not in this layer's mask
                (140, 100, 120, 90, 3)],  # anchor 5
               [(80, 64, 55, 50, 0),     # anchor 4, cell (2,2)
                (90, 70, 50, 48, 3),     # anchor 4, same cell: class shortcut (multi-label)
                (20, 100, 16, 20, 2),    # best anchor 1: not in the mask
                (150, 20, 28, 30, 1)]],  # anchor 3, cell (4,0)
              [(0, 0, 0, 0, 0), (0, 1, 1, 1, 0), (0, 3, 2, 0, 0), (1, 0, 1, 0, 0), (1, 3, 0, 0, 0)])
    assert tr["skipped_truths"] >= 2 and tr["class_shortcut"] >= 1 and tr["ignored"] >= 2, tr
    # 2. The fine head: mask 0,1,2 (small anchors), 10x8 grid (stride 16); image 1 has no truths.
    tr = make("tiny_mask012_empty_image", 10, 8, [0, 1, 2], 3, 0.5, 1.0,
              [[(33, 40, 9, 13, 0),
                (37, 44, 14, 16, 2),     # same cell (2,2) as the first
                (100, 70, 22, 25, 1),
                (120, 60, 100, 90, 0),   # best anchor 4: not in the mask
                (12, 118, 5, 6, 2)],
               []],
              [(0, 0, 1, 0, 0), (0, 2, 2, 0, 0), (0, 2, 2, 1, 0), (0, 1, 0, 0, 0)])
    assert tr["skipped_truths"] >= 1 and tr["ignored"] >= 2, tr
    # 3. ignore_thresh .3, truth_thresh .6: the truth_thresh branch fires, also on slots that no
    #    truth is assigned to, and on slots that then take the class shortcut.
    tr = make("mask234_truth_thresh", 5, 4, [2, 3, 4], 3, 0.3, 0.6,
              [[(70, 50, 40, 30, 1),     # cell (2,1)
                (75, 55, 36, 34, 2),     # same cell, same anchor
                (130, 30, 90, 80, 0),    # cell (4,0)
                (20, 110, 10, 12, 2)],   # best anchor 0: not in the mask
               [(30, 30, 45, 40, 2),
                (100, 90, 20, 24, 0),
                (145, 110, 60, 45, 1)]],
              [(0, 1, 1, 0, 0), (0, 1, 2, 0, 0), (0, 2, 2, -1, 0), (0, 2, 2, 0, 0),
               (1, 0, 1, 0, 0), (1, 0, 2, 1, 0), (1, 2, 2, 0, 0)])
    assert tr["truth_thresh"] >= 3 and tr["truth_thresh_not_assigned"] >= 1, tr
    assert tr["class_shortcut"] >= 1 and tr["skipped_truths"] >= 1, tr
    return cases


def region_cases():
    rng = np.random.default_rng(20240612)
    cases = []
    grid_w, grid_h, num, classes = 5, 4, 5, 3

    def make(name, seen, rescore, bias_match, thresh, scales, objs, aims):
        cfg = dict(name=name, batch=2, grid_h=grid_h, grid_w=grid_w, net_w=NET_W, net_h=NET_H,
                   classes=classes, num=num, anchors=VOC54, thresh=thresh,
                   coord_scale=scales[0], object_scale=scales[1], noobject_scale=scales[2],
                   class_scale=scales[3], rescore=rescore, bias_match=bias_match, seen=seen)
        inp = random_logits(rng, (2, num, 5 + classes, grid_h, grid_w))
        truths = [truths_from_pixels(o, NET_W, NET_H) for o in objs]
        for b, t, a, di, dj in aims:
            tr = truths[b][t]
            i = int(F(tr[0] * grid_w)) + di
            j = int(F(tr[1] * grid_h)) + dj
            if a is None:  # the anchor whose shape matches best (bias_match's choice)
                ious = [box_iou((F(0), F(0), F(VOC54[2 * n] / grid_w), F(VOC54[2 * n + 1] / grid_h)),
                                (F(0), F(0), tr[2], tr[3])) for n in range(num)]
                a = int(np.argmax(ious))
            aim(inp, rng, b, a, i, j, tr, grid_w, grid_h, VOC54[2 * a], VOC54[2 * a + 1])
        _, delta, cost, stats, trace = forward_region_layer(inp, truths, cfg)
        print(f"region {name}: cost {cost:.4f} stats {stats} trace {trace}")
        cases.append((cfg, inp, truths, delta, cost, stats, trace))
        return trace

    # 1. yolo-voc.cfg's settings (thresh .6, object_scale 5, rescore 1, bias_match 1), seen 0:
    #    the prior regression (scale .01) is on.
    tr = make("voc_seen0_rescore_biasmatch", 0, 1, 1, 0.6, (1, 5, 1, 1),
              [[(50, 40, 30, 26, 1),
                (56, 46, 28, 30, 2),     # same cell (1,1), same anchor: class block overwritten
                (120, 90, 100, 80, 0),
                (140, 20, 12, 14, 2)],
               [(80, 64, 60, 50, 0),
                (20, 100, 40, 30, 1)]],
              [(0, 0, None, 0, 0), (0, 0, 3, 0, 0), (0, 2, None, 0, 0), (0, 2, 2, -1, 0),
               (1, 0, None, 0, 0), (1, 1, 1, 0, 0)])
    assert tr["prior"] > 0 and tr["same_anchor_twice"] >= 1 and tr["thresh_zeroed"] >= 2, tr
    # 2. seen 20000 (no prior), rescore 0, bias_match 0 (anchor chosen by the predicted shape),
    #    other scales; image 1 has no truths.
    tr = make("seen20000_norescore_predmatch_empty_image", 20000, 0, 0, 0.5, (1.5, 4, 0.5, 2),
              [[(50, 40, 30, 26, 1),
                (60, 50, 50, 55, 2),
                (130, 95, 70, 60, 0),
                (100, 20, 20, 18, 2),
                (25, 100, 45, 40, 1)],
               []],
              [(0, 0, 0, 0, 0), (0, 1, 2, 0, 0), (0, 2, 3, 0, 0), (0, 2, 3, -1, 0)])
    assert tr["prior"] == 0 and tr["bias_match_differs"] >= 1 and tr["thresh_zeroed"] >= 1, tr
    # 3. seen 12799 (the last image count with the prior), rescore 1, bias_match 0.
    tr = make("seen12799_rescore_predmatch", 12799, 1, 0, 0.6, (1, 5, 1, 1),
              [[(70, 50, 40, 30, 1),
                (75, 55, 36, 34, 2),
                (130, 30, 90, 80, 0)],
               [(30, 30, 45, 40, 2),
                (100, 90, 20, 24, 0),
                (145, 110, 60, 45, 1),
                (150, 115, 10, 8, 0)]],
              [(0, 0, 2, 0, 0), (0, 2, 4, 0, 0), (1, 0, 2, 0, 0), (1, 2, 3, 0, 0)])
    assert tr["prior"] > 0 and tr["bias_match_differs"] >= 1, tr
    return cases


def darknet_case_json(kind, cfg, inp, truths, delta, cost, stats):
    c = dict(cfg)
    c["anchors"] = nums(cfg["anchors"])
    c["input"] = nums(to_nhwc(inp))
    c["truths"] = [[[num(v) for v in t] for t in image] for image in truths]
    c["delta"] = nums(to_nhwc(delta))
    c["cost"] = num(cost)
    c["stats"] = {k: (v if k == "count" else num(v)) for k, v in stats.items()}
    for k in ("ignore_thresh", "truth_thresh", "thresh", "coord_scale", "object_scale",
              "noobject_scale", "class_scale"):
        if k in c:
            c[k] = float(c[k])
    return c


def check_darknet_case(kind, c):
    A = len(c["mask"]) if kind == "yolo" else c["num"]
    E = 5 + c["classes"]
    n = c["batch"] * c["grid_h"] * c["grid_w"] * A * E
    assert len(c["input"]) == len(c["delta"]) == n
    d = np.asarray(c["delta"], dtype=np.float64).reshape(c["batch"], c["grid_h"], c["grid_w"], A, E)
    s = float((d * d).sum())
    assert abs(s - c["cost"]) <= 1e-5 * max(1.0, s), (s, c["cost"])
    st = c["stats"]
    for k in ("avg_iou", "obj", "no_obj", "recall50", "recall75", "class"):
        assert 0 <= st[k] <= 1, (k, st[k])
    assert st["count"] > 0
    assert np.count_nonzero(d[..., 4]) > 0           # objectness deltas everywhere
    assert np.count_nonzero(d[..., 0:4]) > 0        # box deltas at the assigned slots
    assert np.count_nonzero(d[..., 5:]) > 0          # class deltas
    big = max(c.get("noobject_scale", 1), c.get("object_scale", 1), 1)
    assert np.all(np.abs(d[..., 4]) <= big + 1e-6)


def write_darknet():
    yolo = [darknet_case_json("yolo", *x[:6]) for x in yolo_cases()]
    region = [darknet_case_json("region", *x[:6]) for x in region_cases()]
    for c in yolo:
        check_darknet_case("yolo", c)
    for c in region:
        check_darknet_case("region", c)
    doc = {"source": f"pjreddie/darknet {DARKNET_COMMIT} src/yolo_layer.c, src/region_layer.c",
           "yolo": yolo, "region": region}
    path = OUT / "yolo_losses.json"
    text = json.dumps(doc, separators=(",", ":")) + "\n"
    path.write_text(text)
    print(f"wrote {path.relative_to(ROOT)} ({len(text) // 1024} KB)")
    assert len(text) < 400_000


# ----------------------------------------------------------------------------------------------
# keras-yolo2 frontend.py YOLO.custom_loss (+ the targets of preprocessing.py BatchGenerator)
# ----------------------------------------------------------------------------------------------

def sigmoid32(x):
    x = np.asarray(x, dtype=F)
    return (F(1) / (F(1) + np.exp(-x))).astype(F)


def keras_custom_loss(y_pred, y_true, true_boxes, cfg):
    """frontend.py custom_loss, line by line, float32 (y_pred / y_true: [N, H, W, B, 5 + C];
    true_boxes: [N, 1, 1, 1, max_boxes, 4]). Returns (loss_xy, loss_wh, loss_conf, loss_class,
    loss) and a few intermediates for the sanity checks."""
    N, H, W, B, _ = y_pred.shape
    assert H == W, "keras-yolo2's cell_grid (a transpose of cell_x) only works for square grids"
    anchors = np.asarray(cfg["anchors"], dtype=F).reshape(1, 1, 1, B, 2)
    coord_scale, object_scale = F(cfg["coord_scale"]), F(cfg["object_scale"])
    no_object_scale, class_scale = F(cfg["no_object_scale"]), F(cfg["class_scale"])
    class_wt = np.ones(cfg["classes"], dtype=F)

    cell_x = np.tile(np.arange(W), [H]).reshape(1, H, W, 1, 1).astype(F)
    cell_y = np.transpose(cell_x, (0, 2, 1, 3, 4))
    cell_grid = np.tile(np.concatenate([cell_x, cell_y], -1), [N, 1, 1, B, 1])

    # Adjust prediction
    pred_box_xy = sigmoid32(y_pred[..., :2]) + cell_grid
    pred_box_wh = np.exp(y_pred[..., 2:4]) * anchors
    pred_box_conf = sigmoid32(y_pred[..., 4])
    pred_box_class = y_pred[..., 5:]

    # Adjust ground truth
    true_box_xy = y_true[..., 0:2]
    true_box_wh = y_true[..., 2:4]
    true_wh_half = true_box_wh / F(2)
    true_mins = true_box_xy - true_wh_half
    true_maxes = true_box_xy + true_wh_half
    pred_wh_half = pred_box_wh / F(2)
    pred_mins = pred_box_xy - pred_wh_half
    pred_maxes = pred_box_xy + pred_wh_half
    intersect_mins = np.maximum(pred_mins, true_mins)
    intersect_maxes = np.minimum(pred_maxes, true_maxes)
    intersect_wh = np.maximum(intersect_maxes - intersect_mins, F(0))
    intersect_areas = intersect_wh[..., 0] * intersect_wh[..., 1]
    true_areas = true_box_wh[..., 0] * true_box_wh[..., 1]
    pred_areas = pred_box_wh[..., 0] * pred_box_wh[..., 1]
    union_areas = pred_areas + true_areas - intersect_areas
    iou_scores = intersect_areas / union_areas
    true_box_conf = iou_scores * y_true[..., 4]
    true_box_class = np.argmax(y_true[..., 5:], -1)  # first maximum

    # Masks
    coord_mask = y_true[..., 4:5] * coord_scale
    true_xy = true_boxes[..., 0:2]
    true_wh = true_boxes[..., 2:4]
    true_wh_half = true_wh / F(2)
    true_mins = true_xy - true_wh_half
    true_maxes = true_xy + true_wh_half
    pred_xy = pred_box_xy[:, :, :, :, None, :]
    pred_wh = pred_box_wh[:, :, :, :, None, :]
    pred_wh_half = pred_wh / F(2)
    pred_mins = pred_xy - pred_wh_half
    pred_maxes = pred_xy + pred_wh_half
    intersect_mins = np.maximum(pred_mins, true_mins)
    intersect_maxes = np.minimum(pred_maxes, true_maxes)
    intersect_wh = np.maximum(intersect_maxes - intersect_mins, F(0))
    intersect_areas = intersect_wh[..., 0] * intersect_wh[..., 1]
    true_areas = true_wh[..., 0] * true_wh[..., 1]
    pred_areas = pred_wh[..., 0] * pred_wh[..., 1]
    union_areas = pred_areas + true_areas - intersect_areas
    iou_scores = intersect_areas / union_areas
    best_ious = np.max(iou_scores, axis=4)
    conf_mask = np.zeros(y_true.shape[:4], dtype=F)
    conf_mask = conf_mask + (best_ious < F(0.6)).astype(F) * (F(1) - y_true[..., 4]) * no_object_scale
    conf_mask = conf_mask + y_true[..., 4] * object_scale
    class_mask = y_true[..., 4] * class_wt[true_box_class] * class_scale

    # Warm-up: the graph's `seen` variable is incremented before the comparison.
    no_boxes_mask = (coord_mask < coord_scale / F(2)).astype(F)
    seen = F(cfg["seen"] + 1)
    warm = bool(seen < F(cfg["warmup_batches"] + 1))
    if warm:
        true_box_xy = true_box_xy + (F(0.5) + cell_grid) * no_boxes_mask
        true_box_wh = true_box_wh + np.ones_like(true_box_wh) * anchors * no_boxes_mask
        coord_mask = np.ones_like(coord_mask)

    # Finalize
    nb_coord_box = F(np.sum((coord_mask > 0).astype(F)))
    nb_conf_box = F(np.sum((conf_mask > 0).astype(F)))
    nb_class_box = F(np.sum((class_mask > 0).astype(F)))
    eps = F(1e-6)
    loss_xy = F(np.sum(np.square(true_box_xy - pred_box_xy) * coord_mask, dtype=F)
              / (nb_coord_box + eps) / F(2))
    loss_wh = F(np.sum(np.square(true_box_wh - pred_box_wh) * coord_mask, dtype=F)
              / (nb_coord_box + eps) / F(2))
    loss_conf = F(np.sum(np.square(true_box_conf - pred_box_conf) * conf_mask, dtype=F)
              / (nb_conf_box + eps) / F(2))
    # tf.nn.sparse_softmax_cross_entropy_with_logits
    m = np.max(pred_box_class, axis=-1, keepdims=True)
    lse = np.log(np.sum(np.exp(pred_box_class - m), axis=-1, dtype=F)) + m[..., 0]
    picked = np.take_along_axis(pred_box_class, true_box_class[..., None], -1)[..., 0]
    ce = (lse - picked).astype(F)
    loss_class = F(np.sum(ce * class_mask, dtype=F) / (nb_class_box + eps))
    loss = F(loss_xy + loss_wh + loss_conf + loss_class + (F(10) if warm else F(0)))
    info = dict(warm=warm, nb_coord=int(nb_coord_box), nb_conf=int(nb_conf_box),
                nb_class=int(nb_class_box),
                masked_by_iou=int(np.sum((best_ious >= F(0.6)) & (y_true[..., 4] == 0))),
                multi_class=int(np.sum(np.sum(y_true[..., 5:], -1) > 1)))
    return (loss_xy, loss_wh, loss_conf, loss_class, loss), info


def keras_targets(images, cfg, input_size):
    """preprocessing.py BatchGenerator.__getitem__'s y_batch and b_batch (float64 there, fed as
    float32). images: per batch item, objects (xmin, ymin, xmax, ymax, class) in input pixels."""
    H, W, B, C = cfg["grid_h"], cfg["grid_w"], cfg["boxes"], cfg["classes"]
    anchors = cfg["anchors"]
    y = np.zeros((len(images), H, W, B, 5 + C))
    tb = np.zeros((len(images), 1, 1, 1, cfg["max_boxes"], 4))
    for n, objs in enumerate(images):
        true_box_index = 0
        for xmin, ymin, xmax, ymax, cls in objs:
            center_x = .5 * (xmin + xmax) / (float(input_size) / W)
            center_y = .5 * (ymin + ymax) / (float(input_size) / H)
            grid_x, grid_y = int(np.floor(center_x)), int(np.floor(center_y))
            assert grid_x < W and grid_y < H
            center_w = (xmax - xmin) / (float(input_size) / W)
            center_h = (ymax - ymin) / (float(input_size) / H)
            box = [center_x, center_y, center_w, center_h]
            best_anchor, max_iou = -1, -1
            for i in range(B):  # utils.bbox_iou of BoundBox(0, 0, w, h) and BoundBox(0, 0, aw, ah)
                aw, ah = anchors[2 * i], anchors[2 * i + 1]
                inter = min(center_w, aw) * min(center_h, ah)
                iou = float(inter) / (center_w * center_h + aw * ah - inter)
                if max_iou < iou:
                    best_anchor, max_iou = i, iou
            y[n, grid_y, grid_x, best_anchor, 0:4] = box
            y[n, grid_y, grid_x, best_anchor, 4] = 1.
            y[n, grid_y, grid_x, best_anchor, 5 + cls] = 1  # accumulates on a collision
            tb[n, 0, 0, 0, true_box_index] = box
            true_box_index = (true_box_index + 1) % cfg["max_boxes"]
    return y.astype(F), tb.astype(F)


# keras-yolo2's config.json anchors (13x13 grid), scaled to a 5x5 grid.
KY2_13 = [0.57273, 0.677385, 1.87446, 2.06253, 3.33843, 5.47434, 7.88282, 3.52778, 9.77052, 9.16828]
KY2_5 = [round(v * 5 / 13, 4) for v in KY2_13]


def keras_cases():
    rng = np.random.default_rng(20240613)
    size, G, B, C = 160, 5, 5, 3
    cases = []

    def make(name, scales, warmup_batches, seen, max_boxes, images, aims):
        cfg = dict(name=name, batch=2, grid_h=G, grid_w=G, boxes=B, classes=C, anchors=KY2_5,
                   object_scale=scales[0], no_object_scale=scales[1], coord_scale=scales[2],
                   class_scale=scales[3], warmup_batches=warmup_batches, seen=seen,
                   max_boxes=max_boxes)
        y_true, true_boxes = keras_targets(images, cfg, size)
        y_pred = np.round(rng.normal(0.0, 1.5, size=(2, G, G, B, 5 + C)), 3).astype(F)
        for n, o, a, di, dj in aims:  # aim anchor a (None: the responsible one) of the object's cell
            xmin, ymin, xmax, ymax, _ = images[n][o]
            cx, cy = .5 * (xmin + xmax) / (size / G), .5 * (ymin + ymax) / (size / G)
            w, h = (xmax - xmin) / (size / G), (ymax - ymin) / (size / G)
            gx, gy = int(cx) + di, int(cy) + dj
            if a is None:
                a = int(np.argmax(y_true[n, int(cy), int(cx), :, 4]))
            tx = min(max(cx - gx, 0.04), 0.96)
            ty = min(max(cy - gy, 0.04), 0.96)
            vals = [logit(tx), logit(ty), math.log(w / KY2_5[2 * a]), math.log(h / KY2_5[2 * a + 1])]
            for k in range(4):
                y_pred[n, gy, gx, a, k] = F(round(vals[k] + rng.normal(0, 0.08), 3))
        losses, info = keras_custom_loss(y_pred, y_true, true_boxes, cfg)
        info["images"] = images
        print(f"keras {name}: {[float(v) for v in losses]} "
              f"{ {k: v for k, v in info.items() if k != 'images'} }")
        cases.append((cfg, y_pred, y_true, true_boxes, losses, info))
        return info

    # 1. config.json's scales, warm-up on (seen 2 < warmup_batches 3: the last warm-up batch).
    info = make("warmup", (5.0, 1.0, 1.0, 1.0), 3, 2, 6,
                [[(20, 30, 70, 66, 1),
                  (30, 28, 74, 70, 2),       # same cell and anchor: y_true's class bits 1 and 2
                  (100, 90, 150, 158, 0),
                  (120, 10, 130, 24, 2)],
                 [(40, 40, 120, 120, 0),
                  (5, 100, 35, 150, 1)]],
                [(0, 0, None, 0, 0), (0, 0, 1, 0, 0), (0, 2, None, 0, 0), (0, 2, 3, 0, -1),
                 (1, 0, None, 0, 0), (1, 0, 4, 0, 0), (1, 0, 3, 0, 1)])
    assert info["warm"] and info["multi_class"] >= 1 and info["masked_by_iou"] >= 1, info
    # 2. Other scales, warm-up over (seen 3 == warmup_batches 3); image 0 has 5 objects for a
    #    true_boxes buffer of 4, so its first box is overwritten by the fifth (as the generator does).
    info = make("after_warmup_buffer_wraps", (4.0, 0.5, 2.0, 1.5), 3, 3, 4,
                [[(10, 12, 50, 60, 2),
                  (60, 70, 110, 100, 1),
                  (90, 20, 150, 70, 0),
                  (70, 110, 90, 150, 2),
                  (120, 120, 158, 158, 1)],
                 [(30, 60, 130, 110, 1),
                  (100, 100, 112, 116, 0)]],
                [(0, 0, None, 0, 0), (0, 0, 3, 0, 0), (0, 1, None, 0, 0), (0, 1, 2, 1, 0),
                 (0, 2, None, 0, 0), (1, 0, None, 0, 0), (1, 0, 4, -1, 0), (1, 0, 3, 0, 0)])
    assert not info["warm"] and info["masked_by_iou"] >= 1, info
    # The wrap matters: with room for all 5 boxes, one more slot would escape the no-object loss.
    cfg, y_pred = cases[-1][0], cases[-1][1]
    full = dict(cfg, max_boxes=5)
    y_true, true_boxes = keras_targets(cases[-1][5]["images"], full, size)
    assert keras_custom_loss(y_pred, y_true, true_boxes, full)[1]["masked_by_iou"] > info["masked_by_iou"]
    return cases


def keras_case_json(cfg, y_pred, y_true, true_boxes, losses):
    c = dict(cfg)
    c["anchors"] = nums(cfg["anchors"])
    for k in ("object_scale", "no_object_scale", "coord_scale", "class_scale"):
        c[k] = float(c[k])
    c["y_pred"] = nums(y_pred)
    c["y_true"] = nums(y_true)
    c["true_boxes"] = nums(true_boxes)
    for k, v in zip(("loss_xy", "loss_wh", "loss_conf", "loss_class", "loss"), losses):
        c[k] = num(v)
    return c


def write_keras():
    cases = keras_cases()
    out = []
    for cfg, y_pred, y_true, true_boxes, losses, info in cases:
        c = keras_case_json(cfg, y_pred, y_true, true_boxes, losses)
        n = c["batch"] * c["grid_h"] * c["grid_w"] * c["boxes"] * (5 + c["classes"])
        assert len(c["y_pred"]) == len(c["y_true"]) == n
        assert len(c["true_boxes"]) == c["batch"] * c["max_boxes"] * 4
        assert all(c[k] > 0 for k in ("loss_xy", "loss_wh", "loss_conf", "loss_class"))
        parts = c["loss_xy"] + c["loss_wh"] + c["loss_conf"] + c["loss_class"]
        assert abs(c["loss"] - parts - (10 if info["warm"] else 0)) < 1e-4 * c["loss"]
        out.append(c)
    doc = {"source": f"experiencor/keras-yolo2 {KERAS_YOLO2_COMMIT} frontend.py YOLO.custom_loss",
           "cases": out}
    path = OUT / "keras_yolo2_loss.json"
    text = json.dumps(doc, separators=(",", ":")) + "\n"
    path.write_text(text)
    print(f"wrote {path.relative_to(ROOT)} ({len(text) // 1024} KB)")
    assert len(text) < 400_000


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    write_darknet()
    write_keras()
