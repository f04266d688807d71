"""Learned fusion on KuaiRand: which fused score ranks each objective best, and what it does to POEM.

    make fusion-eval     # full: docs/fusion_learning.md's tables and plot (about 35 minutes here)
    PYTHONPATH=build/dispatch/python:python /usr/bin/python3 -m poem_eval.fusion_eval --quick   # the tests'

Four objectives are fused, each with a head of the upstream ranker (upstream.UpstreamConfig with
extra_heads like and follow): click, long view, like, follow. KuaiRand also logs comments (0.25% of
exposures) and forwards (0.08%); on the two test days that is a few dozen positives each, too few to
tell fusions apart, so they are left out.

Every fusion starts from the same four scores of a request's candidates, normalised within the request
by poem.fuse. The hand formula fuses their rank percentiles (weighted rank); the others read them
min-max normalised (1 = the request's best), which keeps how far apart candidates are: with about 50
candidates per request, rank percentiles take about 50 values and saturate at the top, and they rank
the test days' clicks at AUC 0.625 where the min-max values keep 0.648 (the raw score: 0.650). Fused
scores are judged on the exposures of the test days, per objective, by AUC and per-user AUC (GAUC), for
  hand         today's hand weights: weighted rank, click 1, long view 2, like 1, follow 1
  hand_values  the same weights on the min-max values (weighted value): where the ensembles start
  search       the best fixed weights on the min-max values among `search_draws` Dirichlet draws and
               the hand weights, chosen on the validation day
  bce          poem_ref.fusion.LearnedFusion trained with one BCE per objective (the papers' baseline)
  harmonrank   the same ensemble trained on the rank-sum AUC of each objective (soft ranks)
  pantheon     an ensemble reading the POEM model's tower state too, trained jointly with the model
Learned methods and the search run `seeds` seeds (the spread is over seeds); every choice (when a run
stops, which weights the search keeps) is made on the validation day by the mean of the objectives'
AUC and GAUC of the objectives with enough data there (an AUC on >= 50 positives, a GAUC on >= 100
users with both classes: follow, with 22 positives and 12 such users on the validation day, is reported
but chosen by no one). IPPO walks preference vectors over the objectives with HarmonRank's loss and
keeps the Pareto-optimal ensembles (over the AUCs that count): the trade-off plot places every method
against that front.

Then the effect on POEM: POEM's inputs replayed with fused-score tiers as levels (so that the fusion
decides the levels, the tokens' fused scores and the system-favoured tier) under the hand weights and
under HarmonRank's ensemble (served by the C++ fusion_method learned), the same model trained on each,
`poem_seeds` seeds, paired.
Data: KuaiRand (Gao et al., CIKM 2022, https://kuairand.com), CC BY-SA 4.0.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import metrics, upstream
from .data import ATTRIBUTION, LICENSE, SPLIT_POEM_TRAIN, SPLIT_TEST, SPLIT_VALID, EvalConfig, build_eval_data, progress
from .files import replace_atomically, write_text

ROOT = Path(__file__).resolve().parents[2]
OBJECTIVES = ("click", "long_view", "like", "follow")
LABEL_COLUMNS = {"click": "cand_click", "long_view": "cand_long_view", "like": "cand_like", "follow": "cand_follow"}
UPSTREAM = upstream.UpstreamConfig(extra_heads=("like", "follow"))
SCORE_ROWS = (0, 1, 3, 4)  # p_click, p_long_view, p_like, p_follow of UPSTREAM's rows
HAND_WEIGHTS = (1.0, 2.0, 1.0, 1.0)
METHODS = ("hand", "hand_values", "search", "bce", "harmonrank", "pantheon")


@dataclasses.dataclass
class FusionEvalConfig:
    quick: bool = False
    seeds: tuple = (0, 1, 2, 3, 4)
    search_draws: int = 256
    epochs: int = 20           # ensemble training: at most, a validation check per epoch, patience 2
    batch: int = 2048
    lr: float = 1e-2
    ippo_rounds: int = 4
    ippo_per_round: int = 6
    poem_seeds: tuple = (0, 1, 2, 3, 4)
    poem_epochs: int = 2
    pantheon_beta: float = 1.0

    @classmethod
    def quick_mode(cls) -> "FusionEvalConfig":
        return cls(quick=True, seeds=(0,), search_draws=32, epochs=2, ippo_rounds=1, ippo_per_round=3,
                   poem_seeds=(0,), poem_epochs=1)


def _poem():
    from .pipeline import _poem as p
    return p()


def fusion_spec(poem, learned=None, weights=HAND_WEIGHTS):
    """The four objectives min-max normalised, fused by weighted rank (which ranks them whatever their
    normalisation), or by `learned` (a poem.LearnedFusion, which reads the normalised values)."""
    objs = [poem.ObjectiveConfig(poem.Direction.higher_is_better, poem.Normalization.min_max, float(w)) for w in weights]
    if learned is None:
        return poem.FusionConfig(objs, poem.FusionMethod.weighted_rank)
    return poem.FusionConfig(objs, poem.FusionMethod.learned, learned=learned)


def request_features(data, scores: np.ndarray, show_progress: bool = False):
    """Every candidate's four min-max normalised scores (4, C) and hand-weighted fused score (weighted
    rank, C), from poem.fuse on each request: the inputs of every fusion here, as the serving path
    computes them."""
    poem = _poem()
    spec, ws = fusion_spec(poem), poem.Workspace()
    rows = np.ascontiguousarray(scores[list(SCORE_ROWS)])
    norm = np.empty_like(rows)
    fused = np.empty(rows.shape[1], np.float32)
    off = data.req_offsets
    for r in progress(range(data.n_requests), enabled=show_progress, desc="fusion inputs", mininterval=1.0):
        sl = slice(int(off[r]), int(off[r + 1]))
        f = poem.fuse(np.ascontiguousarray(rows[:, sl]), spec, ws)
        norm[:, sl] = f["normalized"]
        fused[sl] = f["fused"]
    return norm, fused


# A metric counts in the validation day's choices only when it rests on enough data there: an AUC on at
# least MIN_POSITIVES positives, a per-user AUC on at least MIN_GAUC_USERS users with both classes.
MIN_POSITIVES = 50
MIN_GAUC_USERS = 100


@dataclasses.dataclass
class Split:
    """The exposures of one split: x (n, 4) normalised scores, y (n, 4) labels, users, candidates, and
    the (objective, metric) pairs with enough data to choose by (`selection`)."""
    x: np.ndarray
    y: np.ndarray
    users: np.ndarray
    cands: np.ndarray
    selection: tuple = ()


def exposures(data, norm: np.ndarray, split: int) -> Split:
    c = np.flatnonzero((data.cand_split == split) & (data.cand_exposed == 1))
    y = np.stack([getattr(data, LABEL_COLUMNS[o])[c] for o in OBJECTIVES], axis=1).astype(np.float32)
    users = data.cand_user[c]
    selection = []
    for k, o in enumerate(OBJECTIVES):
        if y[:, k].sum() >= MIN_POSITIVES:
            selection.append((o, "auc"))
        if metrics.gauc_users(users, y[:, k], np.zeros(len(c))) >= MIN_GAUC_USERS:
            selection.append((o, "gauc"))
    return Split(np.ascontiguousarray(norm[:, c].T), y, users, c, tuple(selection))


def objective_metrics(s: Split, score: np.ndarray) -> dict:
    """Per objective: AUC and per-user AUC of one fused score."""
    score = np.asarray(score, np.float64)
    return {o: {"auc": metrics.auc(s.y[:, k], score), "gauc": metrics.gauc(s.users, s.y[:, k], score)}
            for k, o in enumerate(OBJECTIVES)}


def criterion(m: dict, selection) -> float:
    """What the validation day chooses by: the mean of the metrics `selection` names (the validation
    Split's: AUC and GAUC of every objective with enough data there), NaN ignored."""
    return float(np.nanmean([m[o][k] for o, k in selection]))


def weight_search(valid: Split, draws: int, seed: int):
    """The best fixed weights (weighted value) on the validation day among the hand weights and `draws`
    Dirichlet(1) draws; returns (weights, validation metrics)."""
    rng = np.random.default_rng([seed, 0x5EA2C4])
    cands = np.vstack([np.asarray(HAND_WEIGHTS) / sum(HAND_WEIGHTS), rng.dirichlet(np.ones(len(OBJECTIVES)), draws)])
    best = None
    for w in cands:
        m = objective_metrics(valid, valid.x @ w)
        if best is None or criterion(m, valid.selection) > criterion(best[1], valid.selection):
            best = (w, m)
    return best


# --- learned ensembles on the upstream scores ------------------------------------------------------

def _torch_setup():
    import torch
    torch.set_num_threads(1)  # one thread: see docs/evaluation.md
    return torch


def ensemble_scores(model, s: Split) -> np.ndarray:
    torch = _torch_setup()
    with torch.no_grad():
        return model.logit(torch.from_numpy(s.x)).numpy().astype(np.float64)


def train_ensemble(method: str, train: Split, valid: Split, cfg: FusionEvalConfig, seed: int, prefs=None,
                   init_state=None, show_progress: bool = False):
    """A poem_ref LearnedFusion trained by `method` ("bce" or "harmonrank"), started from the hand weights
    (or `init_state`), stopped at its best validation epoch; returns (model, validation metrics, history)."""
    from poem_ref.fusion import LearnedFusion
    from poem_ref import fusion_train
    torch = _torch_setup()
    torch.manual_seed(seed)
    model = LearnedFusion.from_hand_weights(HAND_WEIGHTS, seed=seed)
    if init_state is not None:
        model.load_state_dict(init_state)
    prefs = np.full(len(OBJECTIVES), 1.0 / len(OBJECTIVES)) if prefs is None else np.asarray(prefs, np.float64)
    fit = {"bce": fusion_train.train_bce, "harmonrank": fusion_train.train_harmonrank}[method]
    valid_score = lambda m: criterion(objective_metrics(valid, ensemble_scores(m, valid)), valid.selection)  # noqa: E731
    history = fit(model, torch.from_numpy(train.x), torch.from_numpy(train.y), prefs, epochs=cfg.epochs,
                  batch_size=cfg.batch, lr=cfg.lr, seed=seed, validate=valid_score, patience=2,
                  show_progress=show_progress)
    return model, objective_metrics(valid, ensemble_scores(model, valid)), history


def run_ippo(train: Split, valid: Split, cfg: FusionEvalConfig, seed: int = 0):
    """IPPO over preference vectors with HarmonRank's loss; every point's validation AUCs (those with
    enough data: the front is over them)."""
    from poem_ref import fusion_train

    def train_fn(prefs, init_state=None):
        return train_ensemble("harmonrank", train, valid, cfg, seed, prefs=prefs, init_state=init_state)[0]

    def eval_fn(model):  # AUCs; one without enough validation data is a constant, so the front ignores it
        m = objective_metrics(valid, ensemble_scores(model, valid))
        return np.array([m[o]["auc"] if (o, "auc") in valid.selection else 0.5 for o in OBJECTIVES])

    return fusion_train.ippo(train_fn, eval_fn, len(OBJECTIVES), rounds=cfg.ippo_rounds, per_round=cfg.ippo_per_round,
                             seed=seed)


# --- POEM with the hand weights or the learned fusion ------------------------------------------------

def poem_ranker_config(poem, pcfg, learned=None):
    """POEM's serving config over the four objectives: fused-score tiers as levels (so the fusion decides
    them), the four raw scores and the side features beside the normalised ones."""
    from .pipeline import ranker_config
    return ranker_config(poem, pcfg, fusion=fusion_spec(poem, learned), raw_features=("identity",) * len(OBJECTIVES))


def poem_inputs(data, ups, learned=None, quick: bool = False):
    from . import item_stats
    from .pipeline import PipelineConfig, build_inputs
    poem = _poem()
    pcfg = PipelineConfig(level_method="fused_tiers", side_features=item_stats.TRANSFORMS)
    return build_inputs(data, ups, pcfg, show_progress=not quick, config=poem_ranker_config(poem, pcfg, learned),
                        score_rows=SCORE_ROWS)


def served_parity(model, inputs) -> dict:
    """The replay's fused score (candidate feature 0, computed by the C++ ranker's learned fusion) against
    the PyTorch ensemble on the same rows' normalised scores (features 3..6)."""
    torch = _torch_setup()
    x = torch.from_numpy(np.ascontiguousarray(inputs["row_feats"][:, 3:3 + len(OBJECTIVES)]))
    with torch.no_grad():
        want = model(x).numpy()
    diff = np.abs(inputs["row_feats"][:, 0].astype(np.float64) - want)
    return {"rows": int(len(diff)), "max_abs_diff": float(diff.max()) if len(diff) else float("nan")}


def pantheon_batches(batches, idx: np.ndarray, batch: int, labels: np.ndarray = None):
    """train_pantheon's batches of the requests `idx`: the model's inputs, the ensemble's scores x, the
    exposed mask and, given `labels` (row_labels), the four labels."""
    from .train import model_inputs
    torch = _torch_setup()
    out = []
    for s in range(0, len(idx), batch):
        b = batches.make(idx[s:s + batch])
        b["inputs"] = model_inputs(b)
        if labels is not None:
            b["labels"] = torch.from_numpy(labels[b["rows"].numpy()]) * b["inside"].unsqueeze(-1)
        b["x"] = b["cand_feats"][..., 3:3 + len(OBJECTIVES)]
        b["mask"] = b["exposed"]  # the ensemble learns from exposures, whose labels are known
        out.append(b)
    return out


def pantheon_scores(model, fusion, data, inputs, batches, split: int):
    """The ensemble's logit for every candidate (index into data's) of the `split` requests' rows."""
    torch = _torch_setup()
    idx = np.flatnonzero(inputs["split"] == split)
    score = np.full(data.n_candidates, np.nan)
    model.eval()
    with torch.no_grad():
        for b in pantheon_batches(batches, idx, 512):
            _, hidden = model.forward_hidden(*b["inputs"])
            logit = fusion.logit(b["x"], hidden)
            inside = b["inside"].numpy()
            c = inputs["row_cand"][b["rows"].numpy()[inside]]
            ok = c >= 0
            score[c[ok]] = logit.numpy()[inside][ok]
    model.train()
    return score


def train_pantheon_eval(data, inputs, valid: Split, test: Split, cfg: FusionEvalConfig, seed: int, log=print):
    """The Pantheon-style ensemble trained jointly with POEM (both sequences, the pairwise hinge, fused-score
    tiers) on the hand weights' inputs; stopped at its best validation epoch (the ensemble's criterion).
    Returns its validation and test metrics."""
    torch = _torch_setup()
    from poem_ref import fusion_train
    from poem_ref.model import PoemModel
    from .train import Batches, TrainConfig, losses, model_config
    torch.manual_seed(seed)
    tc = TrainConfig(epochs=cfg.poem_epochs, batch=64 if cfg.quick else 128, lr=3e-3)
    model = PoemModel(model_config(tc, True, inputs["row_feats"].shape[1] - 3))
    fusion = fusion_train.PantheonFusion.from_hand_weights(HAND_WEIGHTS, hidden_in=tc.mlp[-1], seed=seed)
    batches = Batches(inputs, data, tc.vocab, hard=True)
    train_idx = np.random.default_rng(seed).permutation(np.flatnonzero(inputs["is_train"]))
    tb = pantheon_batches(batches, train_idx, tc.batch, row_labels(data, inputs))

    def poem_loss(out, b):
        point, pair = losses(out, b, True)
        return point + tc.pair_weight * pair

    def validate(m, f):
        sc = pantheon_scores(m, f, data, inputs, batches, SPLIT_VALID)[valid.cands]
        return criterion(objective_metrics(valid, sc), valid.selection)

    fusion_train.train_pantheon(model, fusion, tb, poem_loss, np.full(len(OBJECTIVES), 1.0 / len(OBJECTIVES)),
                                beta=cfg.pantheon_beta, epochs=cfg.poem_epochs, lr=tc.lr, seed=seed, validate=validate,
                                patience=1, show_progress=not cfg.quick)
    mv = objective_metrics(valid, pantheon_scores(model, fusion, data, inputs, batches, SPLIT_VALID)[valid.cands])
    mt = objective_metrics(test, pantheon_scores(model, fusion, data, inputs, batches, SPLIT_TEST)[test.cands])
    return mv, mt


def row_labels(data, inp) -> np.ndarray:
    """(rows, 4) labels of the replay's rows (0 for mined negatives)."""
    c = np.maximum(inp["row_cand"], 0)
    real = inp["row_cand"] >= 0
    return np.stack([np.where(real, getattr(data, LABEL_COLUMNS[o])[c], 0) for o in OBJECTIVES], 1).astype(np.float32)


def train_poem(inputs, data, seed: int, epochs: int, quick: bool, log=print):
    """POEM (both sequences, the pairwise hinge) on inputs replayed with fused-score tiers."""
    from .train import TrainConfig, train_variant
    tc = TrainConfig(epochs=epochs, batch=64 if quick else 128, lr=3e-3)  # the evaluation's chosen rate
    return train_variant("fused_tiers", {"fused_tiers": inputs}, data, tc, seed, log=log, show_progress=not quick)


def run(cfg: FusionEvalConfig, log=print) -> dict:
    from .run import paired
    from .train import evaluate
    t0 = time.time()
    show = not cfg.quick
    data = build_eval_data(EvalConfig(quick=cfg.quick), show_progress=show)
    ups = upstream.build_upstream_scores(data, UPSTREAM, show_progress=show)
    norm, hand_fused = request_features(data, ups.scores, show_progress=show)
    tr, va, te = (exposures(data, norm, s) for s in (SPLIT_POEM_TRAIN, SPLIT_VALID, SPLIT_TEST))
    log(f"data, upstream, fusion inputs: {time.time() - t0:.0f} s; exposures train {len(tr.x)}, validation "
        f"{len(va.x)}, test {len(te.x)}; test positives " +
        ", ".join(f"{o} {int(te.y[:, k].sum())}" for k, o in enumerate(OBJECTIVES)))
    res = {"test": {m: [] for m in METHODS}, "valid": {m: [] for m in METHODS}, "weights": {},
           "selection": [list(x) for x in va.selection]}
    log("the validation day chooses by the mean of " + ", ".join(f"{o} {k}" for o, k in va.selection))
    raw = ups.scores[list(SCORE_ROWS)]
    res["upstream_raw"] = {o: objective_metrics(te, raw[k, te.cands])[o] for k, o in enumerate(OBJECTIVES)}
    res["test"]["hand"].append(objective_metrics(te, hand_fused[te.cands]))
    res["valid"]["hand"].append(objective_metrics(va, hand_fused[va.cands]))
    hand_w = np.asarray(HAND_WEIGHTS) / sum(HAND_WEIGHTS)
    res["test"]["hand_values"].append(objective_metrics(te, te.x @ hand_w))
    res["valid"]["hand_values"].append(objective_metrics(va, va.x @ hand_w))
    models = {}
    for seed in cfg.seeds:
        t1 = time.time()
        w, mv = weight_search(va, cfg.search_draws, seed)
        res["weights"][f"search/{seed}"] = w.tolist()
        res["valid"]["search"].append(mv)
        res["test"]["search"].append(objective_metrics(te, te.x @ w))
        for method in ("bce", "harmonrank"):
            model, mv, _ = train_ensemble(method, tr, va, cfg, seed, show_progress=False)
            models[(method, seed)] = model
            res["valid"][method].append(mv)
            res["test"][method].append(objective_metrics(te, ensemble_scores(model, te)))
        log(f"seed {seed}: search, bce, harmonrank ({time.time() - t1:.0f} s): " + ", ".join(
            f"{m} {criterion(res['test'][m][-1], va.selection):.4f}" for m in ("search", "bce", "harmonrank")))

    t1 = time.time()
    front = run_ippo(tr, va, cfg, seed=cfg.seeds[0])
    res["ippo"] = ippo_report(front, te)
    log(f"IPPO: {len(res['ippo']['points'])} ensembles, {len(res['ippo']['front'])} on the front, "
        f"{res['ippo']['distinct_front']} distinct ({time.time() - t1:.0f} s)")

    # POEM on the hand weights' inputs; Pantheon trains jointly with it there.
    t1 = time.time()
    hand_inputs = poem_inputs(data, ups, None, cfg.quick)
    log(f"POEM inputs (hand weights): {hand_inputs['counts']} ({time.time() - t1:.0f} s)")
    for seed in cfg.seeds:
        t1 = time.time()
        mv, mt = train_pantheon_eval(data, hand_inputs, va, te, cfg, seed, log)
        res["valid"]["pantheon"].append(mv)
        res["test"]["pantheon"].append(mt)
        log(f"seed {seed}: pantheon {criterion(mt, va.selection):.4f} ({time.time() - t1:.0f} s)")

    # The effect on POEM: the same model on inputs from the hand weights and from HarmonRank's ensemble.
    from poem_ref.fusion import fusion_tensors
    poem = _poem()
    chosen = max(cfg.seeds, key=lambda s: criterion(res["valid"]["harmonrank"][cfg.seeds.index(s)], va.selection))
    learned = poem.LearnedFusion.from_tensors({k: v.numpy() for k, v in fusion_tensors(models[("harmonrank", chosen)]).items()})
    t1 = time.time()
    learned_inputs = poem_inputs(data, ups, learned, cfg.quick)
    log(f"POEM inputs (HarmonRank seed {chosen}): {learned_inputs['counts']} ({time.time() - t1:.0f} s)")
    res["served_parity"] = served_parity(models[("harmonrank", chosen)], learned_inputs)
    log(f"served learned fusion against PyTorch: {res['served_parity']}")
    res["poem"] = {"results": {"hand": [], "learned": []}, "ensemble_seed": chosen}
    for seed in cfg.poem_seeds:
        for arm, inputs in (("hand", hand_inputs), ("learned", learned_inputs)):
            model, batches, _, _ = train_poem(inputs, data, seed, cfg.poem_epochs, cfg.quick, log=lambda *a: None)
            m = evaluate(model, batches, data, inputs, SPLIT_TEST)
            m.pop("long_history", None)
            res["poem"]["results"][arm].append(m)
            log(f"POEM seed {seed} ({arm}): AUC long view {m['auc_long_view']:.4f}, GAUC long view "
                f"{m['gauc_long_view']:.4f}, AUC click {m['auc_click']:.4f}")
    res["poem"]["paired"] = paired(res["poem"], "learned", "hand")
    res["total_seconds"] = time.time() - t0
    res["counts"] = {"train": len(tr.x), "valid": len(va.x), "test": len(te.x),
                     "test_positives": {o: int(te.y[:, k].sum()) for k, o in enumerate(OBJECTIVES)},
                     "valid_positives": {o: int(va.y[:, k].sum()) for k, o in enumerate(OBJECTIVES)}}
    res["config"] = dataclasses.asdict(cfg)
    return res


def ippo_report(points, test: Split) -> dict:
    """IPPO's ensembles: preferences, validation AUCs, test AUCs; which are on the (validation) front."""
    from poem_ref.fusion import LearnedFusion
    out = {"points": [], "front": [int(i) for i in points.front],
           # a warm start that never beats its parent on validation returns the parent's weights: count once
           "distinct_front": len({tuple(np.round(points.entries[i].metrics, 12)) for i in points.front})}
    for p in points.entries:
        m = LearnedFusion(len(OBJECTIVES))
        m.load_state_dict(p.state)
        t = objective_metrics(test, ensemble_scores(m, test))
        out["points"].append({"prefs": [float(x) for x in p.prefs], "valid_auc": [float(x) for x in p.metrics],
                              "test": t, "round": int(p.round)})
    return out


def _cell(ms, o, k):
    x = np.array([m[o][k] for m in ms])
    return f"{x.mean():.4f}" + (f" ({x.min():.4f}..{x.max():.4f})" if len(x) > 1 else "")


def summarise(res) -> str:
    head = "| fusion | " + " | ".join(f"{o} AUC | {o} GAUC" for o in OBJECTIVES) + " | selection score |"
    rows = [head, "|---" * (2 * len(OBJECTIVES) + 2) + "|"]
    for m in METHODS:
        ms = res["test"][m]
        if not ms:
            continue
        crit = np.array([criterion(x, res["selection"]) for x in ms])
        rows.append(f"| {m} (x{len(ms)}) | " + " | ".join(f"{_cell(ms, o, 'auc')} | {_cell(ms, o, 'gauc')}"
                                                         for o in OBJECTIVES)
                    + f" | {crit.mean():.4f} |")
    u = res["upstream_raw"]
    rows.append("| each objective's own upstream score (not a fusion) | " + " | ".join(
        f"{u[o]['auc']:.4f} | {u[o]['gauc']:.4f}" for o in OBJECTIVES) + " | |")
    p = res["poem"]
    keys = ("auc_long_view", "gauc_long_view", "auc_click", "gauc_click")
    rows += ["", "POEM trained on inputs from each fusion (fused-score tiers; test days):", "",
             "| POEM inputs from | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for arm, ms in p["results"].items():
        cells = []
        for k in keys:
            x = np.array([m[k] for m in ms])
            cells.append(f"{x.mean():.4f}" + (f" ({x.min():.4f}..{x.max():.4f})" if len(x) > 1 else ""))
        rows.append(f"| {arm} (x{len(ms)}) | " + " | ".join(cells) + " |")
    if p["paired"] and p["paired"][keys[0]]["n"] > 1:
        rows.append("| learned - hand, paired (mean; seeds ahead; t) | " + " | ".join(
            f"{p['paired'][k]['mean']:+.4f} ({p['paired'][k]['positive']}/{p['paired'][k]['n']}, t = {p['paired'][k]['t']:.2f})"
            for k in keys) + " |")
    return "\n".join(rows)


PLOT_PAIRS = (("click", "long_view"), ("long_view", "like"), ("like", "follow"))


def plots(res, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(PLOT_PAIRS), figsize=(15, 4.6))
    pts = res["ippo"]["points"]
    front = set(res["ippo"]["front"])
    colors = {"hand": "black", "hand_values": "tab:purple", "search": "tab:orange", "bce": "tab:blue",
              "harmonrank": "tab:red", "pantheon": "tab:green"}
    for ax, (a, b) in zip(axes, PLOT_PAIRS):
        xs = [p["test"][a]["auc"] for p in pts]
        ys = [p["test"][b]["auc"] for p in pts]
        ax.scatter([x for i, x in enumerate(xs) if i not in front], [y for i, y in enumerate(ys) if i not in front],
                   s=14, c="lightgrey", label="IPPO, dominated on validation")
        ax.scatter([xs[i] for i in sorted(front)], [ys[i] for i in sorted(front)], s=22, c="dimgrey", marker="D",
                   label="IPPO front (validation)")
        for m, c in colors.items():
            ms = res["test"][m]
            if not ms:
                continue
            x = np.array([t[a]["auc"] for t in ms])
            y = np.array([t[b]["auc"] for t in ms])
            ax.errorbar(x.mean(), y.mean(), xerr=[[x.mean() - x.min()], [x.max() - x.mean()]],
                        yerr=[[y.mean() - y.min()], [y.max() - y.mean()]], fmt="o", color=c, ms=7, capsize=3, label=m)
        ax.set_xlabel(f"{a} AUC (test days)")
        ax.set_ylabel(f"{b} AUC (test days)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Fused score per objective: IPPO's ensembles and every method (mean, min..max over seeds)")
    fig.tight_layout()
    with replace_atomically(path, "wb") as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a fifth of the users, one seed, short runs (the tests')")
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    cfg = FusionEvalConfig.quick_mode() if args.quick else FusionEvalConfig()
    res = run(cfg, log=lambda *a: print(*a, file=sys.stderr, flush=True))
    table = summarise(res)
    print(table)
    print(f"total {res['total_seconds']:.0f} s")
    report = dict(res, attribution=ATTRIBUTION, license=LICENSE)
    if args.json:
        write_text(args.json, json.dumps(report, indent=1, default=float))
    if not args.quick:
        out = Path(args.out)
        write_text(out / "fusion_learning_table.md", table + "\n")
        write_text(out / "fusion_learning_results.json", json.dumps(report, indent=1, default=float))
        plots(res, out / "fusion_learning_front.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
