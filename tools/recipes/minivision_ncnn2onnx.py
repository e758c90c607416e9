"""Reproducible recipe: convert a minivision Silent-Face APK liveness model from ncnn to ONNX.

Usage: python3 minivision_ncnn2onnx.py <folder>/<model> <dest.onnx> <workdir> [--source DIR]
                                        [--testdata DIR] [--logits]
  <folder>/<model>: 5094c88/model_1 | 5094c88/model_2 | d3852ff/model_1 | d3852ff/model_2
  --source DIR    read <folder>/<model>.param/.bin from DIR (laid out like the offline mirror
                  ../shared/models/minivision-apk); without it they are downloaded from
                  raw.githubusercontent.com at the pinned commit.
  --testdata DIR  the face images for the behaviour check (default: the repository's testdata/faces,
                  found next to this script or under the current directory).
  --logits        end the graph at the last InnerProduct (output `logits`, [1,3]) instead of the
                  ncnn graph's own Softmax (output `softmax`, [1,3], the default).

Steps:
  1. a throwaway venv under <workdir>/venv (reused when present) with the pinned PyPI packages below;
  2. fetch model_N.param/.bin and check both sha256 against the constants below;
  3. parse the ncnn .param (magic 7767517) and .bin (ncnn weight storage: flag-tagged float32, fp16 or
     quantisation-table weights for Convolution/ConvolutionDepthWise/InnerProduct, raw float32 for the
     rest) and build the ONNX graph with onnx.helper, one ONNX op (or two) per ncnn layer, opset 13;
     every .bin byte must be consumed;
  4. onnx.checker (full check), then the behaviour check: the converted model in onnxruntime against the
     original in the `ncnn` package (fp32 options), both fed the same BGR raw 0..255 image (ncnn through
     Mat.from_pixels PIXEL_BGR, as the app does), on every image of testdata/faces/{live,spoof} plus one
     seeded noise image: max |softmax difference| <= 1e-4 for each, else nothing is written;
  5. write <dest.onnx> and print its sha256; write <dest.onnx>.ncnn-check.json with the check's exact
     input pixels and ncnn's softmax on each (for checking another runtime against ncnn). The output is byte-reproducible (no timestamps, fixed
     names and order, pinned onnx/protobuf); EXPECTED_ONNX_SHA256 records the hashes of the reference
     run, and a mismatch is reported (not fatal: the behaviour check is the gate).
"""
import argparse
import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import time

REPO = "minivision-ai/Silent-Face-Anti-Spoofing-APK"
ASSETS = "engine/src/main/assets/live"
COMMITS = {
    "5094c88": "5094c8896793a3d8ee8cec4f01e392ff58ad117d",
    "d3852ff": "d3852fffe6b0fe32df21a76669c6a71a5e257bf1",
}
# sha256 of the inputs (NOTICE.md of the mirror, re-hashed from the mirror files) and how the app feeds
# each model (config.json of the same commit: the .param's `Input` line says 60x60, which is stale).
MODELS = {
    "5094c88/model_1": {
        "param": "88d3202267126ba3733ac4b606830d125fa0089449173b38b333dd15d4cef8d2",
        "bin": "8b68dde917a85770e5ef852d3495bad144200e42361d2420cea7cc819e5de8da",
        "width": 80, "height": 80, "org_resize": False, "scale": 2.7,
    },
    "5094c88/model_2": {
        "param": "b0eaed7d0af2437153e23a8b94516070384982840b68efe538b359d2aedff9a5",
        "bin": "dff55be3232f2a6f94f083c5ce38552f3a1d37bb4761c1b60d910ab962f9dd1a",
        "width": 60, "height": 80, "org_resize": True, "scale": 0.0,
    },
    "d3852ff/model_1": {
        "param": "88d3202267126ba3733ac4b606830d125fa0089449173b38b333dd15d4cef8d2",
        "bin": "60ba49675c24bc3533ccdc997499389955d3c8f7a9244ecee8bce929eea23509",
        "width": 80, "height": 80, "org_resize": False, "scale": 2.7,
    },
    "d3852ff/model_2": {
        "param": "bfb10dec01036d2515779e604b00b7311e9a67d0777a8c43974f5e9735cd27b0",
        "bin": "03318b9102e16321f171bf308609ce070d1c2d715c6b9213cdde4e0748a4421a",
        "width": 80, "height": 80, "org_resize": False, "scale": 4.0,
    },
}
PINS = [
    "ncnn==1.0.20261020",
    "onnx==1.23.2",
    "onnxruntime==1.31.1",
    "numpy==2.4.6",
    "pillow==13.0.0",
    "protobuf==7.36.2",
]
# sha256 of the converted files of the reference run (same pins), per (model, output mode).
EXPECTED_ONNX_SHA256 = {
    "5094c88/model_1:softmax": "4f5c9459c915673449a34049215b96b23b619f710199289410e66b0c312f63b5",
    "5094c88/model_2:softmax": "b637f143753faccb3c35f8bc8680763567e4a2ca23e0625d7e6b0102bd625841",
    "d3852ff/model_1:softmax": "7a42e99a5554602248be0c97aa019cc8460cf67b23615c62ad6ae908123fba2c",
    "d3852ff/model_2:softmax": "76545353987a301e22e4e9a2f89cadb920b8249611551bd81c2be0157c0e04d1",
    "5094c88/model_1:logits": "55b889d00e7018f98e6371747eb1c536a23f68e39e55bd383eeacbf02b70b0e6",
    "5094c88/model_2:logits": "07924fe9d4a9f9c5a3d4ef98f7f5398a6aba9561358771b1ce25c0d94f34c7d3",
    "d3852ff/model_1:logits": "f6bcbc4830847558bbed35725f4a12d11608fa506bc8f654fd0c59ee2b02470e",
    "d3852ff/model_2:logits": "eacce76e4502c2f66d0060b0dbc5161d5bbbc5b010921328f8be562ce3472dd6",
}
RECIPE_VERSION = "1"
OPSET = 13
IR_VERSION = 7
TOLERANCE = 1e-4
INPUT = "data"
NCNN_OUTPUT = "softmax"


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def fail(msg):
    print(f"recipe: {msg}", file=sys.stderr)
    sys.exit(1)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="minivision APK ncnn -> ONNX recipe", add_help=True)
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("dest")
    ap.add_argument("workdir")
    ap.add_argument("--source")
    ap.add_argument("--testdata")
    ap.add_argument("--logits", action="store_true")
    ap.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


