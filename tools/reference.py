#!/usr/bin/env python3
"""Independent Python reference for the ekyc-liveness face detection, liveness and embedding pipeline.

This script re-implements, without OpenCV and without any Rust code, the exact
preprocessing and scoring that the Rust service performs, so that the Rust
tests can check their scores against ``tests/fixtures/reference_scores.json``
within an absolute tolerance of 1e-3, and their face embeddings against
``tests/fixtures/reference_embeddings.json`` within 1e-4 cosine. It covers:

* image decoding with Pillow, honouring the EXIF Orientation tag
  (``PIL.ImageOps.exif_transpose``; the minivision samples carry Orientation=6);
* a half-pixel-centre bilinear resize (sx = (x+0.5)*in/out - 0.5, clamped at 0,
  no antialiasing, no rounding; float64 internally, float32 at the tensor),
  used for every resize in the pipeline;
* the BlazeFace detector letterbox (square NxN canvas, zero padding,
  x/127.5 - 1, NCHW RGB; N = 128 short range, 192 full range), the SSD anchors
  (short: 16x16x2 + 8x8x6 = 896; full: 48x48x1 = 2304), box/keypoint decoding,
  sigmoid scores >= 0.5 and score-weighted NMS (IoU > 0.3), then mapping back
  to original-image pixels; short range first, full range only as a fallback;
  the face with the largest box area is used for liveness and the embedding;
* the minivision ``CropImage._get_new_box`` crop (scale 2.7 for MiniFASNetV2
  and apk_v1_crop27, 4.0 for MiniFASNetV1SE; the enlarged box is shifted - not
  clipped - into the image; integer truncation; inclusive crop), resize to
  80x80, BGR, raw 0..255, NCHW; softmax of the 3 logits, live probability = p[1];
* the default ensemble's score (DEFAULT_ENSEMBLE: apk_v1_crop27 alone since
  issue 13's measured choice, docs/ensembles.md) = the weighted mean of its
  models' live probabilities. Every model's score is written, so the Rust tests
  can check whichever models they run;
* the liveness score = the manifest's Platt calibration for that ensemble
  (``[[calibration]]`` in models/manifest.toml: sigmoid(a * logit(p) + b),
  p clamped to [1e-4, 1 - 1e-4]), or the ensemble score when it has none;
* with --embeddings-out, the face embedding of that same largest face
  (crates/core/src/embed.rs): the model, its input spec (size, layout, colour
  order, mean, std in 0..255 units, per channel in the model's order) and its
  alignment template (keypoint index -> input-pixel x, y; BlazeFace keypoints
  0..3 = right eye, left eye, nose tip, mouth centre) are read from the
  manifest's ``mobilefacenet`` entry; the least-squares 2-D similarity
  (rotation, uniform scale, translation; Umeyama's closed form, no reflection;
  float64) taking the template points onto the keypoints (both in continuous
  pixel coordinates, pixel (i, j) spanning [i, i+1) x [j, j+1)); every input
  pixel (gx, gy) samples the image at T(gx + 0.5, gy + 0.5) - (0.5, 0.5)
  (pixel-index coordinates), bilinearly from the 4 neighbouring pixels, each
  neighbour outside the image black (0, 0, 0), no clamping; then
  (value - mean) / std, float32 at the tensor. The embedding is the model's
  first output (dims values), L2-normalised in float64 and written with 7
  significant digits.

Liveness models are loaded only with --out; an --embeddings-out-only run does
not need them.

Run (from the repository root, with the venv described in
tools/requirements-reference.txt):

    python3 -m venv /work/.venv-ref
    /work/.venv-ref/bin/pip install -r tools/requirements-reference.txt
    /work/.venv-ref/bin/python tools/reference.py \\
        --models /work/shared/models --provisioned models \\
        --images /work/shared/testdata/faces/live /work/shared/testdata/faces/spoof \\
        --out tests/fixtures/reference_scores.json
    /work/.venv-ref/bin/python tools/reference.py --models /work/shared/models \\
        --images /work/shared/testdata/faces/{live,spoof,id,other} \\
        --embeddings-out tests/fixtures/reference_embeddings.json

Image paths in the JSON are relative to the faces root (by default the common
parent of the --images directories), e.g. "live/facerec_obama.jpg". The
embeddings file lists the images with a face under "images" and the others
under "no_face", both sorted by path.
"""

