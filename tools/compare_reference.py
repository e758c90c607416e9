"""Check that a freshly generated reference (tools/reference.py) equals the committed fixture.

Usage: python tools/compare_reference.py COMMITTED.json FRESH.json [--subset]
Floats must agree within 1e-6 (same script, same pixels, same onnxruntime); anything else differing
means the committed fixture is stale or the reference is not reproducible. With --subset (a clone
without ../shared, where only the vendored images exist) FRESH may cover fewer images than the
fixture; each image it covers must equal the fixture's.
"""
import json
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


committed, fresh = (json.load(open(p)) for p in sys.argv[1:3])
if "--subset" in sys.argv[3:]:
    by_path = {i["path"]: i for i in committed["images"]}
    for img in fresh["images"]:
        if img["path"] not in by_path:
            raise SystemExit(f"{img['path']}: not in the committed fixture")
        walk(by_path[img["path"]], img, f"$[{img['path']}]")
    print(f"reference fixture reproduced: {len(fresh['images'])} of {len(committed['images'])} images agree within 1e-6")
else:
    walk(committed, fresh)
    print(f"reference fixture reproduced: {len(committed['images'])} images agree within 1e-6")
