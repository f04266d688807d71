"""Training and evaluation of POEM and its baselines on the inputs of pipeline.py.

Every variant is the same PoemModel class of poem_ref (same width, same MLP, same candidate features:
upstream scores and side features included); variants differ only in what they see and how they learn:
  poem            chronological + partial-order sequences, pointwise heads + hierarchical pairwise hinge
  chrono_baseline chronological sequence only, pointwise heads only (the ordinary sequence model)
  no_po           poem without the partial-order sequence
  no_hard_neg     poem without the graph-mined hard negatives (their rows and pairs dropped)
  pointwise       poem with the pointwise loss only (no pairs)
  fused_tiers     poem with fused-score tiers instead of Pareto levels (inputs built with them)

Training runs up to TrainConfig.epochs epochs and, when the inputs hold validation requests, scores
them after every epoch and keeps the epoch with the best validation score (selection_score); it stops
once an epoch fails to improve on the best. The test requests are never looked at here.
"""
from dataclasses import dataclass
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from poem_ref.model import PoemConfig, PoemModel, hash_ids

from .data import progress
from .schema import SPLIT_TEST, SPLIT_VALID

VARIANTS = {
    "poem": dict(use_po=True, pairwise=True, hard=True, levels="pareto"),
    "chrono_baseline": dict(use_po=False, pairwise=False, hard=True, levels="pareto"),
    "no_po": dict(use_po=False, pairwise=True, hard=True, levels="pareto"),
    "no_hard_neg": dict(use_po=True, pairwise=True, hard=False, levels="pareto"),
    "pointwise": dict(use_po=True, pairwise=False, hard=True, levels="pareto"),
    "fused_tiers": dict(use_po=True, pairwise=True, hard=True, levels="fused_tiers"),
}


@dataclass
class TrainConfig:
    epochs: int = 2
    batch: int = 128           # requests per step
    lr: float = 2e-3
    pair_weight: float = 1.0
    vocab: int = 16384
    d: int = 32
    mlp: tuple = (256, 128, 64)
    threads: int = 1           # one: two OpenMP threads on this 2-core machine stall whenever anything else runs


def model_config(tc: TrainConfig, use_po: bool, n_objectives: int) -> PoemConfig:
    """n_objectives: the inputs' objective rows (row_feats has 3 + n_objectives columns)."""
    return PoemConfig(vocab=tc.vocab, d=tc.d, n_heads=1, n_objectives=n_objectives, n_levels=8, chrono_feats=1,
                      mlp=list(tc.mlp), heads=["long_view", "click", "watch_time"], use_po=use_po)


SELECTION = ("auc_long_view", "gauc_long_view", "auc_click", "gauc_click")


def selection_score(m: dict) -> float:
    """What the validation day chooses by: the mean of AUC and per-user AUC of long view and click."""
    return float(np.mean([m[k] for k in SELECTION]))