# ---------------------------------------------------------------------------------------------------
# Stage 1 (system python): venv + pinned packages, then re-run this script inside the venv.

def outer(args, argv):
    work = os.path.abspath(args.workdir)
    os.makedirs(work, exist_ok=True)
    venv = os.path.join(work, "venv")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + PINS, check=True)
    r = subprocess.run([py, os.path.abspath(__file__), "--in-venv"] + argv)
    sys.exit(r.returncode)


# ---------------------------------------------------------------------------------------------------
# Stage 2 (venv): fetch, convert, check, write.

def fetch(key, source, work):
    """Return (param_path, bin_path) inside work, both checked against MODELS[key]."""
    folder, model = key.split("/")
    spec = MODELS[key]
    paths = []
    for ext in ("param", "bin"):
        if source:
            src = os.path.join(source, folder, f"{model}.{ext}")
            with open(src, "rb") as f:
                data = f.read()
            origin = src
        else:
            import urllib.request
            origin = f"https://raw.githubusercontent.com/{REPO}/{COMMITS[folder]}/{ASSETS}/{model}.{ext}"
            try:
                with urllib.request.urlopen(origin, timeout=120) as r:
                    data = r.read()
            except OSError as e:
                fail(f"download {origin}: {e} (offline? pass --source <mirror>/minivision-apk)")
        got = sha256_bytes(data)
        if got != spec[ext]:
            fail(f"{origin}: sha256 {got} != pinned {spec[ext]}")
        print(f"recipe: {origin}: sha256 ok ({len(data)} bytes)")
        dst = os.path.join(work, f"{folder}_{model}.{ext}")
        with open(dst, "wb") as f:
            f.write(data)
        paths.append(dst)
    if source:
        cfg = os.path.join(source, folder, "config.json")
        if os.path.exists(cfg):
            with open(cfg) as f:
                entries = {e["name"]: e for e in json.load(f)}
            e = entries.get(model)
            if e is None:
                fail(f"{cfg} has no entry {model}")
            want = (spec["width"], spec["height"], spec["org_resize"], spec["scale"])
            have = (e["width"], e["height"], e["org_resize"], float(e["scale"]))
            if want != have:
                fail(f"{cfg}: {model} is {have}, the recipe expects {want}")
            print(f"recipe: {cfg}: {model} width {e['width']} height {e['height']} "
                  f"org_resize {e['org_resize']} scale {e['scale']} (matches)")
    return paths


class NcnnLayer:
    def __init__(self, ltype, name, bottoms, tops, params):
        self.type, self.name, self.bottoms, self.tops, self.params = ltype, name, bottoms, tops, params

    def get(self, pid, default):
        return self.params.get(pid, default)

    def __repr__(self):
        return f"{self.type} {self.name}"


def parse_value(text):
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


def parse_param(text):
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != ["7767517"]:
        fail("not an ncnn text .param (magic 7767517 missing)")
    layer_count, blob_count = (int(v) for v in lines[1])
    layers = []
    for toks in lines[2:]:
        ltype, name, nb, nt = toks[0], toks[1], int(toks[2]), int(toks[3])
        bottoms = toks[4:4 + nb]
        tops = toks[4 + nb:4 + nb + nt]
        params = {}
        for kv in toks[4 + nb + nt:]:
            k, v = kv.split("=", 1)
            k = int(k)
            if k <= -23300:  # array param: -23300 - id = count,v0,v1,...
                vals = v.split(",")
                n = int(vals[0])
                if len(vals) != n + 1:
                    fail(f"layer {name}: array param {kv} has a wrong count")
                params[-k - 23300] = [parse_value(x) for x in vals[1:]]
            else:
                params[k] = parse_value(v)
        layers.append(NcnnLayer(ltype, name, bottoms, tops, params))
    if len(layers) != layer_count:
        fail(f".param declares {layer_count} layers, has {len(layers)}")
    blobs = {b for ly in layers for b in ly.bottoms + ly.tops}
    if len(blobs) != blob_count:
        fail(f".param declares {blob_count} blobs, has {len(blobs)}")
    return layers


