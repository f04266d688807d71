"""The upstream multi-task ranker: the per-candidate ranking scores that POEM fuses.

The log has no ranking scores, so a small PyTorch model stands in for the production ranker. It is
trained on the EXPOSED candidates of the upstream days only (default 20220425..27) and then scores every
candidate of every request: K = 3 score rows

    0  p_click            sigmoid of the click logit
    1  p_long_view        sigmoid of the long-view logit
    2  pred_watch_time_s  expm1 of the log1p(play seconds) regression (trained standardised), clipped
                          at 0
    3.. p_<label>         with ``extra_heads`` (("like", "follow") for the learned-fusion evaluation): one
                          more sigmoid head per named KuaiRand label, trained with BCE like click's

Features: a user embedding, an item embedding (users / items with fewer than ``min_count`` training
exposures, and every unseen one, share index 0: the OOV embedding, which is therefore trained), and the
item's side features from video_features_basic_pure.csv (catalogue duration bucket, video_type,
upload_type, first tag, number of tags). Two hidden layers, three heads. Seeded and deterministic;
``torch.set_num_threads(threads)`` (2 at most here).

Scores are cached beside the data as ``upstream_<hash>.npz`` (``scores`` is (3, n_candidates) float32,
rows contiguous, ``req_in_sample`` marks requests of the upstream days, whose scores are in-sample),
with the model's weights and vocabularies: ``UpstreamScores.scorer`` scores any item for any user the
same way (the replay's mined negatives, which join their request as candidates).
Data: KuaiRand (Gao et al., CIKM 2022, https://kuairand.com), CC BY-SA 4.0.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from . import metrics
from .data import (ATTRIBUTION, LICENSE, SPLIT_NAMES, SPLIT_POEM_TRAIN, SPLIT_TEST, SPLIT_UPSTREAM, SPLIT_VALID,
                   EvalData, load_npz, progress, save_npz)

UPSTREAM_VERSION = 2  # 2: the cache keeps the model (UpstreamScorer), not only its scores
SCORE_NAMES = ("p_click", "p_long_view", "pred_watch_time_s")
EXTRA_LABELS = {"like": "cand_like", "follow": "cand_follow"}  # head name -> EvalData column
DURATION_EDGES_S = np.array([7.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class UpstreamConfig:
    emb_dim: int = 16
    side_dim: int = 8
    hidden: tuple = (64, 32)
    min_count: int = 2
    epochs: int = 3
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-6
    watch_loss_weight: float = 1.0
    seed: int = 0
    threads: int = 2
    score_batch: int = 65536
    extra_heads: tuple = ()  # more binary labels to score ("like", "follow"), after the three rows

    def __post_init__(self):
        bad = [h for h in self.extra_heads if h not in EXTRA_LABELS]
        if bad:
            raise ValueError(f"UpstreamConfig.extra_heads: unknown label(s) {bad}; known: {sorted(EXTRA_LABELS)}")

    def score_names(self) -> tuple:
        return SCORE_NAMES + tuple(f"p_{h}" for h in self.extra_heads)

    def key(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d.pop("score_batch")
        d.pop("threads")
        if not self.extra_heads:  # the three-head model's caches keep their names
            d.pop("extra_heads")
        else:
            d["extra_heads"] = list(self.extra_heads)
        d["version"] = UPSTREAM_VERSION
        return d


def duration_bucket(duration_s: np.ndarray) -> np.ndarray:
    """0 = missing, 1.. = log-spaced buckets of the catalogue duration."""
    d = np.asarray(duration_s, dtype=np.float32)
    b = np.searchsorted(DURATION_EDGES_S, np.nan_to_num(d, nan=0.0), side="right") + 1
    return np.where(np.isfinite(d), b, 0).astype(np.int64)


class Vocab:
    """Dense token per id with >= min_count occurrences; everything else -> 0 (OOV)."""

    def __init__(self, ids: np.ndarray, size: int, min_count: int):
        counts = np.bincount(ids, minlength=size)
        self.table = np.zeros(max(size, len(counts)), dtype=np.int64)
        keep = np.flatnonzero(counts >= min_count)
        self.table[keep] = np.arange(1, len(keep) + 1)
        self.n_tokens = len(keep) + 1

    @classmethod
    def from_table(cls, table: np.ndarray, n_tokens: int) -> "Vocab":
        v = cls.__new__(cls)
        v.table, v.n_tokens = np.asarray(table, np.int64), int(n_tokens)
        return v

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        inside = ids < len(self.table)
        return np.where(inside, self.table[np.minimum(ids, len(self.table) - 1)], 0)


class UpstreamRanker(nn.Module):
    def __init__(self, n_users: int, n_items: int, side_sizes: Dict[str, int], cfg: UpstreamConfig):
        super().__init__()
        self.user = nn.Embedding(n_users, cfg.emb_dim)
        self.item = nn.Embedding(n_items, cfg.emb_dim)
        self.side = nn.ModuleDict({k: nn.Embedding(v, cfg.side_dim) for k, v in side_sizes.items()})
        for e in [self.user, self.item, *self.side.values()]:
            nn.init.normal_(e.weight, std=0.05)
        d_in = 2 * cfg.emb_dim + cfg.side_dim * len(side_sizes)
        layers = []
        for h in cfg.hidden:
            layers += [nn.Linear(d_in, h), nn.ReLU()]
            d_in = h
        self.mlp = nn.Sequential(*layers)
        # click logit, long-view logit, log1p watch seconds, then one logit per extra head
        self.heads = nn.Linear(d_in, 3 + len(cfg.extra_heads))
        self.extra_heads = tuple(cfg.extra_heads)

    def forward(self, user, item, side: Dict[str, torch.Tensor]) -> torch.Tensor:
        x = [self.user(user), self.item(item)] + [self.side[k](side[k]) for k in self.side]
        return self.heads(self.mlp(torch.cat(x, dim=1)))


def _score(model: UpstreamRanker, u, i, side, wt_mu: float, wt_sd: float) -> np.ndarray:
    """The score rows of the model's outputs: p_click, p_long_view, watch seconds, then p_<extra head>."""
    with torch.no_grad():
        out = model(u, i, side)
        rows = [torch.sigmoid(out[:, 0]), torch.sigmoid(out[:, 1]),
                torch.expm1(torch.clamp(out[:, 2] * wt_sd + wt_mu, min=0.0))]
        rows += [torch.sigmoid(out[:, 3 + e]) for e in range(out.shape[1] - 3)]
        return torch.stack(rows).numpy().astype(np.float32)


