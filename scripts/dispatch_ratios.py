"""The runtime-dispatch build against the -march=native build, one benchmark at a time.

For each bench binary present in both builds, runs the filtered benchmarks alternately (native,
dispatch, native, ...) so both see the same machine state, takes the median real time of each, and
prints time(dispatch) / time(native): the issue's targets are <= 1.15 at N = 1000 (and the Pareto
levels) and <= 1.02 at N = 100. Writes <out>.md (table) and <out>.json. Run with /usr/bin/python3.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from poem_eval.files import write_text  # noqa: E402  (one atomic writer for the project)


def run(binary, flt, reps):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, f"--benchmark_filter={flt}", f"--benchmark_repetitions={reps}",
                        "--benchmark_min_time=0.2", f"--benchmark_out={out.name}", "--benchmark_out_format=json"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        text = open(out.name).read()
    if not text.strip():  # the filter matched nothing in this binary
        return {}, {}
    data = json.loads(text)
    to_ns = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
    times = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "iteration":
            times.setdefault(b["run_name"], []).append(b["real_time"] * to_ns[b["time_unit"]])
    return times, data["context"]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--native", required=True)
    ap.add_argument("--dispatch", required=True)
    ap.add_argument("--filter", required=True)
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the two builds")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per run")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    native, dispatch, contexts = {}, {}, {}
    for name in ("bench_fusion", "bench_order", "bench_model"):
        nb, db = pathlib.Path(a.native, name), pathlib.Path(a.dispatch, name)
        if not (nb.exists() and db.exists()):
            sys.exit(f"dispatch_ratios: {nb} or {db} is missing: build both flavours with benchmarks")
        for r in range(a.rounds):
            print(f"dispatch_ratios: {name} round {r + 1}/{a.rounds}", file=sys.stderr, flush=True)
            for build, store, binary in (("native", native, nb), ("dispatch", dispatch, db)):
                times, ctx = run(str(binary), a.filter, a.reps)
                if ctx:
                    contexts[build] = ctx.get("poem_simd_target", "?")
                for k, v in times.items():
                    store.setdefault(k, []).extend(v)
    rows = []
    for k in sorted(native):
        if k in dispatch:
            n, d = statistics.median(native[k]), statistics.median(dispatch[k])
            rows.append({"benchmark": k, "native_ns": n, "dispatch_ns": d, "ratio": d / n})
    lines = [f"| benchmark | -march=native ({contexts.get('native')}) | dispatch, no -m flags ({contexts.get('dispatch')}) | ratio |",
             "|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['benchmark']} | {r['native_ns'] / 1e3:.2f} us | {r['dispatch_ns'] / 1e3:.2f} us | {r['ratio']:.3f} |")
    table = "\n".join(lines)
    print(table)
    write_text(a.out + ".md", table + "\n")
    write_text(a.out + ".json", json.dumps({"targets": contexts, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