class NcnnWeights:
    """Sequential reader of an ncnn .bin, mirroring ModelBinFromDataReader::load."""

    def __init__(self, data):
        self.data, self.off = data, 0

    def _take(self, nbytes, what):
        if self.off + nbytes > len(self.data):
            fail(f".bin too short reading {what}")
        chunk = self.data[self.off:self.off + nbytes]
        self.off += nbytes
        return chunk

    def raw(self, n, what):
        """type 1: n float32, no tag."""
        import numpy as np
        return np.frombuffer(self._take(4 * n, what), dtype="<f4").astype(np.float32)

    def tagged(self, n, what):
        """type 0: a 4-byte flag, then the data in the storage the flag names."""
        import numpy as np
        f = self._take(4, what + " flag")
        tag = struct.unpack("<I", f)[0]
        align4 = lambda x: (x + 3) // 4 * 4  # noqa: E731
        if tag == 0x01306B47:  # half precision
            h = np.frombuffer(self._take(align4(2 * n), what), dtype="<f2")[:n]
            return h.astype(np.float32)
        if tag == 0x000D4B38:
            fail(f"{what}: int8 weights (tag 0x000D4B38) are not supported")
        if tag == 0x0002C056:
            fail(f"{what}: float32 weights with extra int8 scaling (tag 0x0002C056) are not supported")
        if sum(f) != 0:  # quantisation table: 256 float32 values, then one uint8 index per weight
            table = np.frombuffer(self._take(256 * 4, what + " table"), dtype="<f4")
            idx = np.frombuffer(self._take(align4(n), what + " indices"), dtype=np.uint8)[:n]
            return table[idx].astype(np.float32)
        return self.raw(n, what)


