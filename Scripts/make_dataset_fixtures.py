#!/usr/bin/env python3
"""Writes the small detection data sets in Tests/OcelliVisionTests/Fixtures/datasets/.

    /work/venv/bin/python Scripts/make_dataset_fixtures.py

Three layouts of hand-made boxes on tiny images (Pillow for the files):
  voc/   Annotations/{a,b}.xml, ImageSets/Main/{train,val}.txt, JPEGImages/a.png (40x30), b.jpg (24x32, EXIF orientation 6 → 32x24 upright)
  yolo/  train.txt (images/c.png), images/c.png (50x20), labels/c.txt, classes.txt
  coco/  annotations/instances_val.json (category ids 3 and 7), images/d.png (30x30)
The boxes are written out in the Swift tests too; change both together.
"""
import json, os
import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "OcelliVisionTests", "Fixtures", "datasets")


def image(path, w, h, seed, exif_orientation=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        im.save(path, quality=90, exif=exif)
    else:
        im.save(path)


def text(path, s):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(s)


voc = os.path.join(ROOT, "voc")
image(os.path.join(voc, "JPEGImages", "a.png"), 40, 30, 1)
image(os.path.join(voc, "JPEGImages", "b.jpg"), 24, 32, 2, exif_orientation=6)
text(os.path.join(voc, "Annotations", "a.xml"), """<?xml version="1.0"?>
<annotation>
  <folder>JPEGImages</folder>
  <filename>a.png</filename>
  <size><width>40</width><height>30</height><depth>3</depth></size>
  <object>
    <name>dog</name><truncated>1</truncated><difficult>0</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax></bndbox>
  </object>
  <object>
    <name>cat</name><difficult>1</difficult>
    <bndbox><xmin>12.5</xmin><ymin>3</ymin><xmax>40</xmax><ymax>30</ymax></bndbox>
  </object>
</annotation>
""")
text(os.path.join(voc, "Annotations", "b.xml"), """<annotation>
  <filename>b.jpg</filename>
  <size><width>32</width><height>24</height><depth>3</depth></size>
  <object><name>bird</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>20</xmax><ymax>24</ymax></bndbox></object>
</annotation>
""")
text(os.path.join(voc, "ImageSets", "Main", "train.txt"), "a\n")
text(os.path.join(voc, "ImageSets", "Main", "val.txt"), "b\n")

yolo = os.path.join(ROOT, "yolo")
image(os.path.join(yolo, "images", "c.png"), 50, 20, 3)
text(os.path.join(yolo, "labels", "c.txt"), "1 0.5 0.5 0.2 0.5\n0 0.1 0.25 0.2 0.5\n")
text(os.path.join(yolo, "train.txt"), "images/c.png\n")
text(os.path.join(yolo, "classes.txt"), "person\ncar\n")

coco = os.path.join(ROOT, "coco")
image(os.path.join(coco, "images", "d.png"), 30, 30, 4)
text(os.path.join(coco, "annotations", "instances_val.json"), json.dumps({
    "images": [{"id": 42, "file_name": "d.png", "width": 30, "height": 30}],
    "annotations": [
        {"id": 1, "image_id": 42, "category_id": 7, "bbox": [2, 3, 10, 5.5], "area": 40, "iscrowd": 0},
        {"id": 2, "image_id": 42, "category_id": 3, "bbox": [0, 0, 30, 30], "area": 900, "iscrowd": 1},
    ],
    "categories": [{"id": 7, "name": "zebra"}, {"id": 3, "name": "giraffe"}],
}, indent=1) + "\n")