class Batches:
    """Pads a set of requests of the pipeline output into B x N tensors."""

    def __init__(self, inp: dict, data, vocab: int, hard: bool):
        self.inp, self.data = inp, data
        self.hard = hard
        self.row_rows = hash_ids(inp["row_item"], vocab)
        self.po_rows = hash_ids(inp["po_ids"].reshape(-1), vocab).reshape(inp["po_ids"].shape)
        self.ch_rows = hash_ids(inp["ch_ids"].reshape(-1), vocab).reshape(inp["ch_ids"].shape)
        c = np.maximum(inp["row_cand"], 0)
        real = inp["row_cand"] >= 0
        self.exposed = (data.cand_exposed[c] > 0) & real
        self.lv = np.where(real, data.cand_long_view[c], 0).astype(np.float32)
        self.click = np.where(real, data.cand_click[c], 0).astype(np.float32)
        self.watch = np.where(real, np.log1p(np.maximum(data.cand_play_time_s[c], 0)), 0).astype(np.float32)
        self.keep = np.ones(len(inp["row_item"]), bool) if hard else inp["row_tier"] != 3

    def __len__(self):
        return len(self.inp["req"])

    def make(self, idx):
        """The batch of requests `idx`: B x n row tensors (n = the longest request), pairs flattened."""
        inp = self.inp
        idx = np.asarray(idx)
        ro, po = inp["row_offsets"], inp["pair_offsets"]
        lens = ro[idx + 1] - ro[idx]
        n = max(1, int(lens.max()))
        pos = np.arange(n)
        inside = pos[None, :] < lens[:, None]
        rows = np.where(inside, ro[idx][:, None] + pos[None, :], 0)   # B x n, padding reads row 0
        cand_ids = np.where(inside, self.row_rows[rows], 0)
        cand_feats = np.where(inside[..., None], inp["row_feats"][rows], 0.0).astype(np.float32)
        exposed = inside & self.exposed[rows]
        lv, click, watch = (np.where(inside, a[rows], 0.0).astype(np.float32) for a in (self.lv, self.click, self.watch))
        # Pairs of every request, flattened: request b's pairs are po[idx[b]] .. po[idx[b] + 1].
        counts = po[idx + 1] - po[idx]
        pb = np.repeat(np.arange(len(idx)), counts)
        k = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(po[idx], counts)
        pi, pj, pm = inp["pair_i"][k], inp["pair_j"][k], inp["pair_margin"][k]
        base = ro[idx][pb]
        ok = self.keep[base + pi] & self.keep[base + pj]
        t = torch.from_numpy
        return dict(
            rows=t(rows), inside=t(inside), cand_ids=t(cand_ids.astype(np.int64)), cand_feats=t(cand_feats), exposed=t(exposed),
            lv=t(lv), click=t(click), watch=t(watch),
            chrono_ids=t(self.ch_rows[idx]), chrono_feats=t(inp["ch_feats"][idx]), chrono_mask=t(inp["ch_mask"][idx] > 0),
            po_ids=t(self.po_rows[idx]), po_feats=t(inp["po_feats"][idx]), po_mask=t(inp["po_mask"][idx] > 0),
            pair_b=t(pb[ok].astype(np.int64)), pair_i=t(pi[ok].astype(np.int64)),
            pair_j=t(pj[ok].astype(np.int64)), pair_m=t(pm[ok].astype(np.float32)))


def model_inputs(b):
    """A batch's arguments of PoemModel.forward (and forward_hidden), in order."""
    return (b["cand_ids"], b["cand_feats"], b["chrono_ids"], b["chrono_feats"], b["chrono_mask"],
            b["po_ids"], b["po_feats"], b["po_mask"])


def forward(model, b):
    return model(*model_inputs(b))


def losses(out, b, pairwise: bool):
    e = b["exposed"]
    point = (F.binary_cross_entropy_with_logits(out[..., 0][e], b["lv"][e])
             + F.binary_cross_entropy_with_logits(out[..., 1][e], b["click"][e])
             + F.mse_loss(out[..., 2][e], b["watch"][e]))
    pair = torch.zeros(())
    if pairwise and len(b["pair_b"]):
        s = out[..., 0]
        diff = s[b["pair_b"], b["pair_i"]] - s[b["pair_b"], b["pair_j"]]
        pair = torch.clamp(b["pair_m"] - diff, min=0).mean()
    return point, pair


