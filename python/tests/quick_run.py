"""The tests' one way to run a `python -m poem_eval.<module> --quick --json` job and read its report.

A subprocess, so that Debian's OpenBLAS, when scripts/local-openblas.sh has unpacked it under
build/openblas, can be put first on LD_LIBRARY_PATH."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPENBLAS = ROOT / "build" / "openblas" / "usr" / "lib" / "x86_64-linux-gnu" / "openblas-pthread"


def quick_report(module: str) -> dict:
    env = dict(os.environ)
    if (OPENBLAS / "libblas.so.3").exists():
        env["LD_LIBRARY_PATH"] = f"{OPENBLAS}:{env.get('LD_LIBRARY_PATH', '')}"
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "quick.json"
        run = subprocess.run([sys.executable, "-m", module, "--quick", "--json", str(out)],
                             env=env, capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            raise AssertionError(f"{module} --quick failed:\n{run.stdout}\n{run.stderr[-3000:]}")
        return json.loads(out.read_text())
