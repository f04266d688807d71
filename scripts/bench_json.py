"""Runs one Google Benchmark binary with its JSON output and reads it back: the one way poem's scripts
(dispatch_ratios.py, model_baselines.py) time benchmarks. Run with /usr/bin/python3."""
import json
import os
import subprocess
import tempfile

TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def run_bench(binary, flt, args=(), env=None):
    """The benchmarks of `binary` matching `flt`, in `env` (default: this process's) with one thread for
    OpenBLAS and OpenMP. Returns (benchmarks, context) from the JSON; ([], {}) when the filter matched
    nothing."""
    env = dict(env if env is not None else os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([str(binary), f"--benchmark_filter={flt}", *args, f"--benchmark_out={out.name}",
                        "--benchmark_out_format=json"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        text = open(out.name).read()
    if not text.strip():
        return [], {}
    data = json.loads(text)
    return data["benchmarks"], data["context"]
