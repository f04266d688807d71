"""poem's forward pass against LibTorch (on OpenBLAS and on the reference BLAS) and its tower against
oneDNN, plus the whole request (bench_pipeline), in one session: docs/model.md's table.

Runs each (binary, BLAS, filter) alternately for --rounds rounds so that all see the same machine
state, one thread each (OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1; the benches set LibTorch's and oneDNN's
thread counts), and prints the median real and CPU times and the ratios the model's targets name.
OpenBLAS comes from scripts/local-openblas.sh (Debian's libopenblas0-pthread, unpacked, first on
LD_LIBRARY_PATH); bench_model's context entry libtorch_blas is checked against what was asked for.
--before DIR adds the same rows for the binaries in DIR (bench_model, bench_pipeline). Run with
/usr/bin/python3.
"""
import argparse
import os
import pathlib
import statistics
import subprocess

from bench_json import TO_NS, run_bench

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (binary, BLAS, filter): the BLAS matters only to LibTorch.
RUNS = [
    ("bench_model", "openblas",
     r"^BM_model_(predict|predict_bf16|predict_libtorch|mlp|mlp_bf16|mlp_onednn/(fp32|bf16|bf16_from_fp32))/1000$"),
    ("bench_model", "reference", r"^BM_model_predict_libtorch/1000$"),
    ("bench_pipeline", "openblas", r"^BM_pipeline_request/N:1000$"),
]


def run(binary, blas_dir, flt, min_time):
    """Real and CPU time (ns) and label per benchmark, and the context; LibTorch's BLAS from blas_dir
    (first on LD_LIBRARY_PATH), or the system's when empty."""
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    if blas_dir:
        env["LD_LIBRARY_PATH"] = blas_dir
    benchmarks, context = run_bench(binary, flt, [f"--benchmark_min_time={min_time}"], env)
    times = {}
    for b in benchmarks:
        if b.get("error_occurred"):
            continue
        unit = TO_NS[b["time_unit"]]
        times[b["name"]] = (b["real_time"] * unit, b["cpu_time"] * unit, b.get("label", ""))
    return times, context


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bench", default=str(ROOT / "build/native/bench"), help="directory of the bench binaries")
    ap.add_argument("--before", help="directory of earlier binaries to run beside them")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3)
    args = ap.parse_args()
    openblas = subprocess.run([str(ROOT / "scripts/local-openblas.sh")], capture_output=True, text=True).stdout.strip()
    if not openblas:
        print("poem: no OpenBLAS to borrow (scripts/local-openblas.sh): the openblas rows run on the system BLAS")
    builds = [("after", pathlib.Path(args.bench))] + ([("before", pathlib.Path(args.before))] if args.before else [])
    samples, labels, mapped = {}, {}, {}
    for _ in range(args.rounds):
        for build, d in builds:
            for binary, blas, flt in RUNS:
                times, ctx = run(d / binary, openblas if blas == "openblas" else "", flt, args.min_time)
                if "libtorch_blas" in ctx:
                    mapped[(build, blas)] = ctx["libtorch_blas"]
                for name, (real, cpu, label) in times.items():
                    samples.setdefault((build, blas if "libtorch" in name else "", name), []).append((real, cpu))
                    if label:
                        labels[name] = label
    # The machine may be shared: the median says what a run typically sees, the minimum what the code
    # does when nothing else is running.
    med = {k: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v)) for k, v in samples.items()}
    low = {k: min(c for _, c in v) for k, v in samples.items()}
    print(f"{args.rounds} rounds, one thread each; medians of real / CPU time, and the least CPU time")
    for (build, blas), what in sorted(mapped.items()):
        print(f"  {build}, asked for {blas} BLAS: LibTorch mapped {what}")
    print(f"| build | benchmark | BLAS | real ms | CPU ms | least CPU ms |\n|---|---|---|---|---|---|")
    for (build, blas, name), (real, cpu) in sorted(med.items()):
        extra = f" ({labels[name]})" if name in labels else ""
        print(f"| {build} | {name}{extra} | {blas} | {real / 1e6:.3f} | {cpu / 1e6:.3f} | {low[(build, blas, name)] / 1e6:.3f} |")

    def ratio(build, num, den, blas_den=""):
        a, b = med.get((build, "", num)), med.get((build, blas_den, den))
        if a and b:
            lo = low[(build, "", num)] / low[(build, blas_den, den)]
            print(f"  {build}: {num} / {den}{' (' + blas_den + ')' if blas_den else ''}: "
                  f"real {a[0] / b[0]:.3f}, CPU {a[1] / b[1]:.3f}, least CPU {lo:.3f}")

    print("ratios (time / time):")
    for build, _ in builds:
        ratio(build, "BM_model_predict/1000", "BM_model_predict_libtorch/1000", "openblas")
        ratio(build, "BM_model_predict/1000", "BM_model_predict_libtorch/1000", "reference")
        ratio(build, "BM_model_predict_bf16/1000", "BM_model_predict_libtorch/1000", "openblas")
        ratio(build, "BM_model_mlp/1000", "BM_model_mlp_onednn/fp32/1000")
        ratio(build, "BM_model_mlp_bf16/1000", "BM_model_mlp_onednn/bf16/1000")
        ratio(build, "BM_model_mlp_bf16/1000", "BM_model_mlp_onednn/bf16_from_fp32/1000")
        ratio(build, "BM_model_mlp_bf16/1000", "BM_model_mlp/1000")
        ratio(build, "BM_pipeline_request/N:1000", "BM_model_predict_libtorch/1000", "openblas")


if __name__ == "__main__":
    main()
