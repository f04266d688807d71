"""Every file the evaluation writes goes through `replace_atomically`: written to a temporary file
beside its target, flushed to disk, then renamed over it, so a crash or a full disk never leaves a
half-written table, plot, cache or sample (the old file stays whole)."""
import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replace_atomically(path, mode: str = "w"):
    """`with replace_atomically(p) as f: f.write(...)`: `p` changes only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path, text: str) -> None:
    with replace_atomically(path) as f:
        f.write(text)


def write_npz(path, arrays: dict) -> None:
    """Arrays as an uncompressed .npz, atomically. Unlike np.savez, the bytes depend on the arrays alone
    (every zip entry carries the same fixed timestamp), so a file's sha256 identifies its content."""
    import zipfile
    import numpy as np
    with replace_atomically(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, a in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(a), allow_pickle=False)
