#!/usr/bin/env python3
"""Developer tool (not run by the tests): regenerates the small PNG/JPEG files in tests/data/image/ and
tests/data/image/refs.txt, the decoded-pixel checksums that tests/test_image.c compares saa's image
loaders against. The expected pixels are OpenCV's (what SAA+ reads images and masks with):
    rgb    = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]        (saa_image_load)
    gray   = cv2.imread(path, cv2.IMREAD_GRAYSCALE)               (saa_image_load_gray)
    gray16 = cv2.imread(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_GRAYSCALE) as uint16 (saa_image_load_gray16)
It also lists the mtd-mini images of the shared folder (SHARED/data/mtd-mini, read-only; the test skips
them when the folder is absent) and reports where Pillow's convert("RGB") / convert("L") would differ.

Usage: scripts/make-image-refs.py [SHARED_DIR]   (default ../shared; run from the repository root)
refs.txt lines: "<where> <relative path> <rgb|gray|gray16> <w> <h> <c> <fnv1a-64 of the decoded bytes>",
where = "data" (tests/data/image) or "shared" (SHARED_DIR); uint16 samples hashed little endian.
"""
import glob
import os
import struct
import sys
import zlib

import cv2
import numpy as np
from PIL import Image

OUT = "tests/data/image"


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def png_chunk(tag, payload):
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """samples: 1-D uint array of one (sub)image row, all channels interleaved."""
    if depth == 16:
        return np.asarray(samples, dtype=">u2").tobytes()
    if depth == 8:
        return np.asarray(samples, dtype=np.uint8).tobytes()
    per = 8 // depth
    out = bytearray((len(samples) + per - 1) // per)
    for i, v in enumerate(samples):
        out[i // per] |= int(v) << (8 - depth * (i % per + 1))
    return bytes(out)


def write_png(path, img, color_type, depth, interlace=False, palette=None, trns=None):
    """Minimal PNG writer (filter 0) so that interlaced and 1/2/4-bit files can be made."""
    h, w = img.shape[:2]
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    img = img.reshape(h, w, ch)
    raw = bytearray()
    if not interlace:
        passes = [(0, 0, 1, 1)]
    else:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    for x0, y0, dx, dy in passes:
        sub = img[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\0" + pack_row(row.reshape(-1), depth)
    data = b"\x89PNG\r\n\x1a\n"
    data += png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        data += png_chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        data += png_chunk(b"tRNS", bytes(trns))
    data += png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    data += png_chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def make_files():
    rng = np.random.default_rng(7)
    h, w = 17, 23
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([xx * 11 % 256, yy * 15 % 256, (xx * yy) % 256], -1).astype(np.uint8)
    noise = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    wide = rng.integers(0, 65536, (h, w, 4), dtype=np.uint16)
    files = []

    def add(name):
        files.append(name)
        return os.path.join(OUT, name)

    Image.fromarray(noise[..., :3], "RGB").save(add("rgb8.png"))
    Image.fromarray(noise, "RGBA").save(add("rgba8.png"))
    Image.fromarray(noise[..., 0], "L").save(add("gray8.png"))
    Image.fromarray(noise[..., :2].copy(), "LA").save(add("la8.png"))
    Image.fromarray(smooth, "RGB").quantize(16).save(add("palette.png"))
    p = Image.fromarray(smooth, "RGB").quantize(16)
    p.info["transparency"] = 3
    p.save(add("palette_trns.png"), transparency=3)
    cv2.imwrite(add("gray16.png"), wide[..., 0])
    cv2.imwrite(add("rgb16.png"), wide[..., :3])
    cv2.imwrite(add("rgba16.png"), wide)
    write_png(add("la16.png"), wide[..., :2], 4, 16)
    write_png(add("rgb8_interlaced.png"), noise[..., :3], 2, 8, interlace=True)
    write_png(add("gray16_interlaced.png"), wide[..., 0], 0, 16, interlace=True)
    write_png(add("gray1.png"), noise[..., 0] >> 7, 0, 1)
    write_png(add("gray2.png"), noise[..., 0] >> 6, 0, 2, interlace=True)
    write_png(add("gray4.png"), noise[..., 0] >> 4, 0, 4)
    write_png(add("palette4.png"), noise[..., 0] >> 4, 3, 4, palette=rng.integers(0, 256, (16, 3)))
    write_png(add("gray8_trns.png"), noise[..., 0], 0, 8, trns=struct.pack(">H", int(noise[0, 0, 0])))
    big = np.stack([xx * 7 + yy * 3, 255 - xx * 5, yy * 13], -1).clip(0, 255).astype(np.uint8)
    big = np.kron(big, np.ones((2, 2, 1), np.uint8))  # 34x46, smooth: JPEG-friendly
    Image.fromarray(big, "RGB").save(add("color420.jpg"), quality=90)
    Image.fromarray(big, "RGB").save(add("color444.jpg"), quality=95, subsampling=0)
    Image.fromarray(big, "RGB").save(add("progressive.jpg"), quality=85, progressive=True)
    Image.fromarray(big[..., 1], "L").save(add("gray.jpg"), quality=90)
    Image.fromarray(big[:, :45], "RGB").save(add("odd422.jpg"), quality=80, subsampling=1)
    small = np.zeros((9, 14, 3), np.uint8)
    small[:3, :5] = 255
    small[..., 1] = np.arange(14) * 18
    for o in range(1, 9):  # EXIF orientation: cv2.imread re-orients, PIL does not
        exif = Image.Exif()
        exif[0x0112] = o
        Image.fromarray(small, "RGB").save(add(f"exif{o}.jpg"), quality=95, exif=exif.tobytes())
    return files


def decoded(path, mode):
    if mode == "rgb":
        a = cv2.imread(path, cv2.IMREAD_COLOR)
        return None if a is None else np.ascontiguousarray(a[..., ::-1])
    if mode == "gray":
        return cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    a = cv2.imread(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_GRAYSCALE)
    return None if a is None else a.astype("<u2")


def line(where, rel, path, mode):
    a = decoded(path, mode)
    h, w = a.shape[:2]
    c = 1 if a.ndim == 2 else a.shape[2]
    note = ""
    if mode != "gray16":
        im = Image.open(path)
        p = np.asarray(im.convert("RGB" if mode == "rgb" else "L")).reshape(a.shape)
        if not np.array_equal(p, a):
            note = f"  # PIL differs ({im.mode}): {int((p != a).sum())} samples"
    return f"{where} {rel} {mode} {w} {h} {c} {fnv1a64(a.tobytes()):016x}", note


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else "../shared"
    os.makedirs(OUT, exist_ok=True)
    lines = []
    for name in make_files():
        for mode in ("rgb", "gray", "gray16"):
            l, note = line("data", name, os.path.join(OUT, name), mode)
            lines.append(l)
            if note:
                print(name, mode, note)
    mtd = os.path.join(shared, "data", "mtd-mini")
    for path in sorted(glob.glob(os.path.join(mtd, "*", "Imgs", "*"))):
        rel = os.path.relpath(path, shared)
        for mode in ("rgb", "gray"):
            l, note = line("shared", rel, path, mode)
            lines.append(l)
            if note:
                print(rel, mode, note)
    with open(os.path.join(OUT, "refs.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines)} references, OpenCV {cv2.__version__}, Pillow {Image.__version__}")


if __name__ == "__main__":
    main()
