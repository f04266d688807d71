"""Training of the learned fusion ensembles (HarmonRank, Pantheon) and the IPPO walk over preferences.

Data: `x` [n, K], each candidate's K normalised objective scores (what `poem.fuse(...)["normalized"]`
holds, the input of `LearnedFusion`), and `y` [n, K], its binary label per objective. `prefs` [K] are the
objectives' preference weights (non-negative, normalised here to sum 1).

  train_bce          the papers' baseline: one fused logit, loss  sum_k prefs[k] * BCE(logit, y[:, k])
  train_harmonrank   HarmonRank: loss  -sum_k prefs[k] * soft_auc_k(logit)  over each minibatch, the
                     rank-sum AUC on differentiable ranks (poem_ref.soft_rank says which and why)
  PantheonFusion,    Pantheon: the two-step ensemble that also reads the ranking model's tower hidden
  train_pantheon     state, trained jointly with it (the model's own loss + beta * the HarmonRank loss)
  ippo               iterative Pareto policy optimisation: trains at preference vectors that walk toward
                     the gaps of the Pareto front found so far, keeps the non-dominated ensembles
  pareto_front       the non-dominated points (maximisation)

Every function is deterministic given its seed: minibatches are shuffled with a seeded torch.Generator,
and IPPO draws from a seeded numpy Generator. The caller sets torch's thread count.
"""
from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .fusion import Component, LearnedFusion
from .soft_rank import soft_auc

__all__ = ["harmonrank_loss", "bce_loss", "train_bce", "train_harmonrank", "PantheonFusion", "train_pantheon",
           "pareto_front", "IppoEntry", "IppoResult", "ippo"]


# ----------------------------------------------------------------------------------------------- losses

def _prefs(prefs, k: int) -> torch.Tensor:
    p = torch.as_tensor(np.asarray(prefs, dtype=np.float64)).to(torch.float32)
    if p.shape != (k,) or not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or float(p.sum()) <= 0:
        raise ValueError(f"prefs: expected {k} finite non-negative weights with a positive sum, got {prefs!r}")
    return p / p.sum()


def harmonrank_loss(logit: torch.Tensor, y: torch.Tensor, prefs: torch.Tensor, strength: float) -> torch.Tensor:
    """-sum_k prefs[k] * soft AUC_k of `logit` [b] against `y` [b, K].

    The logits are standardised over the batch first (mean 0, std 1, differentiably), so the loss is
    invariant to their shift and scale, as the AUC is (otherwise growing the logits' scale alone would
    sharpen the soft ranks and look like progress), and are ranked with eps = strength / b: about
    `strength` / 6 of the average gap between neighbours of a standard normal sample, so a strength of a
    few pools each score with its near neighbours. An objective without both classes in the batch adds
    nothing (soft_auc's rule)."""
    b = logit.shape[0]
    if b < 2:
        return logit.sum() * 0.0
    u = (logit - logit.mean()) / logit.std().clamp_min(1e-6)
    return -(prefs.to(u.dtype) * soft_auc(u, y, strength / b)).sum()


def bce_loss(logit: torch.Tensor, y: torch.Tensor, prefs: torch.Tensor) -> torch.Tensor:
    """sum_k prefs[k] * BCE(logit, y[:, k]) (each BCE a mean over the batch)."""
    per = nn.functional.binary_cross_entropy_with_logits(logit.unsqueeze(-1).expand_as(y), y.to(logit.dtype),
                                                         reduction="none").mean(0)
    return (prefs.to(per.dtype) * per).sum()


# ------------------------------------------------------------------------------------------ the loop

def _progress(total: int, show: bool, desc: str):
    if not show:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, file=sys.stderr, leave=False, mininterval=1.0)


