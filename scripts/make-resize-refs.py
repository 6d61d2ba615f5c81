#!/usr/bin/env python3
"""Developer tool (not run by the tests): regenerates tests/data/resize/refs.bin, the reference outputs
of Pillow's Image.resize(BILINEAR) and OpenCV's cv2.resize (INTER_NEAREST / LINEAR / CUBIC, uint8 and
float32) that tests/test_image.c compares saa's resize kernels against.

Needs python3 with numpy, Pillow (9.4 is what SAA+'s goldens used) and opencv-python (cv2 4.x).
Usage: scripts/make-resize-refs.py [OUT]   (default tests/data/resize/refs.bin)

Inputs are not stored: they are regenerated from a 32-bit LCG (the test has the same generator):
    state = state * 1664525 + 1013904223 (mod 2^32)
    uint8 sample   = state >> 24
    float32 sample = float32(int32(state)) / 2^28   ("wide", [-8, 8))
                  or  float32(state) / 2^32          ("unit", [0, 1], like saliency/anomaly maps)
    (uint32/int32 -> float32 rounds to nearest even, so samples use the full 24-bit mantissa and the
    summation order of every kernel matters)
    float64 sample = (float64(int32(s1)) + float64(s2) / 2^32) / 2^28   ("wide", two draws s1, s2)
                  or (float64(s1) + float64(s2) / 2^32) / 2^32         ("unit")
    int32 sample   = int32(state)   (INTER_NEAREST only: SAA+ resizes int32 object masks)
File layout (little endian):
    "SAARSZ01", u32 case count, then per case:
    u8 lib (0 = PIL bilinear, 1 = cv2), u8 dtype (0 = uint8, 1 = float32, 2 = float64, 3 = int32),
    u8 interp (cv2 code),
    u8 value range (0 = wide, 1 = unit; float only), u16 w, h, c, ow, oh, u32 seed,
    then oh*ow*c output samples (uint8, float32, float64 or int32).
"""
import struct
import sys

import numpy as np
import cv2
from PIL import Image


def lcg_stream(seed, n):
    out = np.empty(n, dtype=np.uint32)
    s = seed & 0xFFFFFFFF
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = s
    return out


def make_input(seed, w, h, c, dtype, vrange):
    st = lcg_stream(seed, w * h * c)
    if dtype == 2:
        st2 = lcg_stream(seed, 2 * w * h * c)
        hi, lo = st2[0::2], st2[1::2]
        top = hi.view(np.int32).astype(np.float64) if vrange == 0 else hi.astype(np.float64)
        a = (top + lo.astype(np.float64) / 2.0**32) / (2.0**28 if vrange == 0 else 2.0**32)
        return a.reshape(h, w, c)
    if dtype == 3:
        return st.view(np.int32).reshape(h, w, c)
    if dtype == 0:
        a = (st >> 24).astype(np.uint8)
    elif vrange == 0:
        a = st.view(np.int32).astype(np.float32) / np.float32(2**28)
    else:
        a = st.astype(np.float32) / np.float32(2**32)
    return a.reshape(h, w, c)


SIZES = [  # (w, h) -> (ow, oh)
    ((1, 1), (5, 3)), ((5, 3), (1, 1)), ((1, 9), (4, 30)), ((9, 1), (30, 4)), ((13, 1), (5, 1)),
    ((1, 13), (1, 5)), ((97, 13), (7, 13)), ((13, 97), (13, 7)), ((97, 97), (7, 7)), ((10, 10), (25, 17)),
    ((41, 30), (39, 29)), ((32, 24), (16, 12)), ((40, 30), (20, 15)), ((21, 13), (42, 26)),
    ((33, 21), (11, 7)), ((7, 5), (19, 23)), ((100, 3), (9, 3)), ((3, 100), (3, 9)), ((2, 2), (1, 1)),
    ((37, 29), (18, 14)), ((16, 16), (8, 8)), ((24, 12), (12, 6)), ((17, 40), (40, 17)),
]
INTERPS = [cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC]


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/resize/refs.bin"
    cases = []
    seed = 1
    for (w, h), (ow, oh) in SIZES:
        for c in (1, 3):
            seed += 1
            img = make_input(seed, w, h, c, 0, 0)
            pil = Image.fromarray(img[:, :, 0] if c == 1 else img, "L" if c == 1 else "RGB")
            r = np.asarray(pil.resize((ow, oh), Image.BILINEAR)).reshape(oh, ow, c)
            cases.append((0, 0, 1, 0, w, h, c, ow, oh, seed, r))
        for c in (1, 3, 4):
            if c == 4 and ow * oh > 200:
                continue
            for interp in INTERPS:
                seed += 1
                img = make_input(seed, w, h, c, 0, 0)
                r = cv2.resize(img, (ow, oh), interpolation=interp).reshape(oh, ow, c)
                cases.append((1, 0, interp, 0, w, h, c, ow, oh, seed, r))
                for vrange in ((0, 1) if c == 1 else (0,) if c == 3 and ow * oh <= 200 else ()):
                    seed += 1
                    img = make_input(seed, w, h, c, 1, vrange)
                    r = cv2.resize(img, (ow, oh), interpolation=interp).reshape(oh, ow, c)
                    cases.append((1, 1, interp, vrange, w, h, c, ow, oh, seed, r))
    for (w, h), (ow, oh) in SIZES:  # float64 maps and int32 masks, single channel
        for interp in INTERPS:
            for vrange in ((0, 1) if ow * oh <= 200 else (1,)):
                seed += 1
                img = make_input(seed, w, h, 1, 2, vrange)
                r = cv2.resize(img[:, :, 0], (ow, oh), interpolation=interp).reshape(oh, ow, 1)
                cases.append((1, 2, interp, vrange, w, h, 1, ow, oh, seed, r))
        seed += 1
        img = make_input(seed, w, h, 1, 3, 0)
        r = cv2.resize(img[:, :, 0], (ow, oh), interpolation=cv2.INTER_NEAREST).reshape(oh, ow, 1)
        cases.append((1, 3, cv2.INTER_NEAREST, 0, w, h, 1, ow, oh, seed, r))
    with open(out_path, "wb") as f:
        f.write(b"SAARSZ01")
        f.write(struct.pack("<I", len(cases)))
        for lib, dt, interp, vrange, w, h, c, ow, oh, seed, r in cases:
            f.write(struct.pack("<BBBBHHHHHI", lib, dt, interp, vrange, w, h, c, ow, oh, seed))
            f.write(np.ascontiguousarray(r, dtype=["u1", "<f4", "<f8", "<i4"][dt]).tobytes())
    print(f"{out_path}: {len(cases)} cases, Pillow {Image.__version__}, OpenCV {cv2.__version__}")


if __name__ == "__main__":
    main()