def train_variant(name: str, inputs: dict, data, tc: TrainConfig, seed: int, log=print, show_progress: bool = False):
    """Returns (model, batches, history, selection). With validation requests in the inputs, the model
    is scored on them every half epoch and the run stops at the first check that does not beat the best
    so far; the best check's weights are returned. selection = {"epoch" (of the best check, in epochs),
    "valid" (its validation metrics, None without validation requests), "curve" ((epoch, score) of
    every check)}."""
    v = VARIANTS[name]
    torch.manual_seed(seed)
    torch.set_num_threads(tc.threads)
    inp = inputs[v["levels"]]
    train_idx = np.flatnonzero(inp["is_train"])
    has_valid = bool((inp["split"] == SPLIT_VALID).any())
    model = PoemModel(model_config(tc, v["use_po"], inp["row_feats"].shape[1] - 3))
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    batches = Batches(inp, data, tc.vocab, v["hard"])
    rng = np.random.default_rng(seed)
    history = []  # (epoch as a float, pointwise loss, pairwise loss) of every step
    t0 = time.time()
    steps_per_epoch = max(1, math.ceil(len(train_idx) / tc.batch))
    checks = {steps_per_epoch // 2, steps_per_epoch} if has_valid else {steps_per_epoch}
    best, curve, stop = None, [], False  # best: (score, epoch, validation metrics, state)
    for epoch in range(tc.epochs):
        perm = rng.permutation(train_idx)
        bar = progress(range(0, len(perm), tc.batch), enabled=show_progress, desc=f"{name} seed {seed} epoch {epoch + 1}",
                       mininterval=1.0)
        for step, s in enumerate(bar):
            b = batches.make(perm[s:s + tc.batch])
            out = forward(model, b)
            point, pair = losses(out, b, v["pairwise"])
            loss = point + tc.pair_weight * pair
            opt.zero_grad()
            loss.backward()
            opt.step()
            at = epoch + (step + 1) / steps_per_epoch
            history.append((at, float(point), float(pair)))
            if step + 1 not in checks:
                continue
            h = np.array(history[-(steps_per_epoch // 2 or 1):])
            msg = f"  {name} seed {seed} epoch {at:.1f}: pointwise {h[:, 1].mean():.4f} pairwise {h[:, 2].mean():.4f}"
            if has_valid:
                m = evaluate(model, batches, data, inp, SPLIT_VALID)
                curve.append((at, selection_score(m)))
                msg += f", validation {curve[-1][1]:.4f}"
                if best is None or curve[-1][1] > best[0]:
                    best = (curve[-1][1], at, m, {k: t.detach().clone() for k, t in model.state_dict().items()})
                else:
                    stop = True  # no better than the best: keep the best, stop
            log(msg + f" ({time.time() - t0:.0f} s)")
            if stop:
                break
        if stop:
            break
    if best is not None:
        model.load_state_dict(best[3])
    selection = {"epoch": best[1] if best else float(tc.epochs), "valid": best[2] if best else None, "curve": curve}
    return model, batches, history, selection


@torch.no_grad()
def predict(model, batches: Batches, idx: np.ndarray, batch: int = 512):
    """Head outputs of the real rows of the given requests, in row order."""
    model.eval()
    outs = []
    ro = batches.inp["row_offsets"]
    for s in range(0, len(idx), batch):
        part = idx[s:s + batch]
        b = batches.make(part)
        out = forward(model, b).numpy()
        for k, r in enumerate(part):
            outs.append(out[k, :ro[r + 1] - ro[r]])
    model.train()
    return np.concatenate(outs) if outs else np.zeros((0, 3), np.float32)


def evaluate(model, batches: Batches, data, inp: dict, split: int = SPLIT_TEST):
    """The metrics on the exposures of the `split` requests (test or validation); under "long_history",
    the same on the exposures of requests whose partial-order sequence was full (the users POEM has the
    most to say about)."""
    test_idx = np.flatnonzero(inp["split"] == split)
    return evaluate_outputs(predict(model, batches, test_idx), data, inp, test_idx)


def evaluate_outputs(out: np.ndarray, data, inp: dict, test_idx: np.ndarray):
    """evaluate()'s metrics from outputs already predicted for the requests `test_idx` (predict's rows)."""
    from . import metrics
    ro = inp["row_offsets"]
    lens = ro[test_idx + 1] - ro[test_idx]
    rows = np.concatenate([np.arange(ro[r], ro[r + 1]) for r in test_idx])
    c = inp["row_cand"][rows]
    users = data.cand_user[c]
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    p_click, p_lv, watch = sig(out[:, 1]), sig(out[:, 0]), np.expm1(np.maximum(out[:, 2], 0))
    res = metrics.evaluate(users, data.cand_click[c], data.cand_long_view[c], data.cand_play_time_s[c],
                           p_click, p_lv, watch)
    full = np.repeat(inp["po_mask"][test_idx].sum(axis=1) == inp["po_mask"].shape[1], lens)
    res["long_history"] = metrics.evaluate(users[full], data.cand_click[c[full]], data.cand_long_view[c[full]],
                                           data.cand_play_time_s[c[full]], p_click[full], p_lv[full], watch[full])
    return res