def _fit(modules: Sequence[nn.Module], epoch_batches: Callable[[int], list], loss_fn: Callable, epochs: int,
         lr: float, validate: Optional[Callable[[], float]], patience: Optional[int], show_progress: bool,
         desc: str, weight_decay: float = 0.0) -> dict:
    """Adam over the modules' parameters, `epochs` passes over `epoch_batches(epoch)`; with `validate`
    (higher is better) the state of the best check (the initial state included) is restored at the end,
    and training stops after `patience` checks without improvement."""
    if epochs < 0 or lr <= 0 or not math.isfinite(lr):
        raise ValueError(f"{desc}: need epochs >= 0 and a finite lr > 0, got epochs={epochs}, lr={lr}")
    if patience is not None and patience < 1:
        raise ValueError(f"{desc}: patience must be >= 1 or None, got {patience}")
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    history = {"loss": [], "step_loss": [], "val": [], "best_epoch": None, "stopped_early": False}
    best, best_state, bad = -math.inf, None, 0

    def check(epoch):
        nonlocal best, best_state, bad
        for m in modules:
            m.eval()
        with torch.no_grad():
            v = float(validate())
        for m in modules:
            m.train()
        history["val"].append(v)
        if v > best:                        # a NaN check never counts as best
            best, bad, history["best_epoch"] = v, 0, epoch
            best_state = [copy.deepcopy(m.state_dict()) for m in modules]
        else:
            bad += 1

    for m in modules:
        m.train()
    if validate is not None:
        check(-1)                           # the starting point: training never returns worse than it
    bar = None
    for epoch in range(epochs):
        batches = epoch_batches(epoch)
        if bar is None:
            bar = _progress(epochs * len(batches), show_progress, desc)
        total = 0.0
        for batch in batches:
            loss = loss_fn(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history["step_loss"].append(float(loss))
            total += float(loss)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.4f}")
        history["loss"].append(total / max(len(batches), 1))
        if validate is not None:
            check(epoch)
            if patience is not None and bad >= patience:
                history["stopped_early"] = epoch + 1 < epochs
                break
    if bar is not None:
        bar.close()
    if best_state is not None:
        for m, s in zip(modules, best_state):
            m.load_state_dict(s)
    for m in modules:
        m.eval()
    return history


def _arrays(model: nn.Module, x, y, groups, who: str):
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y, dtype=np.float32))
    k = getattr(model, "k", None)
    if xt.dim() != 2 or (k is not None and xt.shape[1] != k):
        raise ValueError(f"{who}: x must have shape [n, {k}], got {tuple(xt.shape)}")
    if yt.shape != xt.shape:
        raise ValueError(f"{who}: y must have x's shape {tuple(xt.shape)}, got {tuple(yt.shape)}")
    if not bool(torch.isfinite(xt).all()):
        raise ValueError(f"{who}: x holds NaN or infinite values")
    if not bool(((yt == 0) | (yt == 1)).all()):
        raise ValueError(f"{who}: y must hold only 0 and 1")
    if groups is not None and np.asarray(groups).shape != (xt.shape[0],):
        raise ValueError(f"{who}: groups must have shape [{xt.shape[0]}], got {np.asarray(groups).shape}")
    return xt, yt


