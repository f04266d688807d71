"""What bf16 precision costs on the full KuaiRand test days: the demo's model (the full evaluation's POEM
seed 0, data/kuairand_sample/poem_model.safetensors) scored on every test-day request of the evaluation,
with its tower in fp32 and in bf16 (poem_ref.export.bf16_tower: what poem::precision::bf16 computes, the
weights and each layer's input rounded to bfloat16; emulated in PyTorch, which
tests/test_model.cpp checks against the C++ kernel on the golden fixtures). docs/model.md quotes it.

    make precision-eval    # docs/model_precision.json and docs/model_precision.png; about 2 minutes
    LD_LIBRARY_PATH=$(scripts/local-openblas.sh) PYTHONPATH=build/dispatch/python:python \\
      /usr/bin/python3 -m poem_eval.precision [--model FILE] [--quick] [--json FILE] [--plot FILE]

It builds (or reads from POEM_EVAL_CACHE) the evaluation data and inputs: a few minutes the first time.
--quick: the quick evaluation's fifth of the users (python/tests/test_poem_eval_precision.py).
Data: KuaiRand (Gao et al., CIKM 2022, https://kuairand.com), CC BY-SA 4.0; the files this writes are
derived from it and are under the same license.
"""
import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from poem_ref.export import bf16_tower, load

from . import item_stats, upstream
from .data import SPLIT_TEST, EvalConfig, build_eval_data
from .files import replace_atomically, write_text
from .pipeline import PipelineConfig, build_inputs
from .run import METRICS
from .train import VARIANTS, Batches, evaluate_outputs, predict

ROOT = Path(__file__).resolve().parents[2]


def compare(model_path: Path, quick: bool = False, log=print) -> dict:
    """The test-day metrics of the model in fp32 and bf16, how far the outputs moved, and the outputs
    themselves (`outputs`: test rows x heads, per precision)."""
    t0 = time.time()
    show = not quick
    data = build_eval_data(EvalConfig(quick=quick), show_progress=show)
    ups = upstream.build_upstream_scores(data, show_progress=show)
    inp = build_inputs(data, ups, PipelineConfig(level_method=VARIANTS["poem"]["levels"],
                                                 side_features=item_stats.TRANSFORMS), show_progress=show)
    log(f"data and inputs: {time.time() - t0:.0f} s")
    torch.set_num_threads(1)
    fp32 = load(model_path).eval()
    bf16 = bf16_tower(copy.deepcopy(fp32)).eval()
    batches = Batches(inp, data, fp32.config.vocab, hard=True)
    test = np.flatnonzero(inp["split"] == SPLIT_TEST)
    out = {name: predict(m, batches, test) for name, m in (("fp32", fp32), ("bf16", bf16))}
    diff = np.abs(out["bf16"].astype(np.float64) - out["fp32"])
    res = {name: evaluate_outputs(o, data, inp, test) for name, o in out.items()}
    res["rows"] = int(diff.shape[0])
    res["requests"] = int(len(test))
    res["max_abs_diff"] = [float(x) for x in diff.max(axis=0)]
    res["mean_abs_diff"] = [float(x) for x in diff.mean(axis=0)]
    res["quick"] = quick
    res["seconds"] = time.time() - t0
    res["outputs"] = out
    return res


HEADS = ("long view logit", "click logit", "watch time (log1p s)")


def plot(res: dict, path: Path) -> None:
    """Histograms of bf16 - fp32 per head, on a log count scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    d = res["outputs"]["bf16"].astype(np.float64) - res["outputs"]["fp32"]
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    metric = (("auc_long_view", "AUC"), ("auc_click", "AUC"), ("watch_mae_log1p", "MAE"))
    for k, (a, head) in enumerate(zip(ax, HEADS)):
        a.hist(d[:, k], bins=81, color="tab:blue")
        a.set_yscale("log")
        a.locator_params(axis="x", nbins=5)
        key, name = metric[k]
        a.set_title(f"{head}\n{name}: fp32 {res['fp32'][key]:.4f}, bf16 {res['bf16'][key]:.4f}", fontsize=9)
        a.set_xlabel("bf16 - fp32")
    ax[0].set_ylabel("test-day candidates")
    fig.suptitle(f"The demo model's tower in bf16 against fp32: {res['rows']} test-day candidates of KuaiRand "
                 f"(CC BY-SA 4.0)", fontsize=10)
    fig.tight_layout()
    with replace_atomically(path, "wb") as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)


def table(res: dict) -> str:
    lines = [f"{res['requests']} test-day requests, {res['rows']} candidates", "",
             "| metric | fp32 | bf16 | bf16 - fp32 |", "|---|---:|---:|---:|"]
    for key, name in METRICS:
        a, b = res["fp32"][key], res["bf16"][key]
        lines.append(f"| {name} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
    lines.append("")
    lines += [f"|bf16 - fp32| of the {h}: largest {m:.4f}, mean {a:.5f}"
              for h, m, a in zip(HEADS, res["max_abs_diff"], res["mean_abs_diff"])]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "data/kuairand_sample/poem_model.safetensors"))
    ap.add_argument("--quick", action="store_true", help="the quick evaluation's users only")
    ap.add_argument("--json", default=None, help="write the metrics and differences here")
    ap.add_argument("--plot", default=None, help="write the histograms of bf16 - fp32 here (PNG)")
    args = ap.parse_args(argv)
    res = compare(Path(args.model), quick=args.quick)
    print(table(res))
    print(f"total {res['seconds']:.0f} s")
    if args.json:
        report = {k: v for k, v in res.items() if k != "outputs"}
        report["model"] = Path(args.model).name
        write_text(args.json, json.dumps(report, indent=1, default=float) + "\n")
    if args.plot:
        plot(res, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
