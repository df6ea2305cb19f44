#!/usr/bin/env python3
"""numpy side of bench/aggregate: the same aggregations on the same files.

  aggregate_numpy.py kernels DIR REPS
      time a copy of the stacked updates, weighted average, sort-based trimmed mean (beta 0.2) and
      np.median over the stacked updates; one JSON object per line.
  aggregate_numpy.py command STRATEGY OUT FILE...
      what `daf aggregate` does end to end: read the safetensors files,
      aggregate, write a safetensors file.
"""
import json
import math
import struct
import sys
import time

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + hlen])
    meta = header.pop("__metadata__", {})
    base = 8 + hlen
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: {name}: only F32 in this baseline")
        lo, hi = info["data_offsets"]
        tensors[name] = np.frombuffer(data, dtype="<f4", count=(hi - lo) // 4, offset=base + lo).reshape(info["shape"])
    return meta, tensors


def write_safetensors(path, meta, tensors):
    header = {"__metadata__": meta}
    off = 0
    blobs = []
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def trimmed_mean(stack, beta):
    n = stack.shape[0]
    k = int(math.floor(beta * n + 1e-9))
    s = np.sort(stack, axis=0)
    return s[k : n - k].mean(axis=0, dtype=np.float64).astype(np.float32)


def aggregate(strategy, stack, samples, beta):
    if strategy == "weighted_average":
        w = samples / samples.sum()
        return np.tensordot(w.astype(np.float32), stack, axes=1)
    if strategy == "trimmed_mean":
        return trimmed_mean(stack, beta)
    if strategy == "median":
        return np.median(stack, axis=0).astype(np.float32)
    raise SystemExit(f"unknown strategy {strategy}")


def load(files):
    metas, arrays = [], []
    for f in files:
        meta, ts = read_safetensors(f)
        metas.append(meta)
        arrays.append(ts)
    return metas, arrays


def kernels(directory, reps):
    import glob

    files = sorted(glob.glob(directory + "/*.safetensors"))
    metas, arrays = load(files)
    key = sorted(arrays[0])[0]
    stack = np.stack([a[key].reshape(-1) for a in arrays])
    samples = np.array([float(m.get("daf.samples", "1")) for m in metas])
    n, p = stack.shape
    dst = np.empty_like(stack)
    ops = [
        ("copy", 2 * 4 * p * n, lambda: np.copyto(dst, stack)),
        ("weighted_average", 4 * p * (n + 1), lambda: aggregate("weighted_average", stack, samples, 0.2)),
        ("trimmed_mean", 4 * p * (n + 1), lambda: aggregate("trimmed_mean", stack, samples, 0.2)),
        ("median", 4 * p * (n + 1), lambda: aggregate("median", stack, samples, 0.2)),
    ]
    for name, nbytes, fn in ops:
        best = None
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            s = time.perf_counter() - t
            best = s if best is None else min(best, s)
        print(json.dumps({"op": name, "n": n, "p": p, "seconds": best, "bytes": nbytes}))


def command(strategy, out, files, beta):
    metas, arrays = load(files)
    samples = np.array([float(m.get("daf.samples", "1")) for m in metas])
    result = {}
    for name in arrays[0]:
        stack = np.stack([a[name] for a in arrays])
        result[name] = aggregate(strategy, stack, samples, beta)
    meta = dict(metas[0])
    meta["daf.strategy"] = strategy
    meta["daf.samples"] = repr(float(samples.sum()))
    write_safetensors(out, meta, result)


if __name__ == "__main__":
    if sys.argv[1] == "kernels":
        kernels(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "command":
        command(sys.argv[2], sys.argv[3], sys.argv[4:], 0.2)
    else:
        raise SystemExit("usage: aggregate_numpy.py kernels DIR REPS | command STRATEGY OUT FILE...")