import argparse
import json
import math
import os
import sys
import tomllib

import numpy as np
import onnxruntime as ort
import PIL
from PIL import Image, ImageOps

IMAGE_EXTS = (".jpg", ".jpeg", ".png")

SCORE_THRESHOLD = 0.5
NMS_IOU = 0.3
LOGIT_CLIP = 100.0

# (name, where, model file, scale S) for the liveness models. where = "models": the --models mirror
# layout; "provisioned": the --provisioned directory (models built by a recipe, such as the
# minivision APK conversion, which the mirror does not hold).
LIVENESS_MODELS = [
    ("MiniFASNetV2", "models", "minifasnet/MiniFASNetV2.onnx", 2.7),
    ("MiniFASNetV1SE", "models", "minifasnet/MiniFASNetV1SE.onnx", 4.0),
    ("apk_v1_crop27", "provisioned", "apk_v1_crop27.onnx", 2.7),
]
# The default ensemble and its weights (models/manifest.toml: default = true, weight).
DEFAULT_ENSEMBLE = {"apk_v1_crop27": 1.0}

# The embedding model's manifest entry (its [model.input] and [model.embedding]).
EMBEDDING_MODEL = "mobilefacenet"

DETECTORS = {
    "short": ("mediapipe/face_detection_short_range.onnx", 128),
    "full": ("mediapipe/face_detection_full_range.onnx", 192),
}


# --------------------------------------------------------------------------
# Image loading and resizing
# --------------------------------------------------------------------------

