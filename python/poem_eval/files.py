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