class UpstreamScorer:
    """The trained upstream model as a function of (user index, items): float32 (rows, n), the scores it
    gave every candidate. Picklable (a replay's workers can hold it)."""

    def __init__(self, model: UpstreamRanker, user_vocab: Vocab, item_vocab: Vocab, data: EvalData,
                 wt_mu: float, wt_sd: float):
        self.model = model.eval()
        self.user_vocab, self.item_vocab = user_vocab, item_vocab
        self.side = _side_features(data, np.arange(len(data.item_duration_s)))  # per item id
        self.wt_mu, self.wt_sd = wt_mu, wt_sd

    def __call__(self, user_index, items) -> np.ndarray:
        items = np.asarray(items, np.int64)
        users = np.broadcast_to(np.asarray(user_index, np.int64), items.shape)
        side = {k: torch.from_numpy(np.ascontiguousarray(v[items])) for k, v in self.side.items()}
        return _score(self.model, torch.from_numpy(self.user_vocab(users)), torch.from_numpy(self.item_vocab(items)),
                      side, self.wt_mu, self.wt_sd)

    def state(self) -> Tuple[Dict[str, np.ndarray], dict]:
        """Arrays and JSON metadata that rebuild it (from_state)."""
        arrays = {"w." + k: v.numpy() for k, v in self.model.state_dict().items()}
        arrays["user_vocab"], arrays["item_vocab"] = self.user_vocab.table, self.item_vocab.table
        return arrays, {"wt_mu": self.wt_mu, "wt_sd": self.wt_sd, "user_tokens": self.user_vocab.n_tokens,
                        "item_tokens": self.item_vocab.n_tokens}

    @classmethod
    def from_state(cls, arrays: Dict[str, np.ndarray], meta: dict, data: EvalData, cfg: UpstreamConfig):
        uv, iv = Vocab.from_table(arrays["user_vocab"], meta["user_tokens"]), Vocab.from_table(arrays["item_vocab"], meta["item_tokens"])
        model = UpstreamRanker(uv.n_tokens, iv.n_tokens, _side_sizes(data), cfg)
        model.load_state_dict({k[2:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("w.")})
        return cls(model, uv, iv, data, meta["wt_mu"], meta["wt_sd"])


class UpstreamScores:
    def __init__(self, scores: np.ndarray, req_in_sample: np.ndarray, report: dict, path: Optional[Path],
                 scorer: UpstreamScorer):
        self.scores = scores
        self.req_in_sample = req_in_sample
        self.report = report
        self.path = path
        self.names = SCORE_NAMES + tuple(f"p_{h}" for h in scorer.model.extra_heads)
        self.scorer = scorer

    def request_scores(self, data: EvalData, r: int) -> np.ndarray:
        """The (rows, N) contiguous score matrix of request r."""
        return np.ascontiguousarray(self.scores[:, data.candidates(r)])


def _side_features(data: EvalData, items: np.ndarray) -> Dict[str, np.ndarray]:
    return {"duration": duration_bucket(data.item_duration_s)[items],
            "video_type": data.item_video_type[items].astype(np.int64),
            "upload_type": data.item_upload_type[items].astype(np.int64),
            "tag": data.item_tag[items].astype(np.int64),
            "n_tags": np.minimum(data.item_n_tags[items], 4).astype(np.int64)}


def _side_sizes(data: EvalData) -> Dict[str, int]:
    return {"duration": len(DURATION_EDGES_S) + 2,
            "video_type": int(data.item_video_type.max()) + 1,
            "upload_type": int(data.item_upload_type.max()) + 1,
            "tag": int(data.item_tag.max()) + 1,
            "n_tags": 5}


def upstream_cache_path(data: EvalData, cfg: UpstreamConfig) -> Path:
    h = hashlib.sha1(json.dumps({"data": data.meta["config_hash"], "upstream": cfg.key()},
                                sort_keys=True).encode()).hexdigest()[:12]
    return data.path.parent / f"upstream_{h}.npz" if data.path else Path(f"upstream_{h}.npz")


def train_and_score(data: EvalData, cfg: UpstreamConfig, show_progress: bool = True) -> UpstreamScores:
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(cfg.threads, 2)))
    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        return _train_and_score(data, cfg, show_progress)
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def _train_and_score(data: EvalData, cfg: UpstreamConfig, show_progress: bool) -> UpstreamScores:
    torch.manual_seed(cfg.seed)
    cand_split = data.cand_split
    cand_user = data.cand_user.astype(np.int64)
    items = data.cand_item.astype(np.int64)
    train = np.flatnonzero((cand_split == SPLIT_UPSTREAM) & (data.cand_exposed == 1))
    n_users = len(data.user_ids)
    uv = Vocab(cand_user[train], n_users, cfg.min_count)
    iv = Vocab(items[train], len(data.item_duration_s), cfg.min_count)
    model = UpstreamRanker(uv.n_tokens, iv.n_tokens, _side_sizes(data), cfg)

    def tensors(idx):
        side = {k: torch.from_numpy(v) for k, v in _side_features(data, items[idx]).items()}
        return torch.from_numpy(uv(cand_user[idx])), torch.from_numpy(iv(items[idx])), side

    u_tr, i_tr, s_tr = tensors(train)
    y_click = torch.from_numpy(data.cand_click[train].astype(np.float32))
    y_lv = torch.from_numpy(data.cand_long_view[train].astype(np.float32))
    y_extra = [torch.from_numpy(getattr(data, EXTRA_LABELS[h])[train].astype(np.float32)) for h in cfg.extra_heads]
    # the watch-time head regresses the standardised log1p(play seconds); heads start at the base rates
    wt = np.log1p(data.cand_play_time_s[train].astype(np.float64))
    wt_mu, wt_sd = float(wt.mean()), float(wt.std() + 1e-6)
    y_wt = torch.from_numpy(((wt - wt_mu) / wt_sd).astype(np.float32))
    with torch.no_grad():
        model.heads.weight.mul_(0.1)
        for k, y in ((0, y_click), (1, y_lv), *((3 + e, y) for e, y in enumerate(y_extra))):
            p = float(y.mean().clamp(1e-3, 1 - 1e-3))
            model.heads.bias[k] = float(np.log(p / (1 - p)))
        model.heads.bias[2] = 0.0
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    bce = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(train)
    t0 = time.time()
    losses = []
    model.train()
    steps = cfg.epochs * ((n + cfg.batch_size - 1) // cfg.batch_size)
    bar = progress(total=steps, enabled=show_progress, desc="upstream training", unit="step")
    for ep in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        tot, cnt = 0.0, 0
        for s in range(0, n, cfg.batch_size):
            b = perm[s:s + cfg.batch_size]
            out = model(u_tr[b], i_tr[b], {k: v[b] for k, v in s_tr.items()})
            loss = (bce(out[:, 0], y_click[b]) + bce(out[:, 1], y_lv[b])
                    + cfg.watch_loss_weight * torch.mean((out[:, 2] - y_wt[b]) ** 2))
            for e, y in enumerate(y_extra):
                loss = loss + bce(out[:, 3 + e], y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss) * len(b)
            cnt += len(b)
            bar.update(1)
        losses.append(tot / cnt)
        bar.set_postfix(epoch=ep + 1, loss=f"{losses[-1]:.4f}")
    bar.close()
    train_s = time.time() - t0

    t1 = time.time()
    model.eval()
    C = data.n_candidates
    scores = np.empty((3 + len(cfg.extra_heads), C), dtype=np.float32)
    for s in progress(range(0, C, cfg.score_batch), enabled=show_progress, desc="upstream scoring", unit="batch"):
        idx = np.arange(s, min(C, s + cfg.score_batch))
        scores[:, idx] = _score(model, *tensors(idx), wt_mu, wt_sd)
    score_s = time.time() - t1

    report = {"train_rows": int(n), "epochs": cfg.epochs, "epoch_losses": [round(x, 5) for x in losses],
              "train_seconds": round(train_s, 2), "score_seconds": round(score_s, 2),
              "scored_candidates": int(C), "user_vocab": int(uv.n_tokens - 1), "item_vocab": int(iv.n_tokens - 1),
              "eval": {}}
    for split in (SPLIT_UPSTREAM, SPLIT_POEM_TRAIN, SPLIT_VALID, SPLIT_TEST):
        m = (cand_split == split) & (data.cand_exposed == 1)
        if not m.any():
            continue
        name = SPLIT_NAMES[split] + (" (in-sample)" if split == SPLIT_UPSTREAM else "")
        ev = metrics.evaluate(cand_user[m], data.cand_click[m], data.cand_long_view[m],
                              data.cand_play_time_s[m], scores[0, m], scores[1, m], scores[2, m])
        ev["cold_user_share"] = float((uv(cand_user[m]) == 0).mean())
        ev["cold_item_share"] = float((iv(items[m]) == 0).mean())
        report["eval"][name] = ev
    req_in_sample = (data.req_split == SPLIT_UPSTREAM)
    return UpstreamScores(scores, req_in_sample, report, None, UpstreamScorer(model, uv, iv, data, wt_mu, wt_sd))


def build_upstream_scores(data: EvalData, cfg: Optional[UpstreamConfig] = None, *, force: bool = False,
                          show_progress: bool = True, verbose: bool = False) -> UpstreamScores:
    """Scores of every candidate of `data`, from the cache or trained and scored (then cached)."""
    cfg = cfg or UpstreamConfig()
    path = upstream_cache_path(data, cfg)
    if path.exists() and not force:
        arrays, meta = load_npz(path)
        if verbose:
            print(f"[poem_eval] loaded {path}", file=sys.stderr)
        return UpstreamScores(arrays["scores"], arrays["req_in_sample"].astype(bool), meta["report"], path,
                              UpstreamScorer.from_state(arrays, meta["scorer"], data, cfg))
    ups = train_and_score(data, cfg, show_progress)
    scorer_arrays, scorer_meta = ups.scorer.state()
    meta = {"attribution": ATTRIBUTION, "license": LICENSE, "data_config_hash": data.meta["config_hash"],
            "upstream_config": cfg.key(), "score_names": list(cfg.score_names()), "report": ups.report,
            "scorer": scorer_meta}
    save_npz(path, {"scores": ups.scores, "req_in_sample": ups.req_in_sample.astype(np.int8), **scorer_arrays}, meta)
    ups.path = path
    if verbose:
        print(f"[poem_eval] built {path}", file=sys.stderr)
    return ups