def load_image(path):
    """Decode, apply EXIF orientation, convert to RGB; returns uint8 HxWx3."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB")
        arr = np.asarray(im, dtype=np.uint8).copy()
    return arr


def _axis_coords(in_size, out_size):
    """Source indices/weights for one axis of the half-pixel bilinear resize."""
    i0 = np.empty(out_size, dtype=np.int64)
    i1 = np.empty(out_size, dtype=np.int64)
    f = np.empty(out_size, dtype=np.float64)
    last = in_size - 1
    for x in range(out_size):
        s = (x + 0.5) * in_size / out_size - 0.5
        if s < 0.0:
            s = 0.0
        if s >= last:
            a = last
            b = last
            fr = 0.0
        else:
            a = int(math.floor(s))
            if a > last:
                a = last
            b = min(a + 1, last)
            fr = s - a
        i0[x] = a
        i1[x] = b
        f[x] = fr
    return i0, i1, f


def resize_bilinear(img, out_w, out_h):
    """Half-pixel bilinear resize of an HxWxC array; returns float64 out_h x out_w x C."""
    in_h, in_w = img.shape[0], img.shape[1]
    src = img.astype(np.float64)
    x0, x1, fx = _axis_coords(in_w, out_w)
    y0, y1, fy = _axis_coords(in_h, out_h)
    fx = fx[None, :, None]
    fy = fy[:, None, None]
    p00 = src[y0][:, x0]
    p01 = src[y0][:, x1]
    p10 = src[y1][:, x0]
    p11 = src[y1][:, x1]
    top = (1.0 - fx) * p00 + fx * p01
    bot = (1.0 - fx) * p10 + fx * p11
    return (1.0 - fy) * top + fy * bot


# --------------------------------------------------------------------------
# BlazeFace detector
# --------------------------------------------------------------------------

def make_anchors(kind):
    """Anchor centres (A,2) in normalised coordinates, in model output order."""
    if kind == "short":
        groups = [(16, 2), (8, 6)]
    elif kind == "full":
        groups = [(48, 1)]
    else:
        raise ValueError(kind)
    out = []
    for grid, per_cell in groups:
        for y in range(grid):
            for x in range(grid):
                for _ in range(per_cell):
                    out.append(((x + 0.5) / grid, (y + 0.5) / grid))
    return np.array(out, dtype=np.float64)


def letterbox(img, n):
    """Letterbox to n x n; returns (NCHW float32 tensor, new_w, new_h, off_x, off_y)."""
    h, w = img.shape[0], img.shape[1]
    s = max(w, h)
    new_w = max(1, int(math.floor(w * n / s + 0.5)))
    new_h = max(1, int(math.floor(h * n / s + 0.5)))
    resized = resize_bilinear(img, new_w, new_h)
    canvas = np.zeros((n, n, 3), dtype=np.float64)
    off_x = (n - new_w) // 2
    off_y = (n - new_h) // 2
    canvas[off_y:off_y + new_h, off_x:off_x + new_w, :] = resized
    norm = (canvas - 127.5) / 127.5
    tensor = norm.transpose(2, 0, 1)[None].astype(np.float32)
    return tensor, new_w, new_h, off_x, off_y


def _iou(a, b):
    """IoU of two (xmin, ymin, xmax, ymax) boxes."""
    ix0 = max(a[0], b[0])
    iy0 = max(a[1], b[1])
    ix1 = min(a[2], b[2])
    iy1 = min(a[3], b[3])
    iw = max(0.0, ix1 - ix0)
    ih = max(0.0, iy1 - iy0)
    inter = iw * ih
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    if union <= 0.0:
        return 0.0
    return inter / union


def weighted_nms(cands):
    """cands: list of dicts with 'box' (xmin,ymin,xmax,ymax), 'kps' (6x2), 'score'."""
    remaining = sorted(cands, key=lambda c: -c["score"])  # Python sort is stable
    merged = []
    while remaining:
        first = remaining[0]
        group = []
        rest = []
        for idx, c in enumerate(remaining):
            if idx == 0 or _iou(first["box"], c["box"]) > NMS_IOU:
                group.append(c)
            else:
                rest.append(c)
        wsum = sum(c["score"] for c in group)
        box = [sum(c["score"] * c["box"][k] for c in group) / wsum for k in range(4)]
        kps = [
            [sum(c["score"] * c["kps"][k][j] for c in group) / wsum for j in range(2)]
            for k in range(6)
        ]
        merged.append({"box": box, "kps": kps, "score": first["score"]})
        remaining = rest
    return merged


class Detector:
    def __init__(self, models_dir, kind):
        rel, n = DETECTORS[kind]
        self.kind = kind
        self.n = n
        self.sess = make_session(os.path.join(models_dir, rel))
        self.input_name = self.sess.get_inputs()[0].name
        self.anchors = make_anchors(kind)
        a = self.anchors.shape[0]
        self.reg_idx = None
        self.cls_idx = None
        for i, o in enumerate(self.sess.get_outputs()):
            shape = list(o.shape)
            if shape == [1, a, 16]:
                self.reg_idx = i
            elif shape == [1, a, 1]:
                self.cls_idx = i
        if self.reg_idx is None or self.cls_idx is None:
            raise RuntimeError(
                "cannot identify regressor/logit outputs of %s: %s"
                % (rel, [o.shape for o in self.sess.get_outputs()]))

    def detect(self, img):
        h, w = img.shape[0], img.shape[1]
        n = self.n
        tensor, new_w, new_h, off_x, off_y = letterbox(img, n)
        outs = self.sess.run(None, {self.input_name: tensor})
        reg = np.asarray(outs[self.reg_idx], dtype=np.float64)[0]
        logits = np.asarray(outs[self.cls_idx], dtype=np.float64)[0, :, 0]
        cands = []
        for i in range(self.anchors.shape[0]):
            lg = min(max(logits[i], -LOGIT_CLIP), LOGIT_CLIP)
            score = 1.0 / (1.0 + math.exp(-lg))
            if score < SCORE_THRESHOLD:
                continue
            ax, ay = self.anchors[i]
            r = reg[i]
            cx = r[0] / n + ax
            cy = r[1] / n + ay
            bw = r[2] / n
            bh = r[3] / n
            box = [cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0]
            kps = [[r[4 + 2 * k] / n + ax, r[5 + 2 * k] / n + ay] for k in range(6)]
            cands.append({"box": box, "kps": kps, "score": score})
        faces = []
        sx = w / new_w
        sy = h / new_h

        def mx(v):
            return (v * n - off_x) * sx

        def my(v):
            return (v * n - off_y) * sy

        for m in weighted_nms(cands):
            x0, y0 = mx(m["box"][0]), my(m["box"][1])
            x1, y1 = mx(m["box"][2]), my(m["box"][3])
            faces.append({
                "box": [x0, y0, x1 - x0, y1 - y0],
                "score": m["score"],
                "keypoints": [[mx(p[0]), my(p[1])] for p in m["kps"]],
            })
        return faces


# --------------------------------------------------------------------------
# MiniFASNet liveness
# --------------------------------------------------------------------------

def minivision_crop_box(img_w, img_h, box, scale_s):
    """minivision CropImage._get_new_box; returns integer (l, t, r, b), inclusive."""
    x, y, bw, bh = box
    scale = min((img_h - 1) / bh, (img_w - 1) / bw, scale_s)
    nw = bw * scale
    nh = bh * scale
    cx = x + bw / 2.0
    cy = y + bh / 2.0
    l = cx - nw / 2.0
    t = cy - nh / 2.0
    r = cx + nw / 2.0
    b = cy + nh / 2.0
    if l < 0:
        r -= l
        l = 0.0
    if t < 0:
        b -= t
        t = 0.0
    if r > img_w - 1:
        l -= r - (img_w - 1)
        r = float(img_w - 1)
    if b > img_h - 1:
        t -= b - (img_h - 1)
        b = float(img_h - 1)
    return int(l), int(t), int(r), int(b)


def liveness_tensor(img, box, scale_s):
    h, w = img.shape[0], img.shape[1]
    l, t, r, b = minivision_crop_box(w, h, box, scale_s)
    crop = img[t:b + 1, l:r + 1]
    resized = resize_bilinear(crop, 80, 80)  # RGB, 0..255 float64
    bgr = resized[:, :, ::-1]
    return bgr.transpose(2, 0, 1)[None].astype(np.float32)


def softmax(v):
    v = np.asarray(v, dtype=np.float64)
    e = np.exp(v - v.max())
    return e / e.sum()


class Liveness:
    def __init__(self, models_dir, name, rel, scale_s):
        self.name = name
        self.scale_s = scale_s
        self.sess = make_session(os.path.join(models_dir, rel))
        self.input_name = self.sess.get_inputs()[0].name

    def live_prob(self, img, box):
        tensor = liveness_tensor(img, box, self.scale_s)
        out = self.sess.run(None, {self.input_name: tensor})[0]
        p = softmax(np.asarray(out).reshape(-1))
        return float(p[1])


# --------------------------------------------------------------------------
# Face embedding (alignment by a similarity transform, MobileFaceNet)
# --------------------------------------------------------------------------

def load_model_entry(manifest_path, name):
    """The manifest's [[model]] entry called `name`."""
    with open(manifest_path, "rb") as fh:
        manifest = tomllib.load(fh)
    for m in manifest.get("model", []):
        if m.get("name") == name:
            return m
    raise SystemExit("%s: no [[model]] named %r" % (manifest_path, name))


