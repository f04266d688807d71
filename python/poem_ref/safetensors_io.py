"""The safetensors format, written and read without the `safetensors` package.

Layout: 8-byte little-endian header length n, n bytes of JSON header, then the raw buffer. The header
maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
buffer), plus an optional "__metadata__" object of string -> string. Tensors are written in name order,
contiguous, little-endian; the header is padded with spaces to a multiple of 8 bytes, as the reference
implementation does, so that F32 data is 4-byte aligned in the file.
"""
import json
import os
import struct
import tempfile

import numpy as np
import torch

_DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def _tensor_bytes(t: torch.Tensor, dtype: str) -> bytes:
    t = t.detach().to("cpu").contiguous().to(_DTYPES[dtype][0])
    if dtype == "BF16":  # numpy has no bfloat16: go through its bits
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if dtype == "F16":
        return t.numpy().astype("<f2").tobytes()
    return t.numpy().astype("<f4").tobytes()


def write_safetensors(path, tensors: dict, metadata: dict = None, dtype: str = "F32") -> None:
    """Write `tensors` (name -> torch.Tensor) as `dtype` (F32, F16 or BF16) with string metadata."""
    if dtype not in _DTYPES:
        raise ValueError(f"unsupported dtype {dtype}")
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = _tensor_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    _write_file(path, header, blobs)


def _write_file(path, header: dict, blobs) -> None:
    """Header + buffer into a temporary file beside `path`, flushed, then renamed over it: a reader
    sees the old file or the new one, never a part of either."""
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would outlive the rename
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def update_metadata(path, updates: dict, out_path=None) -> None:
    """Sets the string metadata `updates` in a safetensors file (`out_path`, default in place), the
    tensors' bytes untouched."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    meta.update({str(k): str(v) for k, v in updates.items()})
    header["__metadata__"] = meta
    _write_file(out_path or path, header, [blob[8 + n:]])


def read_safetensors(path):
    """Read a file written by `write_safetensors`: returns (name -> float32 tensor, metadata dict)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    buf = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = buf[b:e]
        if info["dtype"] == "F32":
            arr = torch.from_numpy(np.frombuffer(raw, dtype="<f4").copy())
        elif info["dtype"] == "F16":
            arr = torch.from_numpy(np.frombuffer(raw, dtype="<f2").astype(np.float32))
        elif info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = torch.from_numpy(bits.view(np.float32).copy())
        else:
            raise ValueError(f"tensor {name}: unsupported dtype {info['dtype']}")
        out[name] = arr.reshape(info["shape"])
    return out, meta
