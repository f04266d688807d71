"""The KuaiRand evaluation of POEM against a chronological baseline, with ablations and the floor.

    make evaluation     # full: docs/evaluation.md's table and plots, and the demo's sample and model
    PYTHONPATH=build/dispatch/python:python /usr/bin/python3 -m poem_eval.run --quick    # about 50 s, the tests'

Full mode: POEM and the baseline with five seeds, the four ablations with two; every run stops at its
best validation check (the validation day, never the test days) and the learning rate is chosen on
the validation day too. The table gives mean and spread (min..max) over seeds and the paired
comparison of POEM and the baseline, beside the floor (each item's smoothed rate from every day before
the test days) and the upstream ranker's own scores. Quick mode: a fifth of the users, POEM and the
baseline, one seed, one learning rate.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import item_stats, metrics, upstream
from .files import replace_atomically, write_text
from .data import SPLIT_TEST, EvalConfig, build_eval_data
from .pipeline import PipelineConfig, build_inputs
from .train import VARIANTS, TrainConfig, evaluate, selection_score, train_variant

ROOT = Path(__file__).resolve().parents[2]
METRICS = [("auc_long_view", "AUC long view"), ("gauc_long_view", "GAUC long view"),
           ("auc_click", "AUC click"), ("gauc_click", "GAUC click"), ("watch_mae_log1p", "watch MAE (log1p s)")]


PAIRED = ("poem", "chrono_baseline")  # the comparison the protocol's seeds are for


def run(quick: bool, seeds, variants, max_epochs: int, lrs, out_dir: Path, ablation_seeds: int = 2, log=print):
    """Every run stops at its best validation check (train.train_variant); the learning rate is chosen
    on the validation day too. The test days are scored once per run, after every choice is made."""
    t0 = time.time()
    data = build_eval_data(EvalConfig(quick=quick), show_progress=not quick)
    ups = upstream.build_upstream_scores(data, show_progress=not quick)
    log(f"data + upstream scores: {time.time() - t0:.0f} s")
    inputs = {}
    for levels in sorted({VARIANTS[v]["levels"] for v in variants}):
        t1 = time.time()
        cfg = PipelineConfig(level_method=levels, side_features=item_stats.TRANSFORMS)
        inputs[levels] = build_inputs(data, ups, cfg, show_progress=not quick)
        c = inputs[levels]["counts"]
        log(f"inputs ({levels}): {c['requests']} requests, {c['pairs']} pairs, {c['hard_negatives']} hard and "
            f"{c['random_negatives']} random negatives, {c['po_tokens'] / max(c['requests'], 1):.1f} PO tokens per "
            f"request, graph {inputs[levels]['graph_edges']} edges ({time.time() - t1:.0f} s)")
    batch = 64 if quick else 128  # quick: a fifth of the data, more steps
    results, histories, models, selections, valid, chosen_lr = {}, {}, {}, {}, {}, {}
    for v in variants:
        # The learning rate: poem and the baseline choose theirs among `lrs` by seed 0's validation
        # score; the ablations take poem's. Every seed for them; the ablations run `ablation_seeds`.
        grid = lrs if v in PAIRED or "poem" not in chosen_lr else [chosen_lr["poem"]]
        runs = {lr: train_variant(v, inputs, data, TrainConfig(epochs=max_epochs, batch=batch, lr=lr), seeds[0],
                                  log=log, show_progress=not quick) for lr in grid}
        lr = max(grid, key=lambda x: selection_score(runs[x][3]["valid"]) if runs[x][3]["valid"] else 0.0)
        chosen_lr[v] = lr
        if len(grid) > 1:
            log(f"{v}: learning rate {lr} (validation " + ", ".join(
                f"{x}: {selection_score(runs[x][3]['valid']):.4f}" for x in grid if runs[x][3]["valid"]) + ")")
        for seed in (seeds if v in PAIRED else seeds[:ablation_seeds]):
            model, batches, hist, sel = runs[lr] if seed == seeds[0] else train_variant(
                v, inputs, data, TrainConfig(epochs=max_epochs, batch=batch, lr=lr), seed, log=log,
                show_progress=not quick)
            m = evaluate(model, batches, data, inputs[VARIANTS[v]["levels"]], SPLIT_TEST)
            results.setdefault(v, []).append(m)
            valid.setdefault(v, []).append(sel["valid"])
            selections[(v, seed)] = {"epoch": sel["epoch"], "curve": sel["curve"], "lr": lr}
            histories[(v, seed)] = hist
            models[(v, seed)] = model
            log(f"{v} seed {seed} (epoch {sel['epoch']:.1f}): " + ", ".join(f"{k} {m[k]:.4f}" for k, _ in METRICS))
    floor = metrics.floor_report(data)
    floor["upstream"] = upstream_report(data, ups.scores)
    return dict(results=results, valid=valid, histories=histories, models=models, selections=selections,
                chosen_lr=chosen_lr, floor=floor, inputs=inputs, data=data, upstream_scores=ups.scores,
                seconds=time.time() - t0, seeds=list(seeds))


def paired(res, a: str = "poem", b: str = "chrono_baseline") -> dict:
    """Per metric, a - b seed by seed (the same seed: the same training order and initialisation
    stream): the differences, their mean, how many are > 0, and the paired t statistic."""
    if a not in res["results"] or b not in res["results"]:
        return {}
    out = {}
    for k, _ in METRICS:
        d = np.array([x[k] - y[k] for x, y in zip(res["results"][a], res["results"][b])])
        sd = float(d.std(ddof=1)) if len(d) > 1 else float("nan")
        out[k] = {"diffs": d.tolist(), "mean": float(d.mean()), "positive": int((d > 0).sum()), "n": len(d),
                  "t": float(d.mean() / (sd / np.sqrt(len(d)))) if len(d) > 1 and sd > 0 else float("nan")}
    return out


def upstream_report(data, scores) -> dict:
    """The upstream ranker's own scores on the test days' exposures: what POEM's inputs already know."""
    te = (data.cand_exposed == 1) & (data.req_split[data.cand_request] == SPLIT_TEST)
    return metrics.evaluate(data.cand_user[te], data.cand_click[te], data.cand_long_view[te],
                            data.cand_play_time_s[te], scores[0, te], scores[1, te], np.maximum(scores[2, te], 0.0))