class Converter:
    def __init__(self, layers, weights, width, height, logits, meta):
        import numpy as np
        from onnx import helper
        self.np, self.helper = np, helper
        self.layers, self.w = layers, weights
        self.width, self.height, self.logits, self.meta = width, height, logits, meta
        self.alias = {}     # ncnn blob -> ONNX tensor
        self.shape = {}     # ONNX tensor -> shape tuple (ncnn 1-D blobs are [1, N], 3-D are [1, C, H, W])
        self.nodes, self.inits, self.names = [], [], set()
        self.output = None

    # -- helpers ---------------------------------------------------------------------------------
    def fresh(self, name):
        if name in self.names:
            fail(f"tensor name collision: {name}")
        self.names.add(name)
        return name

    def src(self, layer, i=0):
        blob = layer.bottoms[i]
        if blob not in self.alias:
            fail(f"{layer}: input blob {blob} is not produced by an earlier layer")
        return self.alias[blob]

    def init(self, name, array):
        from onnx import numpy_helper
        self.inits.append(numpy_helper.from_array(self.np.ascontiguousarray(array), self.fresh(name)))
        return name

    def node(self, op, inputs, output, name, shape, **attrs):
        self.nodes.append(self.helper.make_node(op, inputs, [self.fresh(output)], name=name, **attrs))
        self.shape[output] = tuple(shape)
        return output

    def top(self, layer, tensor):
        self.alias[layer.tops[0]] = tensor

    def one_top(self, layer, n_bottoms=1):
        if len(layer.bottoms) != n_bottoms or len(layer.tops) != 1:
            fail(f"{layer}: expected {n_bottoms} input(s) and 1 output")

    def pre_act(self, layer, act):
        """Name of a layer's own output: the top itself, or a __preact tensor when an activation follows."""
        return layer.tops[0] if act == 0 else f"{layer.tops[0]}__preact"

    def activation(self, layer, x, act, params, shape):
        """Apply ncnn's fused activation_type to x (named by pre_act); returns the top tensor."""
        if act == 0:
            return x
        top, name = layer.tops[0], layer.name + "_act"
        if act == 1:
            return self.node("Relu", [x], top, name, shape)
        if act == 2:
            return self.node("LeakyRelu", [x], top, name, shape, alpha=float(params[0]))
        if act == 3:
            lo = self.init(layer.name + ".clip_min", self.np.array(params[0], self.np.float32))
            hi = self.init(layer.name + ".clip_max", self.np.array(params[1], self.np.float32))
            return self.node("Clip", [x, lo, hi], top, name, shape)
        if act == 4:
            return self.node("Sigmoid", [x], top, name, shape)
        fail(f"{layer}: activation_type {act} is not supported")

    def channel_const(self, shape, values):
        """Per-channel constant broadcastable against an ONNX tensor of `shape`."""
        if len(shape) == 4:
            return values.reshape(-1, 1, 1)
        return values.reshape(-1)

    # -- layers ----------------------------------------------------------------------------------
    def conv(self, ly, depthwise):
        self.one_top(ly)
        x = self.src(ly)
        shp = self.shape[x]
        if len(shp) != 4:
            fail(f"{ly}: input must be 3-D (C,H,W), got ONNX shape {shp}")
        _, cin, hin, win = shp
        nout = ly.get(0, 0)
        kw = ly.get(1, 0)
        kh = ly.get(11, kw)
        dw = ly.get(2, 1)
        dh = ly.get(12, dw)
        sw = ly.get(3, 1)
        sh = ly.get(13, sw)
        pl = ly.get(4, 0)
        pt = ly.get(14, pl)
        pr = ly.get(15, pl)
        pb = ly.get(16, pt)
        pad_value = float(ly.get(18, 0.0))
        bias_term = ly.get(5, 0)
        wsize = ly.get(6, 0)
        group = ly.get(7, 1) if depthwise else 1
        for pid, what in ((8, "int8_scale_term"), (19, "dynamic_weight")):
            if ly.get(pid, 0) != 0:
                fail(f"{ly}: {what} != 0 is not supported")
        if cin % group or nout % group:
            fail(f"{ly}: channels {cin}->{nout} not divisible by group {group}")
        if wsize != nout * (cin // group) * kh * kw:
            fail(f"{ly}: weight_data_size {wsize} != {nout}*{cin // group}*{kh}*{kw} "
                 f"(input channels {cin}: wrong input size or layout?)")
        ekw, ekh = dw * (kw - 1) + 1, dh * (kh - 1) + 1
        pads = [pt, pl, pb, pr]
        if min(pads) < 0:
            if len(set(pads)) != 1 or pads[0] not in (-233, -234):
                fail(f"{ly}: pads {pads} not supported")
            wpad = max(0, ekw + (win - 1) // sw * sw - win)
            hpad = max(0, ekh + (hin - 1) // sh * sh - hin)
            if pads[0] == -233:  # SAME_UPPER
                pt, pl, pb, pr = hpad // 2, wpad // 2, hpad - hpad // 2, wpad - wpad // 2
            else:  # SAME_LOWER
                pt, pl, pb, pr = hpad - hpad // 2, wpad - wpad // 2, hpad // 2, wpad // 2
        if pad_value != 0.0 and max(pt, pl, pb, pr) > 0:
            fail(f"{ly}: pad_value {pad_value} != 0 is not supported")
        hout = (hin + pt + pb - ekh) // sh + 1
        wout = (win + pl + pr - ekw) // sw + 1
        if hout <= 0 or wout <= 0:
            fail(f"{ly}: output {hout}x{wout} from input {hin}x{win}")
        weight = self.w.tagged(wsize, f"{ly} weight").reshape(nout, cin // group, kh, kw)
        inputs = [x, self.init(ly.name + ".weight", weight)]
        if bias_term:
            inputs.append(self.init(ly.name + ".bias", self.w.raw(nout, f"{ly} bias")))
        act = ly.get(9, 0)
        out = self.node("Conv", inputs, self.pre_act(ly, act), ly.name, (1, nout, hout, wout),
                        kernel_shape=[kh, kw], strides=[sh, sw], dilations=[dh, dw],
                        pads=[pt, pl, pb, pr], group=group)
        out = self.activation(ly, out, act, ly.get(10, []), (1, nout, hout, wout))
        self.top(ly, out)

    def batchnorm(self, ly):
        np = self.np
        self.one_top(ly)
        x = self.src(ly)
        shp = self.shape[x]
        c = ly.get(0, 0)
        eps = float(ly.get(1, 0.0))
        if shp[1] != c:
            fail(f"{ly}: {c} channels, input {shp}")
        slope, mean, var, bias = (self.w.raw(c, f"{ly} {k}") for k in ("slope", "mean", "var", "bias"))
        if not np.all(var.astype(np.float64) + eps > 0):
            fail(f"{ly}: var + eps <= 0")
        ins = [x] + [self.init(f"{ly.name}.{k}", v)
                     for k, v in (("scale", slope), ("bias", bias), ("mean", mean), ("var", var))]
        self.top(ly, self.node("BatchNormalization", ins, ly.tops[0], ly.name, shp, epsilon=eps))

    def scale(self, ly):
        np = self.np
        n = ly.get(0, 0)
        bias_term = ly.get(1, 0)
        if n == -233:  # y = x0 * x1, x1 one value per channel of x0
            self.one_top(ly, 2)
            if bias_term:
                fail(f"{ly}: two-input Scale with bias is not supported")
            x, s = self.src(ly, 0), self.src(ly, 1)
            xs, ss = self.shape[x], self.shape[s]
            if int(np.prod(ss)) != xs[1]:
                fail(f"{ly}: scale blob {ss} does not match the channels of {xs}")
            want = (1, xs[1], 1, 1) if len(xs) == 4 else (1, xs[1])
            if ss != want:
                shape_init = self.init(ly.name + ".shape", np.array(want, np.int64))
                s = self.node("Reshape", [s, shape_init], ly.tops[0] + "__scale", ly.name + "_reshape", want)
            self.top(ly, self.node("Mul", [x, s], ly.tops[0], ly.name, xs))
            return
        self.one_top(ly)
        x = self.src(ly)
        xs = self.shape[x]
        if xs[1] != n:
            fail(f"{ly}: scale_data_size {n}, input {xs}")
        s = self.channel_const(xs, self.w.raw(n, f"{ly} scale"))
        if not bias_term:
            self.top(ly, self.node("Mul", [x, self.init(ly.name + ".scale", s)], ly.tops[0], ly.name, xs))
            return
        b = self.channel_const(xs, self.w.raw(n, f"{ly} bias"))
        m = self.node("Mul", [x, self.init(ly.name + ".scale", s)], ly.tops[0] + "__scaled", ly.name + "_mul", xs)
        self.top(ly, self.node("Add", [m, self.init(ly.name + ".bias", b)], ly.tops[0], ly.name, xs))

    def prelu(self, ly):
        self.one_top(ly)
        x = self.src(ly)
        xs = self.shape[x]
        n = ly.get(0, 0)
        slope = self.w.raw(n, f"{ly} slope")
        if n != 1 and n != xs[1]:
            fail(f"{ly}: num_slope {n}, input {xs}")
        slope = slope.reshape(1) if n == 1 else self.channel_const(xs, slope)
        self.top(ly, self.node("PRelu", [x, self.init(ly.name + ".slope", slope)], ly.tops[0], ly.name, xs))

    def relu(self, ly):
        self.one_top(ly)
        x = self.src(ly)
        slope = float(ly.get(0, 0.0))
        if slope == 0.0:
            self.top(ly, self.node("Relu", [x], ly.tops[0], ly.name, self.shape[x]))
        else:
            self.top(ly, self.node("LeakyRelu", [x], ly.tops[0], ly.name, self.shape[x], alpha=slope))

    def sigmoid(self, ly):
        self.one_top(ly)
        x = self.src(ly)
        self.top(ly, self.node("Sigmoid", [x], ly.tops[0], ly.name, self.shape[x]))

    def eltwise(self, ly):
        np = self.np
        if len(ly.bottoms) < 2 or len(ly.tops) != 1:
            fail(f"{ly}: expected >= 2 inputs and 1 output")
        xs = [self.src(ly, i) for i in range(len(ly.bottoms))]
        shp = self.shape[xs[0]]
        if any(self.shape[x] != shp for x in xs):
            fail(f"{ly}: input shapes differ: {[self.shape[x] for x in xs]}")
        op = ly.get(0, 0)
        coeffs = ly.get(1, [])
        if op == 2:
            self.top(ly, self.node("Max", xs, ly.tops[0], ly.name, shp))
            return
        if op not in (0, 1):
            fail(f"{ly}: op_type {op} not supported")
        if op == 1 and coeffs and any(c != 1 for c in coeffs):
            if len(coeffs) != len(xs):
                fail(f"{ly}: {len(coeffs)} coeffs for {len(xs)} inputs")
            scaled = []
            for i, (x, c) in enumerate(zip(xs, coeffs)):
                k = self.init(f"{ly.name}.coeff{i}", np.array(c, np.float32))
                scaled.append(self.node("Mul", [x, k], f"{ly.tops[0]}__c{i}", f"{ly.name}_c{i}", shp))
            xs = scaled
        acc = xs[0]
        for i, x in enumerate(xs[1:], 1):
            last = i == len(xs) - 1
            out = ly.tops[0] if last else f"{ly.tops[0]}__{i}"
            acc = self.node("Mul" if op == 0 else "Add", [acc, x], out,
                            ly.name if last else f"{ly.name}_{i}", shp)
        self.top(ly, acc)

    def pooling(self, ly):
        self.one_top(ly)
        x = self.src(ly)
        shp = self.shape[x]
        if len(shp) != 4:
            fail(f"{ly}: input must be 3-D, got {shp}")
        _, c, hin, win = shp
        ptype = ly.get(0, 0)
        if ptype not in (0, 1):
            fail(f"{ly}: pooling_type {ptype} not supported")
        if ly.get(7, 0):
            fail(f"{ly}: adaptive pooling is not supported")
        if ly.get(4, 0):  # global pooling: ncnn gives a 1-D blob of C values
            g = self.node("GlobalMaxPool" if ptype == 0 else "GlobalAveragePool", [x],
                          ly.tops[0] + "__pool", ly.name, (1, c, 1, 1))
            self.top(ly, self.node("Flatten", [g], ly.tops[0], ly.name + "_flatten", (1, c), axis=1))
            return
        kw = ly.get(1, 0)
        kh = ly.get(11, kw)
        sw = ly.get(2, 1)
        sh = ly.get(12, sw)
        pl = ly.get(3, 0)
        pr = ly.get(14, pl)
        pt = ly.get(13, pl)
        pb = ly.get(15, pt)
        mode = ly.get(5, 0)
        if mode == 0:  # full padding: ncnn pads the bottom/right tail so the last window fits (ceil)
            wtail = (win + pl + pr - kw) % sw
            htail = (hin + pt + pb - kh) % sh
            pr += sw - wtail if wtail else 0
            pb += sh - htail if htail else 0
        elif mode in (2, 3):  # SAME_UPPER / SAME_LOWER
            wpad = max(0, kw + (win - 1) // sw * sw - win)
            hpad = max(0, kh + (hin - 1) // sh * sh - hin)
            small_w, small_h = wpad // 2, hpad // 2
            if mode == 2:
                pl, pr, pt, pb = small_w, wpad - small_w, small_h, hpad - small_h
            else:
                pl, pr, pt, pb = wpad - small_w, small_w, hpad - small_h, small_h
        elif mode != 1:
            fail(f"{ly}: pad_mode {mode} not supported")
        hout = (hin + pt + pb - kh) // sh + 1
        wout = (win + pl + pr - kw) // sw + 1
        if hout <= 0 or wout <= 0:
            fail(f"{ly}: output {hout}x{wout} from input {hin}x{win}")
        pads = [pt, pl, pb, pr]
        if ptype == 1 and any(pads):
            fail(f"{ly}: average pooling with padding {pads} (ncnn border averaging) is not supported")
        op = "MaxPool" if ptype == 0 else "AveragePool"
        self.top(ly, self.node(op, [x], ly.tops[0], ly.name, (1, c, hout, wout),
                               kernel_shape=[kh, kw], strides=[sh, sw], pads=pads))

    def flatten(self, ly):
        self.one_top(ly)
        x = self.src(ly)
        shp = self.shape[x]
        if len(shp) == 2:
            self.top(ly, x)
            return
        n = int(self.np.prod(shp[1:]))
        self.top(ly, self.node("Flatten", [x], ly.tops[0], ly.name, (1, n), axis=1))

    def innerproduct(self, ly):
        self.one_top(ly)
        x = self.src(ly)
        shp = self.shape[x]
        nout = ly.get(0, 0)
        bias_term = ly.get(1, 0)
        wsize = ly.get(2, 0)
        if ly.get(8, 0):
            fail(f"{ly}: int8_scale_term is not supported")
        k = int(self.np.prod(shp[1:]))
        if len(shp) != 2:  # ncnn flattens a 3-D input implicitly (c, h, w order = NCHW)
            x = self.node("Flatten", [x], ly.tops[0] + "__flat", ly.name + "_flatten", (1, k), axis=1)
        if wsize != nout * k:
            fail(f"{ly}: weight_data_size {wsize} != {nout}*{k} (input {shp}: wrong input size?)")
        weight = self.w.tagged(wsize, f"{ly} weight").reshape(nout, k)
        ins = [x, self.init(ly.name + ".weight", weight)]
        if bias_term:
            ins.append(self.init(ly.name + ".bias", self.w.raw(nout, f"{ly} bias")))
        act = ly.get(9, 0)
        out = self.node("Gemm", ins, self.pre_act(ly, act), ly.name, (1, nout), transB=1)
        out = self.activation(ly, out, act, ly.get(10, []), (1, nout))
        self.top(ly, out)

    def dropout(self, ly):
        self.one_top(ly)
        x = self.src(ly)
        s = float(ly.get(0, 1.0))
        if s == 1.0:
            self.top(ly, x)  # inference: identity
            return
        k = self.init(ly.name + ".scale", self.np.array(s, self.np.float32))
        self.top(ly, self.node("Mul", [x, k], ly.tops[0], ly.name, self.shape[x]))

    def softmax(self, ly, is_last):
        self.one_top(ly)
        x = self.src(ly)
        shp = self.shape[x]
        if len(shp) != 2 or ly.get(0, 0) != 0:
            fail(f"{ly}: only Softmax over a 1-D blob (axis 0) is supported, got {shp} axis {ly.get(0, 0)}")
        if self.logits and is_last:
            self.top(ly, x)
            return
        self.top(ly, self.node("Softmax", [x], ly.tops[0], ly.name, shp, axis=1))

    # -- graph -----------------------------------------------------------------------------------
    def convert(self):
        from onnx import TensorProto
        helper = self.helper
        out_layer = [ly for ly in self.layers if NCNN_OUTPUT in ly.tops]
        if len(out_layer) != 1:
            fail(f"no single layer produces blob {NCNN_OUTPUT}")
        for ly in self.layers:
            t = ly.type
            if t == "Input":
                if ly.tops != [INPUT] or ly.get(2, 3) != 3:
                    fail(f"{ly}: expected blob {INPUT} with 3 channels")
                self.fresh(INPUT)
                self.shape[INPUT] = (1, 3, self.height, self.width)
                self.alias[INPUT] = INPUT
                self.declared = (ly.get(0, 0), ly.get(1, 0))
            elif t in ("Convolution", "ConvolutionDepthWise"):
                self.conv(ly, t == "ConvolutionDepthWise")
            elif t == "BatchNorm":
                self.batchnorm(ly)
            elif t == "Scale":
                self.scale(ly)
            elif t == "PReLU":
                self.prelu(ly)
            elif t == "ReLU":
                self.relu(ly)
            elif t == "Sigmoid":
                self.sigmoid(ly)
            elif t == "Eltwise":
                self.eltwise(ly)
            elif t == "Split":
                x = self.src(ly)
                for b in ly.tops:
                    self.alias[b] = x  # fan-out: every top is the same tensor
            elif t == "Pooling":
                self.pooling(ly)
            elif t == "Flatten":
                self.flatten(ly)
            elif t == "InnerProduct":
                self.innerproduct(ly)
            elif t == "Dropout":
                self.dropout(ly)
            elif t == "Softmax":
                self.softmax(ly, ly is out_layer[0])
            else:
                fail(f"{ly}: ncnn layer type {t} is not supported")
        if self.w.off != len(self.w.data):
            fail(f".bin has {len(self.w.data) - self.w.off} unread bytes (weights misparsed?)")
        out = self.alias[NCNN_OUTPUT]
        name = "logits" if self.logits else NCNN_OUTPUT
        if out != name:
            out = self.node("Identity", [out], name, "output", self.shape[out])
        produced = {o for n in self.nodes for o in n.output}
        consumed = {i for n in self.nodes for i in n.input}
        dangling = sorted(produced - consumed - {out})
        if dangling:
            fail(f"dangling tensors: {dangling}")
        graph = helper.make_graph(
            self.nodes, self.meta["graph_name"],
            [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, list(self.shape[INPUT]))],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(self.shape[out]))],
            initializer=self.inits,
            doc_string=self.meta["doc"],
        )
        model = helper.make_model(
            graph,
            producer_name="ekyc-liveness tools/recipes/minivision_ncnn2onnx.py",
            producer_version=RECIPE_VERSION,
            opset_imports=[helper.make_opsetid("", OPSET)],
        )
        model.ir_version = IR_VERSION
        helper.set_model_props(model, self.meta["props"])
        return model, out, self.shape[out]


def convert(key, param_path, bin_path, logits):
    folder, model = key.split("/")
    spec = MODELS[key]
    with open(param_path, "rb") as f:
        layers = parse_param(f.read().decode("ascii"))
    with open(bin_path, "rb") as f:
        weights = NcnnWeights(f.read())
    src = f"https://github.com/{REPO}/tree/{COMMITS[folder]}/{ASSETS}/{model}.param/.bin"
    crop = "whole frame" if spec["org_resize"] else f"face crop scale {spec['scale']}"
    meta = {
        "graph_name": f"minivision_apk_{folder}_{model}",
        "doc": (f"minivision Silent-Face APK liveness {key} converted from ncnn. Input {INPUT}: "
                f"1x3x{spec['height']}x{spec['width']} NCHW, BGR, raw 0..255, {crop}. "
                f"Output: 3 classes, live = index 1 ({'logits' if logits else 'softmax probabilities'})."),
        "props": {
            "source": src,
            "source_commit": COMMITS[folder],
            "param_sha256": spec["param"],
            "bin_sha256": spec["bin"],
            "license": "Apache-2.0",
            "input": f"{INPUT} 1x3x{spec['height']}x{spec['width']} NCHW BGR raw 0..255",
            "crop": crop,
            "output": "logits" if logits else "softmax",
            "live_index": "1",
        },
    }
    conv = Converter(layers, weights, spec["width"], spec["height"], logits, meta)
    model_proto, out_name, out_shape = conv.convert()
    return model_proto, out_name, out_shape, conv.declared, len(layers)


def find_testdata(arg):
    if arg:
        if not os.path.isdir(os.path.join(arg, "live")) or not os.path.isdir(os.path.join(arg, "spoof")):
            fail(f"--testdata {arg}: expected live/ and spoof/ image folders")
        return arg
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "..", "..", "testdata", "faces"), os.path.join(os.getcwd(), "testdata", "faces")):
        if os.path.isdir(os.path.join(cand, "live")):
            return os.path.normpath(cand)
    fail("test images not found: pass --testdata <repo>/testdata/faces")


def test_inputs(testdata, spec):
    """(label, HxWx3 uint8 BGR) pairs, prepared as the app does (whole frame, or a centre crop)."""
    import numpy as np
    from PIL import Image
    w, h = spec["width"], spec["height"]
    files = []
    for sub in ("live", "spoof"):
        d = os.path.join(testdata, sub)
        files += [os.path.join(sub, f) for f in sorted(os.listdir(d))
                  if f.lower().endswith((".jpg", ".jpeg", ".png"))]
    if not files:
        fail(f"no test images under {testdata}")
    out = []
    for rel in files:
        img = Image.open(os.path.join(testdata, rel)).convert("RGB")
        if not spec["org_resize"]:  # centre square crop stands in for the face crop
            s = min(img.size)
            x0, y0 = (img.width - s) // 2, (img.height - s) // 2
            img = img.crop((x0, y0, x0 + s, y0 + s))
        img = img.resize((w, h), Image.BILINEAR)
        out.append((rel, np.ascontiguousarray(np.asarray(img, dtype=np.uint8)[:, :, ::-1])))
    rng = np.random.default_rng(0)
    out.append(("noise(seed 0)", rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)))
    return out


