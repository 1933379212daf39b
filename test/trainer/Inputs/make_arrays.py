"""make_arrays.py IDX_DIR OUT_DIR TRAIN TEST: writes the first TRAIN training
and TEST test examples of Fashion-MNIST (the IDX files in IDX_DIR) in the
formats trainers read, without NumPy (the .npy format is written by hand):

  train.npz, test.npz      x uint8 [n, 28, 28], label uint8 [n] (members
                           deflated in train.npz, stored in test.npz)
  train.safetensors        x U8 [n, 28, 28], label I64 [n]
  x.npy, label.npy         the training arrays, one per file
  train-f32.npz, test-f32.npz  x float32 [n, 784], normalised exactly as a
                           trainer normalises Fashion-MNIST's pixels, in
                           float arithmetic: (p / 255 - 0.2860) / 0.3530;
                           label int32 [n]
  bad/...                  broken files for the error tests
"""
import gzip
import json
import os
import struct
import sys
import zipfile

idx_dir, out, n_train, n_test = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(os.path.join(out, "bad"), exist_ok=True)


def idx(path, count):
    data = gzip.open(path).read()
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    size = 1
    for d in dims[1:]:
        size *= d
    return list(dims[1:]), data[4 + 4 * rank:4 + 4 * rank + count * size]


def npy(descr, shape, raw, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False",
        "".join("%d, " % d for d in shape) if len(shape) != 1 else "%d," % shape[0])
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + raw


def npz(path, arrays, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, blob in arrays:
            z.writestr(name + ".npy", blob)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def normalised(pixels):
    mean, std, scale = f32(0.2860), f32(0.3530), f32(255.0)
    table = [f32(f32(f32(p / scale) - mean) / std) for p in range(256)]
    return struct.pack("<%df" % len(pixels), *[table[p] for p in pixels])


def safetensors(path, tensors):
    header, offset, body = {}, 0, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        body += raw
    text = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + body)


for split, prefix, count in (("train", "train", n_train), ("test", "t10k", n_test)):
    dims, pixels = idx(os.path.join(idx_dir, prefix + "-images-idx3-ubyte.gz"), count)
    _, labels = idx(os.path.join(idx_dir, prefix + "-labels-idx1-ubyte.gz"), count)
    x = npy("|u1", [count] + dims, pixels)
    label = npy("|u1", [count], labels)
    # (The test split's members are stored, the training split's deflated.)
    npz(os.path.join(out, split + ".npz"), [("x", x), ("label", label)],
        zipfile.ZIP_STORED if split == "test" else zipfile.ZIP_DEFLATED)
    npz(os.path.join(out, split + "-f32.npz"),
        [("x", npy("<f4", [count, 784], normalised(pixels))),
         ("label", npy("<i4", [count], struct.pack("<%di" % count, *labels)))])
    if split == "train":
        open(os.path.join(out, "x.npy"), "wb").write(x)
        open(os.path.join(out, "label.npy"), "wb").write(label)
        safetensors(os.path.join(out, "train.safetensors"),
                    [("x", "U8", [count] + dims, pixels),
                     ("label", "I64", [count], struct.pack("<%dq" % count, *labels))])
        bad = os.path.join(out, "bad")
        # An input missing, a wrong width, float labels, counts that differ.
        npz(os.path.join(bad, "no-label.npz"), [("x", x)])
        npz(os.path.join(bad, "wide.npz"),
            [("x", npy("|u1", [count, 29, 28], pixels + bytes(28 * count))), ("label", label)])
        npz(os.path.join(bad, "float-labels.npz"),
            [("x", x), ("label", npy("<f4", [count], struct.pack("<%df" % count, *labels)))])
        npz(os.path.join(bad, "short-labels.npz"),
            [("x", x), ("label", npy("|u1", [count - 1], labels[:-1]))])
        # A truncated array, an unsupported dtype, Fortran order.
        open(os.path.join(bad, "truncated.npy"), "wb").write(x[:-100])
        open(os.path.join(bad, "half.npy"), "wb").write(
            npy("<f2", [count], bytes(2 * count)))
        open(os.path.join(bad, "fortran.npy"), "wb").write(
            npy("|u1", [count] + dims, pixels, fortran=True))
        # A deflated member with a flipped byte.
        blob = bytearray(open(os.path.join(out, "train.npz"), "rb").read())
        blob[len(blob) // 2] ^= 0xFF
        open(os.path.join(bad, "corrupt.npz"), "wb").write(bytes(blob))