def loss_summary(histories) -> dict:
    """Per run: the mean training loss (pointwise + pairwise) over its first and last 10% of steps."""
    out = {}
    for (v, seed), h in histories.items():
        h = np.array(h)
        k = max(1, len(h) // 10)
        total = h[:, 1] + h[:, 2]
        out[f"{v}/{seed}"] = {"first": float(total[:k].mean()), "last": float(total[-k:].mean()), "steps": len(h)}
    return out


def summarise(res) -> str:
    rows = ["| model | " + " | ".join(n for _, n in METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for v, ms in res["results"].items():
        cells = []
        for k, _ in METRICS:
            x = np.array([m[k] for m in ms])
            cells.append(f"{x.mean():.4f}" + (f" ({x.min():.4f}..{x.max():.4f})" if len(x) > 1 else ""))
        rows.append(f"| {v} (x{len(ms)}) | " + " | ".join(cells) + " |")
    f = res["floor"]["metrics"]
    rows.append("| floor: item's smoothed rate | " + " | ".join(
        f"{f.get(k, float('nan')):.4f}" for k, _ in METRICS) + " |")
    u = res["floor"]["upstream"]
    rows.append("| upstream ranker's scores (input to all) | " + " | ".join(f"{u[k]:.4f}" for k, _ in METRICS) + " |")
    pr = paired(res)
    if pr and pr[METRICS[0][0]]["n"] > 1:
        rows += ["", "POEM minus the chronological baseline, seed by seed (mean; seeds where POEM is ahead; paired t):",
                 "", "| | " + " | ".join(n for _, n in METRICS) + " |", "|---" * (len(METRICS) + 1) + "|",
                 "| poem - chrono_baseline | " + " | ".join(
                     f"{pr[k]['mean']:+.4f} ({pr[k]['positive']}/{pr[k]['n']}, t = {pr[k]['t']:.2f})" for k, _ in METRICS)
                 + " |"]
    # The same metrics on the requests whose partial-order sequence was full.
    first = next(iter(res["results"].values()))[0]["long_history"]
    rows += ["", f"Requests with a full partial-order sequence ({first['n']} test exposures, "
             f"{first['gauc_users_long_view']} users in the GAUC):", "",
             "| model | " + " | ".join(n for _, n in METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for v, ms in res["results"].items():
        cells = []
        for k, _ in METRICS:
            x = np.array([m["long_history"][k] for m in ms])
            cells.append(f"{x.mean():.4f}" + (f" ({x.min():.4f}..{x.max():.4f})" if len(x) > 1 else ""))
        rows.append(f"| {v} (x{len(ms)}) | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plots(res, out_dir: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    names = list(res["results"])
    for a, (k, label) in zip(ax, [("auc_long_view", "AUC long view"), ("gauc_long_view", "GAUC long view")]):
        vals = [[m[k] for m in res["results"][v]] for v in names]
        a.boxplot(vals, labels=names, showmeans=True)
        a.axhline(res["floor"]["metrics"][k], color="grey", ls="--", label="floor (item rate)")
        a.axhline(res["floor"]["upstream"][k], color="tab:red", ls=":", label="upstream scores")
        a.set_title(f"{label}, test days (seeds)")
        a.tick_params(axis="x", rotation=30)
        a.legend()
    fig.tight_layout()
    with replace_atomically(out_dir / "evaluation_metrics.png", "wb") as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)
    fig, a = plt.subplots(figsize=(6, 4))
    first_seed = min(s for (_, s) in res["histories"])
    for (v, seed), h in res["histories"].items():
        if seed == first_seed and h:
            h = np.array(h)
            w = max(1, len(h) // 50)  # a moving mean over 2% of the run
            smooth = np.convolve(h[:, 1] + h[:, 2], np.ones(w) / w, mode="valid")
            a.plot(h[w - 1:, 0], smooth, label=v)
    a.set_xlabel("epoch")
    a.set_ylabel("training loss (pointwise + pairwise), moving mean")
    a.set_title(f"training loss, seed {first_seed}")
    a.legend(fontsize=7)
    fig.tight_layout()
    with replace_atomically(out_dir / "evaluation_loss.png", "wb") as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--variants", default=None, help="comma-separated, default: all (quick: poem,chrono_baseline)")
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--json", default=None, help="write the metrics, floor and loss curves' ends here")
    ap.add_argument("--export-sample", default=None, metavar="DIR",
                    help="write the demo's request sample and the seed-0 POEM model here (data/kuairand_sample)")
    ap.add_argument("--ablation-seeds", type=int, default=2, help="seeds of the variants other than poem and "
                    "chrono_baseline (which run --seeds)")
    ap.add_argument("--lrs", default=None, help="comma-separated learning rates the validation day chooses from "
                    "(default: 0.001,0.003; quick: 0.002)")
    args = ap.parse_args(argv)
    variants = args.variants.split(",") if args.variants else (["poem", "chrono_baseline"] if args.quick else list(VARIANTS))
    seeds = list(range(args.seeds if args.seeds else (1 if args.quick else 5)))
    epochs = args.epochs if args.epochs else 2  # at most; each run stops at its best validation check
    lrs = [float(x) for x in args.lrs.split(",")] if args.lrs else ([2e-3] if args.quick else [1e-3, 3e-3])
    res = run(args.quick, seeds, variants, epochs, lrs, Path(args.out), ablation_seeds=args.ablation_seeds)
    table = summarise(res)
    print(table)
    print(f"total {res['seconds']:.0f} s")
    report = {"results": res["results"], "valid": res["valid"], "floor": res["floor"], "seconds": res["seconds"],
              "paired": paired(res), "chosen_lr": res["chosen_lr"],
              "selections": {f"{v}/{s}": x for (v, s), x in res["selections"].items()},
              "loss": loss_summary(res["histories"]), "inputs": {k: v["counts"] for k, v in res["inputs"].items()},
              "graph_edges": {k: int(v["graph_edges"]) for k, v in res["inputs"].items()},
              "max_epochs": epochs, "lrs": lrs, "seeds": seeds, "ablation_seeds": args.ablation_seeds,
              "quick": args.quick}
    if args.json:
        write_text(args.json, json.dumps(report, indent=1, default=float))
    if not args.quick:
        plots(res, Path(args.out))
        write_text(Path(args.out) / "evaluation_table.md", table + "\n")
        write_text(Path(args.out) / "evaluation_results.json", json.dumps(report, indent=1, default=float))
    if args.export_sample:
        from .sample import write_sample
        info = write_sample(res["data"], res["upstream_scores"], args.export_sample,
                            model=res["models"].get(("poem", seeds[0])),
                            serving_config=res["inputs"][VARIANTS["poem"]["levels"]]["serving_config"])
        print(f"demo sample: {info} in {args.export_sample}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
