"""Check that a freshly generated reference (tools/reference.py) equals the committed fixture.

Usage: python tools/compare_reference.py COMMITTED.json FRESH.json [--subset]
Scores files (--out): floats must agree within 1e-6 (same script, same pixels, same onnxruntime);
anything else differing means the committed fixture is stale or the reference is not reproducible.
Embeddings files (--embeddings-out, recognised by their "tolerance_cosine"): the same images with a
face ("images") and without ("no_face"), the same detector for each, and the cosine between the two
embeddings of each image >= 1 - the committed file's tolerance_cosine (1e-4).
With --subset (a clone without ../shared, where only the vendored images exist) FRESH may cover
fewer images than the fixture; each image it covers must equal the fixture's (scores) / agree with
it, with or without a face as in the fixture (embeddings).
"""
import json
import math
import sys


def walk(a, b, path="$"):
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            raise SystemExit(f"{path}: keys differ: {sorted(set(a) ^ set(b))}")
        for k in a:
            if k != "versions":
                walk(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise SystemExit(f"{path}: length {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, f"{path}[{i}]")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if abs(a - b) > 1e-6:
            raise SystemExit(f"{path}: {a} != {b}")
    elif a != b:
        raise SystemExit(f"{path}: {a!r} != {b!r}")


def cosine(a, b):
    if len(a) != len(b):
        return -math.inf
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na > 0 and nb > 0 else -math.inf


def compare_embeddings(committed, fresh, subset):
    tol = float(committed["tolerance_cosine"])
    for key in ("model", "tolerance_cosine"):
        if committed.get(key) != fresh.get(key):
            raise SystemExit(f"$.{key}: {committed.get(key)!r} != {fresh.get(key)!r}")
    c_emb = {i["path"]: i for i in committed["images"]}
    f_emb = {i["path"]: i for i in fresh["images"]}
    c_all = set(c_emb) | set(committed["no_face"])
    f_all = set(f_emb) | set(fresh["no_face"])
    if subset:
        if f_all - c_all:
            raise SystemExit(f"not in the committed fixture: {sorted(f_all - c_all)}")
    elif c_all != f_all:
        raise SystemExit(f"images differ: {sorted(c_all ^ f_all)}")
    for p in sorted(f_all):
        if (p in c_emb) != (p in f_emb):
            raise SystemExit(f"{p}: face in {'committed' if p in c_emb else 'fresh'} only")
    worst = 1.0
    for p in sorted(f_emb):
        a, b = c_emb[p], f_emb[p]
        if a["detector"] != b["detector"]:
            raise SystemExit(f"{p}: detector {a['detector']!r} != {b['detector']!r}")
        c = cosine(a["embedding"], b["embedding"])
        if not c >= 1.0 - tol:
            raise SystemExit(f"{p}: cosine {c:.8f} < 1 - {tol:g}")
        worst = min(worst, c)
    n = f"{len(f_all)} of {len(c_all)}" if subset else f"{len(c_all)}"
    print(f"reference embeddings reproduced: {n} images ({len(f_emb)} faces) agree, "
          f"min cosine {worst:.8f} >= 1 - {tol:g}")


committed, fresh = (json.load(open(p)) for p in sys.argv[1:3])
subset = "--subset" in sys.argv[3:]
if "tolerance_cosine" in committed or "tolerance_cosine" in fresh:
    compare_embeddings(committed, fresh, subset)
elif subset:
    by_path = {i["path"]: i for i in committed["images"]}
    for img in fresh["images"]:
        if img["path"] not in by_path:
            raise SystemExit(f"{img['path']}: not in the committed fixture")
        walk(by_path[img["path"]], img, f"$[{img['path']}]")
    print(f"reference fixture reproduced: {len(fresh['images'])} of {len(committed['images'])} images agree within 1e-6")
else:
    walk(committed, fresh)
    print(f"reference fixture reproduced: {len(committed['images'])} images agree within 1e-6")
