#!/usr/bin/env python3
"""Reference fixtures for Tests/OcelliVisionTests, from Pillow, OpenCV and numpy transcriptions
of Darknet's image code (src/image.c: resize_image, letterbox_image, rgb_to_hsv).

Run from the repository root, with ../shared beside it:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy pillow "opencv-python-headless<5"
    /tmp/venv/bin/python Scripts/make_vision_fixtures.py

Made with numpy 2.4.6, Pillow 13.0.0 (libjpeg-turbo 3.x), opencv-python-headless 4.14.0.
Byte arrays are base64; `crc32` is zlib's CRC-32 of the whole row-major HWC buffer (uint8
pixels, or float32 little-endian for Float images). Everything written is < 200 KB.
"""
import base64
import io
import json
import pathlib
import struct
import zlib

import cv2
import numpy as np
from PIL import Image, ImageOps

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGES = ROOT.parent / "shared" / "data" / "images"
OUT = ROOT / "Tests" / "OcelliVisionTests" / "Fixtures"


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def crc(a):
    return zlib.crc32(np.ascontiguousarray(a).tobytes())


def write_json(name, value):
    (OUT / name).write_text(json.dumps(value, separators=(",", ":")) + "\n")


def pillow_pixels(data):
    """Decoded HWC uint8 pixels as Pillow gives them, upright (EXIF orientation applied)."""
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if im.mode == "CMYK":
        im = im.convert("RGB")
    a = np.asarray(im)
    return a[:, :, None] if a.ndim == 2 else a


# MARK: JPEG decoding


