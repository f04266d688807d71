"""Medians of scripts/device-check.sh's benchmark JSON, as one JSON file, a Markdown table and a plot.

    /usr/bin/python3 scripts/device_report.py RESULTS_DIR [RESULTS_DIR ...] --json OUT.json --plot OUT.png

Each RESULTS_DIR holds the *.json files of one run (results.tgz unpacked). Every figure is the median of
the repetitions in one file; files named <group>_<round>.json are rounds of the same group, run
alternately. The plot compares the N = 1000 tower and forward-pass variants, round by round.
"""
import argparse
import glob
import json
import os
import re
import sys
import tempfile


def medians(path):
    with open(path) as f:
        d = json.load(f)
    out = {}
    for b in d["benchmarks"]:
        if b.get("aggregate_name") == "median":
            unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
            out[b["run_name"]] = b["real_time"] * unit * 1e3  # ms
    return d["context"], out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--json", required=True)
    ap.add_argument("--plot")
    args = ap.parse_args()
    runs = []
    for i, d in enumerate(args.dirs, 1):
        files = {}
        context = {}
        for path in sorted(glob.glob(os.path.join(d, "*.json"))):
            context, m = medians(path)
            files[os.path.basename(path)[:-5]] = {"poem_simd_target": context.get("poem_simd_target"), "median_ms": m}
        cpu = open(os.path.join(d, "cpu.txt")).read() if os.path.exists(os.path.join(d, "cpu.txt")) else ""
        runs.append({"run": i, "cpu_model": context.get("cpu_model"), "mhz_per_cpu": context.get("mhz_per_cpu"),
                     "cpu": cpu.strip().splitlines(), "files": files})
    doc = {"what": "medians (ms) of scripts/device-check.sh runs, one thread pinned; see docs/model.md", "runs": runs}
    tmp = tempfile.NamedTemporaryFile("w", dir=os.path.dirname(os.path.abspath(args.json)), delete=False)
    with tmp:
        json.dump(doc, tmp, indent=1)
        tmp.write("\n")
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, args.json)
    for r in runs:
        print(f"## run {r['run']}: {r['cpu_model']}")
        for name, f in sorted(r["files"].items()):
            for bench, ms in f["median_ms"].items():
                print(f"| {name} ({f['poem_simd_target']}) | {bench} | {ms:.3f} ms |")
    if args.plot:
        plot(runs[-1], args.plot)


def plot(run, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [  # label, file group, benchmark
        ("poem fp32 (avx512)", "model_avx512", "BM_model_mlp/1000", "BM_model_predict/1000"),
        ("poem bf16, widening (avx512)", "model_avx512", "BM_model_mlp_bf16/1000", "BM_model_predict_bf16/1000"),
        ("poem bf16, vdpbf16ps (avx512bf16)", "model_avx512bf16", "BM_model_mlp_bf16/1000", "BM_model_predict_bf16/1000"),
        ("poem bf16, AMX tiles (amx)", "model_amx", "BM_model_mlp_bf16/1000", "BM_model_predict_bf16/1000"),
        ("poem fp32 before the FMA fix", "model_before", "BM_model_mlp/1000", "BM_model_predict/1000"),
        ("oneDNN 2.6 fp32", "model_best", "BM_model_mlp_onednn/fp32/1000", None),
        ("oneDNN 2.6 bf16 (AMX)", "model_best", "BM_model_mlp_onednn/bf16/1000", None),
        ("LibTorch 2.11 fp32", "model_libtorch", None, "BM_model_predict_libtorch/1000"),
        ("poem whole request, fp32 model", "pipeline", None, "BM_pipeline_request/N:1000"),
        ("poem whole request, bf16 model", "pipeline", None, "BM_pipeline_request_bf16/N:1000"),
    ]
    rounds = sorted({int(m.group(1)) for k in run["files"] for m in [re.search(r"_(\d+)$", k)] if m})
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for ax, col, title in ((axes[0], 2, "tower and heads (BM_model_mlp*), N = 1000"),
                           (axes[1], 3, "forward pass and whole request, N = 1000")):
        labels, values = [], []
        for row in rows:
            if row[col] is None:
                continue
            vals = [run["files"].get(f"{row[1]}_{r}", {}).get("median_ms", {}).get(row[col]) for r in rounds]
            vals = [v for v in vals if v is not None]
            if vals:
                labels.append(row[0])
                values.append(vals)
        for j, vals in enumerate(values):
            color = "C1" if "request" in labels[j] else "C0" if "poem" in labels[j] else "C7"
            ax.barh(j, sum(vals) / len(vals), color=color)
            ax.plot(vals, [j] * len(vals), "k|", markersize=12)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.set_xlabel("ms per call (bar: mean of the rounds, ticks: each round)", fontsize=9)
        ax.set_title(title, fontsize=10)
    fig.suptitle(f"{run['cpu_model']} (AMX, AVX512_BF16), one thread", fontsize=10)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