def behaviour_check(key, onnx_bytes, out_name, param_path, bin_path, testdata, logits):
    import ncnn
    import numpy as np
    import onnxruntime as ort
    spec = MODELS[key]
    w, h = spec["width"], spec["height"]

    def make_net(fp32):
        net = ncnn.Net()
        net.opt.use_vulkan_compute = False
        net.opt.num_threads = 1
        if fp32:
            net.opt.use_fp16_storage = False
            net.opt.use_fp16_arithmetic = False
            net.opt.use_fp16_packed = False
            net.opt.use_bf16_storage = False
        if net.load_param(param_path) != 0 or net.load_model(bin_path) != 0:
            fail("ncnn could not load the model")
        return net

    def run_ncnn(net, bgr):
        ex = net.create_extractor()
        ex.input(INPUT, ncnn.Mat.from_pixels(bgr, ncnn.Mat.PixelType.PIXEL_BGR, w, h))
        ret, out = ex.extract(NCNN_OUTPUT)
        if ret != 0:
            fail(f"ncnn extract failed ({ret})")
        return np.array(out, dtype=np.float64).reshape(-1)

    net32, net_default = make_net(True), make_net(False)
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    if inp.name != INPUT or list(inp.shape) != [1, 3, h, w]:
        fail(f"onnxruntime input {inp.name} {inp.shape}")
    worst, worst_default = 0.0, 0.0
    check = []
    print(f"recipe: behaviour check ({'softmax of logits' if logits else 'softmax'} vs ncnn fp32; "
          f"input 1x3x{h}x{w}; tolerance {TOLERANCE:g})")
    print(f"  {'image':38s} {'ncnn live':>10s} {'onnx live':>10s} {'max|diff|':>10s} {'vs ncnn fp16 default':>21s}")
    for label, bgr in test_inputs(testdata, spec):
        x = bgr.transpose(2, 0, 1)[None].astype(np.float32)
        (y,) = sess.run([out_name], {INPUT: x})
        if y.shape != (1, 3):
            fail(f"onnxruntime output shape {y.shape}")
        p = y.astype(np.float64).reshape(-1)
        if logits:
            e = np.exp(p - p.max())
            p = e / e.sum()
        ref, ref16 = run_ncnn(net32, bgr), run_ncnn(net_default, bgr)
        if ref.shape != p.shape:
            fail(f"ncnn output {ref.shape} vs onnx {p.shape}")
        d, d16 = float(np.abs(ref - p).max()), float(np.abs(ref16 - p).max())
        check.append({"label": label, "width": w, "height": h,
                      "bgr_base64": base64.b64encode(bgr.tobytes()).decode("ascii"),
                      "ncnn_softmax": [float(v) for v in ref]})
        worst, worst_default = max(worst, d), max(worst_default, d16)
        flag = "" if d <= TOLERANCE else "  <-- FAIL"
        print(f"  {label:38s} {ref[1]:10.6f} {p[1]:10.6f} {d:10.2e} {d16:21.2e}{flag}")
    print(f"recipe: max |diff| {worst:.2e} (vs ncnn with its default fp16 options: {worst_default:.2e})")
    if worst > TOLERANCE:
        fail(f"behaviour check failed: max |diff| {worst:.2e} > {TOLERANCE:g}")
    return worst, check


