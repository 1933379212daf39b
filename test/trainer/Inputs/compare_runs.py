"""compare_runs.py TOLERANCE A.jsonl B.jsonl [A.safetensors B.safetensors]:
two training runs agree up to summation order: every figure of every
epoch line of the metrics logs (not the timings) within TOLERANCE of each
other (relative to the larger, or absolute below 1), and, given two
checkpoints, the same tensors with every element within TOLERANCE."""
import json
import math
import struct
import sys


def close(a, b, tolerance):
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def epochs(path):
    lines = [json.loads(line) for line in open(path)]
    return [line for line in lines if "train_loss" in line]


def tensors(path):
    data = open(path, "rb").read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    body = data[8 + size:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        code = {"F32": "f", "F64": "d", "I64": "q", "I32": "i"}[info["dtype"]]
        raw = body[begin:end]
        out[name] = struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw)
    return out


tolerance = float(sys.argv[1])
a, b = epochs(sys.argv[2]), epochs(sys.argv[3])
assert len(a) == len(b) and a, (a, b)
for x, y in zip(a, b):
    for key in x:
        if key in ("seconds", "samples_per_second", "tokens_per_second"):
            continue
        assert close(x[key], y[key], tolerance), (key, x, y)
if len(sys.argv) > 5:
    p, q = tensors(sys.argv[4]), tensors(sys.argv[5])
    assert sorted(p) == sorted(q), (sorted(p), sorted(q))
    worst = 0.0
    for name in p:
        assert len(p[name]) == len(q[name]), name
        for u, v in zip(p[name], q[name]):
            assert close(u, v, tolerance), (name, u, v)
            worst = max(worst, abs(u - v))
    print(f"{len(p)} tensors agree; largest difference {worst:.3g}")
print(f"{len(a)} epochs agree within {tolerance:g}")