def fit_similarity(src, dst):
    """Least-squares similarity (rotation + uniform scale + translation, no reflection) taking the
    points src onto dst: returns (A, src_mean, dst_mean) with p = A @ (q - src_mean) + dst_mean,
    A = [[c, -s], [s, c]]; None when degenerate (the Rust Similarity::fit refuses the same)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.shape[0] < 2:
        return None
    ms = src.mean(axis=0)
    md = dst.mean(axis=0)
    q = src - ms
    p = dst - md
    a = float(np.sum(q[:, 0] * p[:, 0] + q[:, 1] * p[:, 1]))
    b = float(np.sum(q[:, 0] * p[:, 1] - q[:, 1] * p[:, 0]))
    norm = float(np.sum(q * q))
    if not (norm > 1e-9 and math.isfinite(a) and math.isfinite(b)):
        return None
    c, s = a / norm, b / norm
    if not (math.hypot(c, s) > 1e-9):
        return None
    return np.array([[c, -s], [s, c]]), ms, md


def aligned_tensor(img, sim, spec):
    """The model input: each input pixel's centre mapped into the image by `sim`, sampled
    bilinearly (outside the image: black), normalised per the manifest's [model.input]."""
    w, h = int(spec["width"]), int(spec["height"])
    if w != h:
        raise SystemExit("embedding input must be square, got %dx%d" % (w, h))
    A, ms, md = sim
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float64) + 0.5,
                         np.arange(h, dtype=np.float64) + 0.5)
    u = gx - ms[0]
    v = gy - ms[1]
    # Continuous image coordinates -> pixel-index coordinates (pixel centres at integers).
    x = md[0] + A[0, 0] * u + A[0, 1] * v - 0.5
    y = md[1] + A[1, 0] * u + A[1, 1] * v - 0.5
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0)[:, :, None]
    fy = (y - y0)[:, :, None]
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    ih, iw = img.shape[0], img.shape[1]
    src = img.astype(np.float64)

    def tap(xi, yi):
        inside = (xi >= 0) & (yi >= 0) & (xi < iw) & (yi < ih)
        out = src[np.clip(yi, 0, ih - 1), np.clip(xi, 0, iw - 1)]
        return np.where(inside[:, :, None], out, 0.0)

    p00, p01 = tap(x0, y0), tap(x0 + 1, y0)
    p10, p11 = tap(x0, y0 + 1), tap(x0 + 1, y0 + 1)
    top = p00 + (p01 - p00) * fx
    bot = p10 + (p11 - p10) * fx
    rgb = top + (bot - top) * fy  # h x w x 3, RGB, 0..255
    color = spec["color"]
    if color == "RGB":
        chans = rgb
    elif color == "BGR":
        chans = rgb[:, :, ::-1]
    else:
        raise SystemExit("unknown colour order %r" % color)
    mean = np.asarray(spec["mean"], dtype=np.float64)
    std = np.asarray(spec["std"], dtype=np.float64)
    norm = (chans - mean) / std
    layout = spec["layout"]
    if layout == "NCHW":
        t = norm.transpose(2, 0, 1)[None]
    elif layout == "NHWC":
        t = norm[None]
    else:
        raise SystemExit("unknown layout %r" % layout)
    return np.ascontiguousarray(t, dtype=np.float32)


