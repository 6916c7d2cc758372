#!/usr/bin/env python3
"""Writes the small seed files the fuzz harnesses start from (Seeds/<Reader>/), for the readers
whose real inputs are not already in the repository. Standard library only; run from Fuzz/."""
import json, os, random, struct

random.seed(16)
def put(reader, name, data):
    os.makedirs(f"Seeds/{reader}", exist_ok=True)
    with open(f"Seeds/{reader}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# Darknet weights for the harness's fixed network (233 floats after a version 0.2 header).
floats = [random.uniform(-1, 1) for _ in range(233)]
put("DarknetWeights", "fixed.weights", struct.pack("<iiiQ", 0, 2, 0, 12345) + struct.pack(f"<{len(floats)}f", *floats))
put("DarknetWeights", "old-header.weights", struct.pack("<iiiI", 0, 1, 0, 7) + struct.pack(f"<{len(floats)}f", *floats))

# safetensors: two tensors and metadata.
def safetensors(tensors, metadata):
    header, blob = {"__metadata__": metadata}, b""
    for name, (shape, values) in tensors.items():
        data = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header, sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob
put("SafeTensors", "two.safetensors", safetensors({"dense/kernel": ([2, 3], [0.5] * 6), "dense/bias": ([3], [0, 1, 2])}, {"format": "ocelli"}))

# Darknet .data files (AlexeyAB's recipe), one with CRLF.
data = "classes = 2\ntrain = data/train.txt\nvalid = data/valid.txt\nnames = data/obj.names\nbackup = backup/\n"
put("DarknetData", "obj.data", data)
put("DarknetData", "crlf.data", data.replace("\n", "\r\n"))

# IDX: labels and images, raw (the reader also takes gzip: see Data/mnist).
put("IDX", "labels.idx", struct.pack(">I", 0x0801) + struct.pack(">I", 5) + bytes([1, 2, 3, 4, 5]))
put("IDX", "images.idx", struct.pack(">I", 0x0803) + struct.pack(">III", 1, 28, 28) + bytes(784))

# Detections JSON (the images are "0", "1", "2" of 64x48; 3 classes).
dets = [{"image_id": str(i % 3), "category_id": i % 3, "bbox": [1 + i, 2, 10, 12], "score": 0.9 - 0.1 * i} for i in range(5)]
put("Detections", "darknet-style.json", json.dumps(dets))
put("Detections", "coco-style.json", json.dumps([{"image_id": 1, "category_id": 2, "bbox": [0.5, 1.5, 3, 4], "score": 0.25}]))

# YOLO label lines.
put("YOLO", "two.txt", "0 0.5 0.5 0.25 0.25\n2 0.1 0.2 0.05 0.1\n")
put("YOLO", "crlf.txt", "1 0.5 0.5 0.5 0.5\r\n")

# A functional model.json: Conv2D, pooling, Dense (the format Model.save writes).
layers = [
    {"class_name": "Conv2D", "config": {"name": "conv", "filters": 4, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
                                        "activation": "relu", "use_bias": True, "trainable": True}, "inbound": ["input"]},
    {"class_name": "MaxPooling2D", "config": {"name": "pool", "pool_size": [2, 2], "strides": [2, 2], "padding": "valid", "trainable": True},
     "inbound": ["conv"]},
    {"class_name": "Flatten", "config": {"name": "flatten", "trainable": True}, "inbound": ["pool"]},
    {"class_name": "Dense", "config": {"name": "dense", "units": 10, "activation": "softmax", "use_bias": True, "trainable": True},
     "inbound": ["flatten"]},
]
model = {"class_name": "Functional", "format": "ocelli-model-1",
         "config": {"name": "m", "inputs": [{"name": "input", "shape": [8, 8, 1]}], "layers": layers, "outputs": ["dense"]}}
put("ModelJSON", "small.json", json.dumps(model, indent=1))