def _minibatches(n: int, batch_size: int, seed: int, who: str) -> Callable[[int], list]:
    """Each epoch, a fresh shuffle cut into ceil(n / batch_size) batches of near-equal size (no runt
    batch, whose AUC would be noise)."""
    if batch_size < 2:
        raise ValueError(f"{who}: batch_size must be >= 2, got {batch_size}")
    if n < 2:
        raise ValueError(f"{who}: need at least 2 rows, got {n}")
    g = torch.Generator().manual_seed(seed)
    parts = -(-n // batch_size)

    def epoch_batches(epoch):
        return list(torch.tensor_split(torch.randperm(n, generator=g), parts))
    return epoch_batches


def train_bce(model: LearnedFusion, x, y, prefs, *, groups=None, epochs: int = 20, lr: float = 1e-2,
              batch_size: int = 2048, seed: int = 0, validate: Optional[Callable[[nn.Module], float]] = None,
              patience: Optional[int] = None, weight_decay: float = 0.0, show_progress: bool = False) -> dict:
    """The baseline: `model.logit(x)` trained by  sum_k prefs[k] * BCE(logit, y[:, k]).

    Adam, shuffled minibatches; `validate(model) -> float` (higher is better) after each epoch, and before
    the first: the best state is kept and restored, with early stopping after `patience` checks without
    improvement. `groups` (request or user ids, shape [n]) is checked and otherwise unused: the loss is
    per row. Returns the history: per-epoch mean `loss`, `step_loss`, `val` (the first is the initial
    state's), `best_epoch` (-1 = the initial state) and `stopped_early`."""
    xt, yt = _arrays(model, x, y, groups, "train_bce")
    p = _prefs(prefs, xt.shape[1])
    return _fit([model], _minibatches(len(xt), batch_size, seed, "train_bce"),
                lambda idx: bce_loss(model.logit(xt[idx]), yt[idx], p), epochs, lr,
                None if validate is None else (lambda: validate(model)), patience, show_progress, "train_bce",
                weight_decay)


def train_harmonrank(model: LearnedFusion, x, y, prefs, *, groups=None, strength: float = 4.0, epochs: int = 20,
                     lr: float = 1e-2, batch_size: int = 2048, seed: int = 0,
                     validate: Optional[Callable[[nn.Module], float]] = None, patience: Optional[int] = None,
                     weight_decay: float = 0.0, show_progress: bool = False) -> dict:
    """HarmonRank: `model.logit(x)` trained by  -sum_k prefs[k] * soft_auc_k(logit)  over each minibatch
    (`harmonrank_loss`; `strength` as there). The AUC is a property of a set, so each minibatch (about
    `batch_size` rows, 2048 by default) is one set. Otherwise as `train_bce`."""
    xt, yt = _arrays(model, x, y, groups, "train_harmonrank")
    p = _prefs(prefs, xt.shape[1])
    return _fit([model], _minibatches(len(xt), batch_size, seed, "train_harmonrank"),
                lambda idx: harmonrank_loss(model.logit(xt[idx]), yt[idx], p, strength), epochs, lr,
                None if validate is None else (lambda: validate(model)), patience, show_progress,
                "train_harmonrank", weight_decay)


# ------------------------------------------------------------------------------------------ Pantheon

class PantheonFusion(nn.Module):
    """Pantheon-style ensemble: LearnedFusion's two steps over x [..., K], with a projection of the
    ranking model's tower hidden state h [..., Hm] joined in the aggregation (representation
    inheritance: the fine-grained state, not only the compressed predicted rates):

        e = component(x).flatten()            (step 1, as LearnedFusion)
        q = relu(project(h))                  [proj_dim]
        a = relu(aggregate([e, q]))           (step 2 sees the objectives and the representation)
        logit = out(a) + skip(x)
    """

    def __init__(self, k: int, hidden_in: int, component_dim: int = 4, proj_dim: int = 8, hidden: int = 16):
        super().__init__()
        if not (1 <= k <= 16 and hidden_in >= 1 and 1 <= component_dim <= 64 and proj_dim >= 1
                and 1 <= hidden <= 256):
            raise ValueError(f"PantheonFusion: K={k} (1..16), hidden_in={hidden_in} (>= 1), component_dim="
                             f"{component_dim} (1..64), proj_dim={proj_dim} (>= 1), hidden={hidden} (1..256)")
        self.k, self.hidden_in, self.component_dim, self.proj_dim, self.hidden = \
            k, hidden_in, component_dim, proj_dim, hidden
        self.component = Component(k, component_dim)
        self.project = nn.Linear(hidden_in, proj_dim)
        self.aggregate = nn.Linear(k * component_dim + proj_dim, hidden)
        self.out = nn.Linear(hidden, 1)
        self.skip = nn.Linear(k, 1, bias=False)

    def logit(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """x [..., K], h [..., Hm] -> [...] logits."""
        e = self.component(x).flatten(-2)
        q = torch.relu(self.project(h))
        a = torch.relu(self.aggregate(torch.cat([e, q], dim=-1)))
        return self.out(a).squeeze(-1) + self.skip(x).squeeze(-1)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logit(x, h))

    @classmethod
    def from_hand_weights(cls, weights, hidden_in: int, component_dim: int = 4, proj_dim: int = 8,
                          hidden: int = 16, scale: float = 4.0, seed: int = 0) -> "PantheonFusion":
        """Starts where `LearnedFusion.from_hand_weights` starts (same seed, same x part: the hand formula
        on the skip path), with the hidden state's projection joined by small aggregation weights."""
        base = LearnedFusion.from_hand_weights(weights, component_dim, hidden, scale, seed)
        m = cls(base.k, hidden_in, component_dim, proj_dim, hidden)
        g = torch.Generator().manual_seed(seed + 1)
        kd = base.k * component_dim
        with torch.no_grad():
            m.component.load_state_dict(base.component.state_dict())
            m.out.load_state_dict(base.out.state_dict())
            m.skip.load_state_dict(base.skip.state_dict())
            m.aggregate.bias.copy_(base.aggregate.bias)
            m.aggregate.weight[:, :kd].copy_(base.aggregate.weight)
            m.aggregate.weight[:, kd:].normal_(0.0, 0.01, generator=g)
            m.project.weight.normal_(0.0, (1.0 / hidden_in) ** 0.5, generator=g)
            m.project.bias.zero_()
        return m


def train_pantheon(poem_model: nn.Module, fusion: PantheonFusion, batches: Sequence[dict],
                   poem_loss: Callable[[torch.Tensor, dict], torch.Tensor], prefs, *, beta: float = 1.0,
                   strength: float = 4.0, epochs: int = 1, lr: float = 1e-3, seed: int = 0,
                   validate: Optional[Callable[[nn.Module, PantheonFusion], float]] = None,
                   patience: Optional[int] = None, weight_decay: float = 0.0, show_progress: bool = False) -> dict:
    """Joint training of the POEM model and the ensemble that inherits its representation.

    Each batch is a dict: "inputs", the 8 arguments of `PoemModel.forward` (B requests of N candidates);
    "labels" [B, N, K] binary per objective; optional "x" [B, N, K], the ensemble's objective scores
    (default: cand_feats[..., 3:], the K normalised scores the model already reads); optional "mask"
    [B, N] bool, the real candidates (padding is left out of the ensemble's loss). Per batch,

        loss = poem_loss(outputs, batch) + beta * harmonrank_loss(fusion.logit(x, hidden), labels, prefs)

    with `outputs, hidden = poem_model.forward_hidden(*inputs)`, the HarmonRank loss taken over every real
    candidate of the batch as one set (as a minibatch of train_harmonrank); the ensemble's gradient flows into the
    model's tower through `hidden` (the caller keeps its own loss for the model's heads). One Adam over
    both; the batches' order is shuffled every epoch (seeded); `validate(poem_model, fusion) -> float`
    (higher is better) keeps the best joint state, as in `train_bce`. Returns the history."""
    if not isinstance(batches, Sequence) or len(batches) == 0:
        raise ValueError("train_pantheon: batches must be a non-empty sequence of dicts (iterated every epoch)")
    if not (math.isfinite(beta) and beta >= 0):
        raise ValueError(f"train_pantheon: beta must be finite and >= 0, got {beta}")
    p = _prefs(prefs, fusion.k)
    g = torch.Generator().manual_seed(seed)

    def loss_fn(batch):
        outputs, hidden = poem_model.forward_hidden(*batch["inputs"])
        x = batch.get("x")
        if x is None:
            x = batch["inputs"][1][..., 3:]
        labels = torch.as_tensor(batch["labels"])
        if x.shape[-1] != fusion.k or labels.shape != x.shape or hidden.shape[:-1] != x.shape[:-1]:
            raise ValueError(f"train_pantheon: x {tuple(x.shape)} and labels {tuple(labels.shape)} must be "
                             f"[B, N, {fusion.k}] over the model's {tuple(hidden.shape[:-1])} candidates")
        logit = fusion.logit(x, hidden)
        mask = batch.get("mask")
        if mask is not None:
            mask = torch.as_tensor(mask).bool()
            logit, labels = logit[mask], labels[mask]
        else:
            logit, labels = logit.reshape(-1), labels.reshape(-1, fusion.k)
        return poem_loss(outputs, batch) + beta * harmonrank_loss(logit, labels, p, strength)

    return _fit([poem_model, fusion],
                lambda epoch: [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()],
                loss_fn, epochs, lr, None if validate is None else (lambda: validate(poem_model, fusion)),
                patience, show_progress, "train_pantheon", weight_decay)


# ------------------------------------------------------------------------------------------- Pareto

def pareto_front(points) -> np.ndarray:
    """Indices (ascending) of the non-dominated rows of `points` [m, K] under maximisation: a row is
    dominated when another is >= on every objective and > on one. Identical rows never dominate each
    other; a row with a NaN or infinite value is never on the front (poem's policy: such a candidate
    takes the last level). O(m^2 K), for the tens of ensembles an IPPO run evaluates.

    numpy rather than the compiled `poem.assign_levels(..., LevelConfig(method=pareto))`, whose level 0
    is the same set: poem_ref has to work without the compiled module, and the module takes float32
    scores, which would tie metric vectors that differ below float32's resolution."""
    a = np.asarray(points, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"pareto_front: points must be [m, K], got shape {a.shape}")
    ok = np.isfinite(a).all(axis=1)
    f = a[ok]
    ge = (f[:, None, :] >= f[None, :, :]).all(-1)        # ge[j, i]: j >= i everywhere
    gt = (f[:, None, :] > f[None, :, :]).any(-1)
    dominated = (ge & gt).any(0)
    return np.flatnonzero(ok)[~dominated]


@dataclass
class IppoEntry:
    prefs: np.ndarray          # [K] preference vector (sums to 1)
    metrics: np.ndarray        # [K] eval_fn's validation metrics (higher is better)
    state: dict                # the trained ensemble's state_dict (detached copies)
    round: int                 # 0 = the starting set
    parent: Optional[int]      # the entry whose weights it started from (None: train_fn's own start)


@dataclass
class IppoResult:
    entries: List[IppoEntry] = field(default_factory=list)
    front: List[int] = field(default_factory=list)     # indices of the non-dominated entries

    def front_entries(self) -> List[IppoEntry]:
        return [self.entries[i] for i in self.front]


def _on_simplex(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.0, None)
    s = p.sum()
    return p / s if s > 0 else np.full_like(p, 1.0 / len(p))


def ippo(train_fn: Callable[[np.ndarray, Optional[dict]], nn.Module],
         eval_fn: Callable[[nn.Module], Sequence[float]], k: int, rounds: int = 3, per_round: int = 4,
         seed: int = 0, corner: float = 0.75, jitter: float = 0.02, min_distance: float = 0.05,
         show_progress: bool = False) -> IppoResult:
    """Iterative Pareto policy optimisation as a walk over preference vectors on the K-simplex.

    `train_fn(prefs, init_state)` trains an ensemble at `prefs` (starting from `init_state`, a state_dict,
    when not None) and returns it; `eval_fn(model)` returns its K validation metrics (higher is better).

    Round 0 trains at the uniform vector and at the K corners' neighbourhood (corner * e_k + (1 - corner)
    / K), each from train_fn's own start. Each later round proposes `per_round` vectors from the current
    front: midpoints of pairs of front members, the pairs farthest apart in (range-normalised) metric
    space first (the front's gaps), alternating with moves of the member best on objective k half way
    toward corner k (the front's ends); a proposal within `min_distance` (L1) of a vector already tried is
    dropped, and when too few remain a front member is perturbed at random. Every proposal gets a seeded
    jitter (Gaussian, std `jitter`, projected back on the simplex) and is trained warm-started from the
    nearest front member's weights (L1 in preference space), evaluated, and the front recomputed over
    every entry. Returns every evaluated entry and the final front's indices."""
    if k < 1 or rounds < 0 or per_round < 1 or not (0 < corner <= 1):
        raise ValueError(f"ippo: need k >= 1, rounds >= 0, per_round >= 1, 0 < corner <= 1; got k={k}, "
                         f"rounds={rounds}, per_round={per_round}, corner={corner}")
    rng = np.random.default_rng(seed)
    result = IppoResult()
    bar = _progress(k + 1 + rounds * per_round, show_progress, "ippo")

    def run(prefs, parent, rnd):
        init = None if parent is None else copy.deepcopy(result.entries[parent].state)
        model = train_fn(prefs.copy(), init)
        metrics = np.asarray(eval_fn(model), dtype=np.float64)
        if metrics.shape != (k,):
            raise ValueError(f"ippo: eval_fn must return {k} metrics, got shape {metrics.shape}")
        state = {name: t.detach().clone() for name, t in model.state_dict().items()}
        result.entries.append(IppoEntry(prefs.copy(), metrics, state, rnd, parent))
        if bar is not None:
            bar.update(1)

    def tried_near(p, extra):
        return any(np.abs(p - e.prefs).sum() < min_distance for e in result.entries) or \
            any(np.abs(p - q).sum() < min_distance for q in extra)

    start = [np.full(k, 1.0 / k)]
    for j in range(k):
        p = np.full(k, (1.0 - corner) / k)
        p[j] += corner
        if not any(np.abs(p - q).sum() < 1e-12 for q in start):
            start.append(p)
    for p in start:
        run(p, None, 0)
    result.front = pareto_front([e.metrics for e in result.entries]).tolist()

    for rnd in range(1, rounds + 1):
        front = result.front
        m = np.array([e.metrics for e in result.entries])
        finite = m[np.isfinite(m).all(axis=1)]
        span = (finite.max(0) - finite.min(0)) if len(finite) else np.ones(k)
        span = np.where(span > 0, span, 1.0)
        gaps = []
        for a in range(len(front)):
            for b in range(a + 1, len(front)):
                i, j = front[a], front[b]
                d = np.abs((m[i] - m[j]) / span).max()
                gaps.append((-d, i, j))
        gaps.sort()
        gap_props = [(result.entries[i].prefs + result.entries[j].prefs) / 2 for _, i, j in gaps]
        end_props = []
        if front:
            for obj in range(k):
                best = max(front, key=lambda i: (m[i, obj], -i))
                target = np.zeros(k)
                target[obj] = 1.0
                end_props.append(result.entries[best].prefs + 0.5 * (target - result.entries[best].prefs))
        ordered = [p for pair in zip(gap_props, end_props) for p in pair]
        longer = gap_props if len(gap_props) > len(end_props) else end_props
        ordered += longer[min(len(gap_props), len(end_props)):]
        props = []
        for p in ordered:
            if len(props) == per_round:
                break
            p = _on_simplex(p)
            if not tried_near(p, props):
                props.append(p)
        tries = 0
        while len(props) < per_round and tries < 100 * per_round:
            tries += 1
            base = result.entries[front[rng.integers(len(front))]].prefs if front else np.full(k, 1.0 / k)
            p = _on_simplex(base + rng.normal(0.0, 0.1, size=k))
            if not tried_near(p, props):
                props.append(p)
        for p in props:
            p = _on_simplex(p + rng.normal(0.0, jitter, size=k)) if jitter > 0 else p
            parent = min(front, key=lambda i: (np.abs(result.entries[i].prefs - p).sum(), i)) if front else None
            run(p, parent, rnd)
        result.front = pareto_front([e.metrics for e in result.entries]).tolist()
    if bar is not None:
        bar.close()
    return result