def jpeg_fixtures():
    images = []
    for path in sorted(IMAGES.glob("*.jpg")):
        data = path.read_bytes()
        a = pillow_pixels(data)
        h, w, c = a.shape
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        images.append({
            "name": path.name, "width": w, "height": h, "channels": c, "crc32": crc(a),
            "rows": {str(r): b64(a[r, :64]) for r in (0, h // 2, h - 1)},  # first 64 pixels, for diagnostics
            "sum": int(a.astype(np.int64).sum()),
            "opencvEqual": bool(np.array_equal(bgr[:, :, ::-1], a)),
        })
    write_json("jpeg_decode.json", {"images": images})

    # Small JPEGs written by Pillow: gray, progressive, CMYK, and the eight EXIF orientations.
    rng = np.random.default_rng(7)
    dog = np.asarray(Image.open(IMAGES / "dog.jpg"))
    small = {}

    def add(name, image, **options):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", **options)
        data = buffer.getvalue()
        (OUT / name).write_bytes(data)
        a = pillow_pixels(data)
        small[name] = {"width": a.shape[1], "height": a.shape[0], "channels": a.shape[2], "pixels": b64(a)}

    add("gray.jpg", Image.fromarray(dog[200:232, 300:340].mean(axis=2).astype(np.uint8), "L"), quality=90)
    add("progressive.jpg", Image.fromarray(dog[100:148, 200:264]), quality=85, progressive=True)
    cmyk = rng.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    add("cmyk.jpg", Image.fromarray(cmyk, "CMYK"), quality=95)
    # 6x4 stored pixels of distinct colours (4:4:4 so each pixel keeps its own colour).
    stored = Image.fromarray(dog[300:304, 400:406])
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        add(f"orientation_{orientation}.jpg", stored, quality=95, subsampling=0, exif=exif.tobytes())
    write_json("jpeg_small.json", small)


# MARK: PNG decoding


def png_file(width, height, bit_depth, color_type, rows, palette=None, trns=None, gamma=None):
    """A PNG written chunk by chunk, so every colour type and bit depth is exactly as asked."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + row for row in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if gamma is not None:
        out += chunk(b"gAMA", struct.pack(">I", round(gamma * 100000)))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_fixtures():
    rng = np.random.default_rng(11)
    w, h = 5, 3
    cases = {}

    def add(name, data, expected, note):
        (OUT / name).write_bytes(data)
        cases[name] = {"width": w, "height": h, "channels": expected.shape[2], "pixels": b64(expected), "note": note}

    def scale16(v):  # documented 16 -> 8 bit reduction: round(v * 255 / 65535)
        return ((v.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)

    g8 = rng.integers(0, 256, (h, w), dtype=np.uint8)
    add("gray8.png", png_file(w, h, 8, 0, [r.tobytes() for r in g8]), g8[:, :, None], "gray -> 1 channel")
    g16 = rng.integers(0, 65536, (h, w), dtype=np.uint16)
    add("gray16.png", png_file(w, h, 16, 0, [r.astype(">u2").tobytes() for r in g16]), scale16(g16)[:, :, None],
        "16-bit gray -> 1 channel, rounded")
    ga8 = rng.integers(0, 256, (h, w, 2), dtype=np.uint8)
    add("gray_alpha8.png", png_file(w, h, 8, 4, [r.tobytes() for r in ga8]),
        np.stack([ga8[..., 0]] * 3 + [ga8[..., 1]], axis=2), "gray+alpha -> RGBA")
    ga16 = rng.integers(0, 65536, (h, w, 2), dtype=np.uint16)
    add("gray_alpha16.png", png_file(w, h, 16, 4, [r.astype(">u2").tobytes() for r in ga16]),
        np.stack([scale16(ga16[..., 0])] * 3 + [scale16(ga16[..., 1])], axis=2), "16-bit gray+alpha -> RGBA")
    rgb8 = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    add("rgb8.png", png_file(w, h, 8, 2, [r.tobytes() for r in rgb8]), rgb8, "RGB")
    rgb16 = rng.integers(0, 65536, (h, w, 3), dtype=np.uint16)
    add("rgb16.png", png_file(w, h, 16, 2, [r.astype(">u2").tobytes() for r in rgb16]), scale16(rgb16),
        "16-bit RGB -> RGB, rounded")
    rgba8 = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    add("rgba8.png", png_file(w, h, 8, 6, [r.tobytes() for r in rgba8]), rgba8, "RGBA, straight alpha")
    rgba16 = rng.integers(0, 65536, (h, w, 4), dtype=np.uint16)
    add("rgba16.png", png_file(w, h, 16, 6, [r.astype(">u2").tobytes() for r in rgba16]), scale16(rgba16),
        "16-bit RGBA -> RGBA, rounded")
    palette = rng.integers(0, 256, (6, 3), dtype=np.uint8)
    index = rng.integers(0, 6, (h, w), dtype=np.uint8)
    add("palette.png", png_file(w, h, 8, 3, [r.tobytes() for r in index], palette=palette.tobytes()),
        palette[index], "palette -> RGB")
    alpha = np.array([0, 64, 128, 255], dtype=np.uint8)  # entries 4 and 5 opaque
    expected = np.concatenate([palette[index], np.append(alpha, [255, 255]).astype(np.uint8)[index][:, :, None]], axis=2)
    add("palette_trns.png", png_file(w, h, 8, 3, [r.tobytes() for r in index], palette=palette.tobytes(),
                                     trns=alpha.tobytes()), expected, "palette with tRNS -> RGBA")
    g2 = rng.integers(0, 4, (h, w), dtype=np.uint8)
    packed = [bytes([(r[0] << 6) | (r[1] << 4) | (r[2] << 2) | r[3], r[4] << 6]) for r in g2]
    add("gray2.png", png_file(w, h, 2, 0, packed), (g2 * 85)[:, :, None], "2-bit gray -> 1 channel (x85)")
    add("gamma10.png", png_file(w, h, 8, 2, [r.tobytes() for r in rgb8], gamma=1.0), rgb8,
        "gAMA 1.0 (linear) RGB: samples as stored, no conversion to sRGB")
    add("gamma10_16.png", png_file(w, h, 16, 2, [r.astype(">u2").tobytes() for r in rgb16], gamma=1.0), scale16(rgb16),
        "gAMA 1.0 16-bit RGB: samples as stored, rounded to 8 bits")
    # Cross-check the 8-bit cases against Pillow (it keeps the high byte of 16-bit samples instead).
    for name in ("gray8.png", "rgb8.png", "rgba8.png", "palette.png", "gamma10.png"):
        a = np.asarray(Image.open(OUT / name).convert({1: "L", 3: "RGB", 4: "RGBA"}[cases[name]["channels"]]))
        a = a[:, :, None] if a.ndim == 2 else a
        assert np.array_equal(a, np.frombuffer(base64.b64decode(cases[name]["pixels"]), np.uint8).reshape(a.shape)), name
    write_json("png_decode.json", cases)


# MARK: Resizing (OpenCV) and colour


def resize_fixtures():
    rgb = cv2.imread(str(IMAGES / "dog.jpg"), cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    out = {"bilinear": [], "nearest": []}
    for (w, h) in [(416, 312), (416, 416), (1000, 700), (384, 288), (256, 192), (384, 576), (123, 457), (13, 11), (1, 1)]:
        for kind, flag in (("bilinear", cv2.INTER_LINEAR), ("nearest", cv2.INTER_NEAREST)):
            r = cv2.resize(rgb, (w, h), interpolation=flag)
            out[kind].append({"width": w, "height": h, "crc32": crc(r), "row0": b64(r[0, :16])})
    # Gray and RGBA sources, small odd sizes.
    rng = np.random.default_rng(5)
    out["small"] = []
    for c in (1, 4):
        src = rng.integers(0, 256, (9, 17, c), dtype=np.uint8)
        for (w, h) in [(5, 13), (40, 4)]:
            r = cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, c)
            out["small"].append({"source": b64(src), "sourceWidth": 17, "sourceHeight": 9, "channels": c,
                                 "width": w, "height": h, "pixels": b64(r)})
    # Float bilinear: OpenCV's float path (compared with a tolerance: SIMD rounding).
    src = rng.random((7, 11, 3), dtype=np.float32)
    out["float"] = []
    for (w, h) in [(20, 6), (4, 3), (11, 15)]:
        r = cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR)
        out["float"].append({"width": w, "height": h, "values": r.ravel().tolist()})
    out["floatSource"] = {"width": 11, "height": 7, "values": src.ravel().tolist()}
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out["grayCRC32"] = crc(gray)
    write_json("resize.json", out)


# MARK: Darknet (numpy transcriptions of src/image.c, float32 throughout)


def to_float(a):
    """Darknet's `(float)data[i] / 255.`: a double division rounded to float."""
    return (a.astype(np.float64) / 255.0).astype(np.float32)


def darknet_resize(im, w, h):
    H, W, C = im.shape
    f = np.float32
    w_scale = f(W - 1) / f(w - 1) if w > 1 else f(0)
    h_scale = f(H - 1) / f(h - 1) if h > 1 else f(0)
    part = np.empty((H, w, C), np.float32)
    for c in range(w):
        if c == w - 1 or W == 1:
            part[:, c] = im[:, W - 1]
        else:
            sx = f(c) * w_scale
            ix = int(sx)
            dx = sx - f(ix)
            part[:, c] = (f(1) - dx) * im[:, ix] + dx * im[:, ix + 1]
    out = np.empty((h, w, C), np.float32)
    for r in range(h):
        sy = f(r) * h_scale
        iy = int(sy)
        dy = sy - f(iy)
        out[r] = (f(1) - dy) * part[iy]
        if r == h - 1 or H == 1:
            continue
        out[r] = out[r] + dy * part[iy + 1]
    return out


def darknet_letterbox(im, w, h):
    H, W, C = im.shape
    f = np.float32
    if f(w) / f(W) < f(h) / f(H):
        new_w, new_h = w, (H * w) // W
    else:
        new_h, new_w = h, (W * h) // H
    resized = darknet_resize(im, new_w, new_h)
    boxed = np.full((h, w, C), 0.5, np.float32)
    dx, dy = (w - new_w) // 2, (h - new_h) // 2
    boxed[dy:dy + new_h, dx:dx + new_w] = resized
    return boxed, (new_w, new_h, dx, dy)


def darknet_rgb_to_hsv(p):
    r, g, b = (np.float32(v) for v in p)
    mx, mn = max(r, g, b), min(r, g, b)
    delta = mx - mn
    v = mx
    if mx == 0:
        s = h = np.float32(0)
    else:
        s = delta / mx
        with np.errstate(invalid="ignore", divide="ignore"):
            if r == mx:
                h = (g - b) / delta
            elif g == mx:
                h = np.float32(2) + (b - r) / delta
            else:
                h = np.float32(4) + (r - g) / delta
        if h < 0:
            h = h + np.float32(6)
        h = np.float32(np.float64(h) / 6.0)
        if delta == 0:
            h = np.float32(0)  # Darknet: NaN; Ocelli documents 0 for gray
    return [float(h), float(s), float(v)]


def darknet_fixtures():
    out = {"letterbox": [], "resize": []}
    rng = np.random.default_rng(3)
    samples = rng.integers(0, 416 * 416, 48)
    for name in ("dog.jpg", "eagle.jpg", "scream.jpg"):
        a = pillow_pixels((IMAGES / name).read_bytes())
        boxed, (new_w, new_h, dx, dy) = darknet_letterbox(to_float(a), 416, 416)
        flat = boxed.reshape(-1, 3)
        out["letterbox"].append({
            "name": name, "width": 416, "height": 416, "resizedWidth": new_w, "resizedHeight": new_h,
            "offsetX": dx, "offsetY": dy, "crc32": crc(boxed.astype("<f4")),
            "samples": [{"index": int(i), "rgb": flat[i].tolist()} for i in samples],
        })
        resized = darknet_resize(to_float(a), 416, 416)
        out["resize"].append({"name": name, "width": 416, "height": 416, "crc32": crc(resized.astype("<f4"))})
    # Small exact cases, every value stored.
    src = to_float(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8))
    out["small"] = {"source": src.ravel().tolist(), "sourceWidth": 7, "sourceHeight": 5, "cases": [
        {"width": w, "height": h, "values": darknet_resize(src, w, h).ravel().tolist()}
        for (w, h) in [(4, 9), (9, 2), (1, 3), (7, 5), (13, 11)]]}
    # Colour: Darknet's rgb_to_hsv on edge cases and random pixels.
    pixels = [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0.2, 0.4, 0.1]]
    pixels += rng.random((40, 3), dtype=np.float32).tolist()
    pixels = [[float(np.float32(v)) for v in p] for p in pixels]
    out["hsv"] = [{"rgb": p, "hsv": darknet_rgb_to_hsv(p)} for p in pixels]
    write_json("darknet.json", out)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    jpeg_fixtures()
    png_fixtures()
    resize_fixtures()
    darknet_fixtures()
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT.relative_to(ROOT)}")
    assert total < 200_000, "fixtures must stay small"