class Embedder:
    def __init__(self, model_path, entry):
        self.name = entry["name"]
        self.input = entry["input"]
        emb = entry["embedding"]
        self.dims = int(emb["dims"])
        self.template = [(int(t["keypoint"]), float(t["x"]), float(t["y"])) for t in emb["template"]]
        self.sess = make_session(model_path)
        self.input_name = self.sess.get_inputs()[0].name

    def embed(self, img, face):
        """(keypoints used, L2-normalised float64 embedding) of `face` in `img`."""
        kps = [face["keypoints"][k] for k, _, _ in self.template]
        sim = fit_similarity([(x, y) for _, x, y in self.template], kps)
        if sim is None:
            raise RuntimeError("keypoints too close to align: %r" % (kps,))
        tensor = aligned_tensor(img, sim, self.input)
        out = np.asarray(self.sess.run(None, {self.input_name: tensor})[0], dtype=np.float64).reshape(-1)
        if out.size != self.dims:
            raise RuntimeError("%s: %d output values, %d expected" % (self.name, out.size, self.dims))
        norm = math.sqrt(float(np.sum(out * out)))
        if not (math.isfinite(norm) and norm > 1e-12):
            raise RuntimeError("%s: embedding is zero or not finite" % self.name)
        return kps, out / norm


