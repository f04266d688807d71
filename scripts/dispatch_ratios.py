"""The runtime-dispatch build against the -march=native build, one benchmark at a time.

For each bench binary present in both builds, runs the filtered benchmarks alternately (native,
dispatch, native, ...) so both see the same machine state, takes the median real time of each, and
prints time(dispatch) / time(native): the issue's targets are <= 1.15 at N = 1000 (and the Pareto
levels) and <= 1.02 at N = 100. Writes <out>.md (table) and <out>.json. Run with /usr/bin/python3.
"""
import argparse
import json
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from poem_eval.files import write_text  # noqa: E402  (one atomic writer for the project)
from bench_json import TO_NS, run_bench  # noqa: E402  (scripts/ is on the path of a script run from it)


def run(binary, flt, reps):
    """Every repetition's real time (ns) per benchmark, and the context."""
    benchmarks, context = run_bench(binary, flt, [f"--benchmark_repetitions={reps}", "--benchmark_min_time=0.2"])
    times = {}
    for b in benchmarks:
        if b.get("run_type") == "iteration":
            times.setdefault(b["run_name"], []).append(b["real_time"] * TO_NS[b["time_unit"]])
    return times, context


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