def inner(args):
    import onnx
    t0 = time.time()
    key = args.model
    work = os.path.abspath(args.workdir)
    source = os.path.abspath(args.source) if args.source else None
    testdata = find_testdata(args.testdata)
    param_path, bin_path = fetch(key, source, work)
    model, out_name, out_shape, declared, n_layers = convert(key, param_path, bin_path, args.logits)
    data = model.SerializeToString()
    again = convert(key, param_path, bin_path, args.logits)[0].SerializeToString()
    if again != data:
        fail("two conversions of the same input differ (not deterministic)")
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    if tuple(dims) != tuple(out_shape):
        fail(f"onnx shape inference gives {dims}, converter {out_shape}")
    spec = MODELS[key]
    print(f"recipe: converted {n_layers} ncnn layers -> {len(model.graph.node)} ONNX nodes, "
          f"{len(model.graph.initializer)} initializers; input {INPUT} [1,3,{spec['height']},{spec['width']}] "
          f"(the .param's Input line says w={declared[0]} h={declared[1]}: stale, config.json rules), "
          f"output {out_name} {list(out_shape)}; onnx.checker ok")
    _, check = behaviour_check(key, data, out_name, param_path, bin_path, testdata, args.logits)
    digest = sha256_bytes(data)
    mode = "logits" if args.logits else "softmax"
    expected = EXPECTED_ONNX_SHA256.get(f"{key}:{mode}")
    dest = os.path.abspath(args.dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = dest + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, dest)
    # The exact inputs of the behaviour check and ncnn's answers, so that another runtime (the
    # service's tract, tests/minivision_ncnn.rs) can be checked against ncnn on the same pixels.
    with open(tmp, "w") as f:
        json.dump({"model": key, "recipe_version": RECIPE_VERSION, "tolerance": TOLERANCE,
                   "layout": "HxWx3 uint8 BGR", "inputs": check}, f)
    os.replace(tmp, dest + ".ncnn-check.json")
    if expected is None:
        note = "no reference hash recorded"
    elif expected == digest:
        note = "matches the reference hash: byte-reproducible"
    else:
        note = f"DIFFERS from the reference hash {expected} (other package versions?)"
    print(f"recipe: wrote {dest} ({len(data)} bytes, sha256 {digest}; {note}) in {time.time() - t0:.1f}s")


def main():
    argv = sys.argv[1:]
    args = parse_args(argv)
    if args.in_venv:
        inner(args)
    else:
        outer(args, argv)


if __name__ == "__main__":
    main()