def sig7(v):
    """`v` rounded to 7 significant digits."""
    return float("%.7g" % v)


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def load_calibration(manifest_path, fusion="mean_probability"):
    """The manifest's Platt (a, b) for exactly DEFAULT_ENSEMBLE's models, or None."""
    with open(manifest_path, "rb") as fh:
        manifest = tomllib.load(fh)
    for c in manifest.get("calibration", []):
        if sorted(c["models"]) == sorted(DEFAULT_ENSEMBLE) and c["fusion"] == fusion:
            return float(c["platt"][0]), float(c["platt"][1])
    return None


def calibrated(p, platt):
    if platt is None:
        return p
    a, b = platt
    p = min(max(p, 1e-4), 1.0 - 1e-4)  # Platt::EPS in crates/core/src/liveness.rs
    return 1.0 / (1.0 + math.exp(-(a * math.log(p / (1.0 - p)) + b)))


def make_session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def largest_face(faces):
    best = None
    best_area = -1.0
    for f in faces:
        area = f["box"][2] * f["box"][3]
        if area > best_area:
            best = f
            best_area = area
    return best


def process_image(path, rel, detectors, liveness, platt, pixels_from=None, embedder=None):
    """(the scores entry, the embedding entry or None); liveness may be empty (no --out)."""
    # With --pixels-from, take the upright RGB pixels the Rust decoder produced (written by
    # `ekyc decode --out DIR`, as DIR/<rel>.png) so that the comparison isolates everything after
    # decoding: JPEG decoders (libjpeg-turbo in Pillow vs zune-jpeg in Rust) differ by a few levels.
    if pixels_from:
        img = load_image(os.path.join(pixels_from, rel + ".png"))
    else:
        img = load_image(path)
    h, w = img.shape[0], img.shape[1]
    used = None
    faces = []
    for kind in ("short", "full"):
        faces = detectors[kind].detect(img)
        if faces:
            used = kind
            break
    entry = {
        "path": rel,
        "width": int(w),
        "height": int(h),
        "detector": used,
        "faces": [
            {
                "box": [float(v) for v in f["box"]],
                "score": float(f["score"]),
                "keypoints": [[float(p[0]), float(p[1])] for p in f["keypoints"]],
            }
            for f in faces
        ],
        "scores": {},
        "ensemble": None,
        "liveness_score": None,
    }
    emb = None
    if faces and embedder is not None:
        kps, e = embedder.embed(img, largest_face(faces))
        emb = {
            "path": rel,
            "detector": used,
            "keypoints": [[float(p[0]), float(p[1])] for p in kps],
            "embedding": [sig7(v) for v in e],
        }
    if faces and liveness:
        face = largest_face(faces)
        total_w = 0.0
        acc = 0.0
        for model in liveness:
            p = model.live_prob(img, face["box"])
            entry["scores"][model.name] = p
            wgt = DEFAULT_ENSEMBLE.get(model.name)
            if wgt is not None:
                acc += wgt * p
                total_w += wgt
        entry["ensemble"] = float(acc / total_w)
        entry["liveness_score"] = float(calibrated(entry["ensemble"], platt))
    return entry, emb


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", required=True, help="models directory (contains mediapipe/ and minifasnet/)")
    ap.add_argument("--provisioned", default="models",
                    help="directory of provisioned models (recipe outputs such as apk_v1_crop27.onnx)")
    ap.add_argument("--manifest", default="models/manifest.toml",
                    help="the model manifest (its [[calibration]] for the default ensemble)")
    ap.add_argument("--images", required=True, nargs="+", help="image directories")
    ap.add_argument("--root", default=None,
                    help="root that JSON paths are relative to (default: common parent of --images)")
    ap.add_argument("--out", default=None,
                    help="output JSON file of detections and liveness scores (loads the liveness models)")
    ap.add_argument("--embeddings-out", default=None,
                    help="output JSON file of the largest face's embedding per image")
    ap.add_argument("--embedding-model", default=None,
                    help="the embedding model's ONNX file (default: its manifest mirror_path under --models, "
                         "mobilefacenet/MobileFaceNet.onnx)")
    ap.add_argument("--pixels-from", default=None,
                    help="directory of decoded upright RGB PNGs (DIR/<rel>.png, from `ekyc decode --out DIR`)")
    args = ap.parse_args(argv)
    if not args.out and not args.embeddings_out:
        ap.error("nothing to do: give --out and/or --embeddings-out")

    dirs = [os.path.abspath(d) for d in args.images]
    root = os.path.abspath(args.root) if args.root else os.path.commonpath(
        [os.path.dirname(d.rstrip(os.sep)) for d in dirs])

    files = []
    for d in dirs:
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p) and name.lower().endswith(IMAGE_EXTS):
                files.append((os.path.relpath(p, root).replace(os.sep, "/"), p))
    files.sort(key=lambda t: t[0])

    detectors = {k: Detector(args.models, k) for k in DETECTORS}
    dirs_by_kind = {"models": args.models, "provisioned": args.provisioned}
    liveness = []
    if args.out:
        liveness = [Liveness(dirs_by_kind[where], name, rel, s) for name, where, rel, s in LIVENESS_MODELS]
    embedder = None
    if args.embeddings_out:
        entry = load_model_entry(args.manifest, EMBEDDING_MODEL)
        model_path = args.embedding_model or os.path.join(args.models, entry["mirror_path"])
        embedder = Embedder(model_path, entry)

    platt = load_calibration(args.manifest)
    images = []
    embeddings = []
    no_face = []
    for rel, p in files:
        entry, emb = process_image(p, rel, detectors, liveness, platt, args.pixels_from, embedder)
        images.append(entry)
        if emb is not None:
            embeddings.append(emb)
        elif not entry["faces"]:
            no_face.append(rel)
        if entry["faces"]:
            f = largest_face(entry["faces"])
            b = f["box"]
            scores = " ".join("%s=%.4f" % (k, v) for k, v in entry["scores"].items())
            ens = " ens=%.4f" % entry["ensemble"] if entry["ensemble"] is not None else ""
            print(("%-40s %5dx%-5d %-5s faces=%d box=(%.1f,%.1f,%.1f,%.1f) %s%s" % (
                rel, entry["width"], entry["height"], entry["detector"], len(entry["faces"]),
                b[0], b[1], b[2], b[3], scores, ens)).rstrip(), file=sys.stderr)
        else:
            print("%-40s %5dx%-5d NO FACE" % (rel, entry["width"], entry["height"]), file=sys.stderr)

    versions = {
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
    }
    pixels = "rust-decoded PNGs (ekyc decode)" if args.pixels_from else "Pillow decode"
    if args.embeddings_out:
        write_json(args.embeddings_out, {
            "generator": "tools/reference.py",
            "versions": versions,
            "pixels": pixels,
            "model": embedder.name,
            "tolerance_cosine": 1e-4,
            "images": embeddings,
            "no_face": no_face,
        })
    if not args.out:
        return 0

    write_json(args.out, {
        "generator": "tools/reference.py",
        "versions": versions,
        "pixels": pixels,
        "default_ensemble": DEFAULT_ENSEMBLE,
        "calibration": list(platt) if platt else None,
        "images": images,
    })
    return 0


def write_json(path, doc):
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=1, allow_nan=False)
        fh.write("\n")


if __name__ == "__main__":
    sys.exit(main())
