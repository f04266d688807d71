"""POEM's inputs for the KuaiRand evaluation, built with poem's C++ calls (the `poem` module).

Requests are replayed in time order. For each request of user u at time t:
  1. fusion of the upstream scores (3 x N) and the request's levels (Pareto, or fused-score tiers);
  2. the partial-order sequence from u's state, which holds only earlier requests (no look-ahead),
     and the chronological sequence of u's engagements before t;
  3. for training requests, hierarchical samples: tiers of the candidates (strong positives,
     system-favoured, other candidates), graph-mined hard negatives and popularity negatives, and the
     margin pairs between tiers;
  4. then the request's sampled quintuples go into u's state, and its exposures into u's log.
The item graph is built from the engagements of the upstream days only, so no later day leaks in.

The output is a flat set of numpy arrays (rows of every request back to back, `row_offsets`), what
`train.py` batches. Rows: training requests keep their exposed candidates, the top system-favoured
ones and a seeded subset of the rest, then the hard and random negatives (features zero: they were not
candidates); test requests keep their exposed candidates only (metrics are on exposures).
"""
from dataclasses import asdict, dataclass
import hashlib
import json
import sys

import numpy as np

from .data import SPLIT_POEM_TRAIN, SPLIT_TEST, SPLIT_UPSTREAM, EvalData, progress

SCORE_DIRS = ("higher", "higher", "higher")  # p_click, p_long_view, pred_watch_time_s


@dataclass
class PipelineConfig:
    level_method: str = "pareto"    # or "fused_tiers"
    lp: int = 32                    # partial-order sequence length
    lc: int = 32                    # chronological sequence length
    train_unexposed: int = 8        # unexposed candidates kept per training request, besides system-favoured
    system_top_k: int = 3
    hard_negatives: int = 5
    random_negatives: int = 5
    hops: int = 2
    max_pairs: int = 64
    base_margin: float = 0.5
    state_tokens: int = 128
    state_requests: int = 16
    seed: int = 0

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def _poem():
    try:
        import poem  # the pybind11 module, built by CMake (build/native/python)
    except ImportError as e:  # pragma: no cover - a clear message beats a bare ImportError
        raise ImportError("the `poem` module is not built: run `make native` and put build/native/python "
                          "on PYTHONPATH") from e
    return poem


def fusion_spec(poem):
    # Long view counts double: the evaluation's main label. Watch time is unbounded: log1p min-max.
    return poem.FusionSpec([poem.ObjectiveSpec(poem.Direction.higher_is_better, poem.Normalization.rank_pct, 1.0),
                            poem.ObjectiveSpec(poem.Direction.higher_is_better, poem.Normalization.rank_pct, 2.0),
                            poem.ObjectiveSpec(poem.Direction.higher_is_better, poem.Normalization.log1p_min_max, 1.0)],
                           poem.FusionMethod.weighted_rank)


def level_spec(poem, cfg: PipelineConfig):
    method = {"pareto": poem.LevelMethod.pareto, "fused_tiers": poem.LevelMethod.fused_tiers}[cfg.level_method]
    return poem.LevelSpec(method=method, directions=[poem.Direction.higher_is_better] * 3, tiers=4)


def build_graph(poem, data: EvalData):
    """Item graph from the engagements (click, long view, like or follow) of the upstream days."""
    up_days = np.asarray(data.meta["config"]["upstream_days"]) if "config" in data.meta else None
    sel = np.isin(data.log_date, up_days) if up_days is not None else (data.log_request >= 0)
    engaged = (data.log_click + data.log_long_view + data.log_like + data.log_follow) > 0
    sel &= engaged
    n_items = int(max(data.cand_item.max(), data.log_item.max())) + 1
    # Users engage a few times a day: a one-hour window links almost nothing, two days link sessions.
    cfg = poem.GraphConfig(window_items=5, window_seconds=2 * 86400, top_m=32)
    return poem.ItemGraph.build(data.log_user[sel].astype(np.uint64), data.log_item[sel].astype(np.uint32),
                                data.log_time_s[sel].astype(np.int64), n_items, cfg)


N_CAND_OBJECTIVES = 6  # the model's per-candidate "objective" features: 3 normalised + 3 raw scores


def candidate_features(scores: np.ndarray, fused: dict, levels: np.ndarray) -> np.ndarray:
    """N x (3 + 6) candidate features: fused score, fused rank percentile, level, the three objectives
    normalised within the request, then the raw scores (p_click, p_long_view, log1p(watch s)).

    The normalised ones say how a candidate compares with the rest of its request; the raw ones keep
    what normalising drops, how good it is in absolute terms, which is what a label across requests
    (AUC) depends on. The C++ replay (examples/replay_requests.cpp) builds the same matrix."""
    n = scores.shape[1]
    with np.errstate(invalid="ignore"):
        raw = np.stack([scores[0], scores[1], np.log1p(np.maximum(scores[2], 0.0))])
    raw[~np.isfinite(raw)] = 0.0  # as the C++ ranker: a non-finite score enters as 0
    return np.concatenate([fused["fused"][:, None], (1.0 - (fused["fused_rank"] + 0.5) / n)[:, None],
                           levels[:, None].astype(np.float32), fused["normalized"].T, raw.T], axis=1).astype(np.float32)


class Replayer:
    """What serving holds per user, replayed in time order: the Python twin of poem::request_ranker.

    request() reads a user's state and log and returns one request's fusion, levels, candidate
    features and sequences; record() then adds the request's sampled quintuples to the state and its
    exposures to the log. Calling them in that order, request by request, is what keeps look-ahead out."""

    def __init__(self, cfg: PipelineConfig):
        self.poem = _poem()
        self.cfg = cfg
        self.fspec, self.lspec = fusion_spec(self.poem), level_spec(self.poem, cfg)
        self.ws = self.poem.Workspace()
        self.rule = self.poem.EngagementRule()
        self.states, self.logs = {}, {}

    def request(self, u: int, t: int, items: np.ndarray, scores: np.ndarray, sequences: bool = True) -> dict:
        poem, cfg = self.poem, self.cfg
        items = np.ascontiguousarray(items, np.uint64)
        scores = np.ascontiguousarray(scores, np.float32)
        fused = poem.fuse(scores, self.fspec, self.ws)
        levels = poem.assign_levels(scores, fused["fused"], self.lspec, self.ws)
        out = dict(items=items, t=t, fused=fused, levels=levels)
        if sequences:
            state, log = self.states.get(u), self.logs.get(u)
            out["feats"] = candidate_features(scores, fused, levels)
            out["po"] = state.sequence(t, cfg.lp) if state is not None else None
            out["ch"] = log.sequence(t, cfg.lc, self.rule) if log is not None else None
        return out

    def record(self, u: int, req: dict, seed: int, exposed=None):
        """`exposed`: dict of the request's exposures (item, time, play, duration, click, like, follow)."""
        poem, cfg = self.poem, self.cfg
        state = self.states.get(u)
        if state is None:
            state = self.states[u] = poem.PartialOrderState(cfg.state_tokens, cfg.state_requests)
        tokens = poem.quintuples(req["items"], req["t"], req["fused"], req["levels"])
        state.record(poem.sample_levels(tokens, self.lspec, seed))
        if exposed is not None and len(exposed["item"]):
            log = self.logs.get(u)
            if log is None:
                log = self.logs[u] = poem.EngagementLog()
            log.extend(exposed["item"].astype(np.uint64), exposed["time"].astype(np.int64),
                       exposed["play"].astype(np.float32), exposed["duration"].astype(np.float32),
                       exposed["click"].astype(bool), exposed["like"].astype(bool), exposed["follow"].astype(bool))

    def po_arrays(self, po):
        L = self.cfg.lp
        if po is None:
            return np.zeros(L, np.uint64), np.zeros((L, 4), np.float32), np.zeros(L, np.uint8)
        return po["item_id"], np.stack([po["fused_score"], po["rank_pct"], po["level"].astype(np.float32),
                                        po["age_seconds"]], axis=1).astype(np.float32), po["mask"]

    def chrono_arrays(self, ch):
        L = self.cfg.lc
        if ch is None:
            return np.zeros(L, np.uint64), np.zeros((L, 2), np.float32), np.zeros(L, np.uint8)
        return ch["item_id"], np.stack([ch["age_seconds"], ch["play_ratio"]], axis=1).astype(np.float32), ch["mask"]


def exposures(data: EvalData, r: int, idx: np.ndarray) -> dict:
    """The engagement events of request r's exposed candidates `idx`."""
    return dict(item=data.cand_item[idx], time=data.req_time_s[r] + data.cand_time_offset_s[idx],
                play=data.cand_play_time_s[idx], duration=data.cand_duration_s[idx], click=data.cand_click[idx],
                like=data.cand_like[idx], follow=data.cand_follow[idx])


def build_inputs(data: EvalData, scores: np.ndarray, cfg: PipelineConfig, show_progress: bool = True) -> dict:
    """Replays every request; returns the arrays of the training and test requests."""
    rp = Replayer(cfg)
    poem = rp.poem
    rng = np.random.default_rng(cfg.seed)
    graph = build_graph(poem, data)
    popularity = poem.popularity_alias(np.maximum(data.item_pop_counts.astype(np.float64), 0.0), 0.75)
    hcfg = poem.HierarchyConfig(system_top_k=cfg.system_top_k, hard_negatives=cfg.hard_negatives, hops=cfg.hops,
                                random_negatives=cfg.random_negatives, base_margin=cfg.base_margin,
                                max_pairs=cfg.max_pairs)
    history = {}

    out = {k: [] for k in ("req", "row_item", "row_cand", "row_feats", "row_tier", "po_ids", "po_feats", "po_mask",
                           "ch_ids", "ch_feats", "ch_mask", "pair_i", "pair_j", "pair_margin")}
    row_offsets, pair_offsets = [0], [0]
    counts = {"requests": 0, "hard_negatives": 0, "random_negatives": 0, "pairs": 0, "po_tokens": 0}

    order = np.arange(data.n_requests)  # already in global time order
    for r in progress(order, enabled=show_progress, desc=f"poem inputs ({cfg.level_method})", mininterval=1.0):
        split = int(data.req_split[r])
        if split not in (SPLIT_UPSTREAM, SPLIT_POEM_TRAIN, SPLIT_TEST):
            continue
        u = int(data.req_user[r])
        t = int(data.req_time_s[r])
        sl = data.candidates(r)
        items = data.cand_item[sl].astype(np.uint64)
        req = rp.request(u, t, items, scores[:, sl], sequences=split != SPLIT_UPSTREAM)
        fused = req["fused"]
        if split != SPLIT_UPSTREAM:
            exposed = data.cand_exposed[sl].astype(bool)
            feats = req["feats"]
            if split == SPLIT_TEST:
                keep = np.flatnonzero(exposed)
                rows_items, rows_cand, rows_feats = items[keep], sl.start + keep, feats[keep]
                rows_tier = np.full(len(keep), -1, np.int8)
                pi = pj = np.zeros(0, np.int32)
                pm = np.zeros(0, np.float32)
            else:
                fav = fused["fused_rank"] < cfg.system_top_k
                rest = np.flatnonzero(~exposed & ~fav)
                extra = rng.choice(rest, size=min(cfg.train_unexposed, len(rest)), replace=False) if len(rest) else rest
                keep = np.sort(np.concatenate([np.flatnonzero(exposed | fav), extra]))
                c = sl.start + keep
                hs = poem.hierarchical_samples(
                    items[keep].astype(np.uint32), fused["fused_rank"][keep].astype(np.uint32),
                    data.cand_long_view[c].astype(bool), data.cand_like[c].astype(bool),
                    data.cand_follow[c].astype(bool), data.cand_click[c].astype(bool),
                    data.cand_play_time_s[c].astype(np.float32),
                    np.fromiter(history.get(u, ()), np.uint32), graph, popularity, hcfg, cfg.seed * 1_000_003 + r)
                n_extra = len(hs["items"]) - len(keep)
                rows_items = hs["items"].astype(np.uint64)
                rows_cand = np.concatenate([c, np.full(n_extra, -1, np.int64)])
                rows_feats = np.concatenate([feats[keep], np.zeros((n_extra, feats.shape[1]), np.float32)])
                rows_feats[len(keep):, 2] = 7.0  # not candidates: the last level
                rows_tier = hs["tiers"].astype(np.int8)
                pi, pj, pm = hs["pair_i"], hs["pair_j"], hs["pair_margin"]
                counts["hard_negatives"] += int(hs["tier_sizes"][3])
                counts["random_negatives"] += int(hs["tier_sizes"][4])
            po_ids, po_feats, po_mask = rp.po_arrays(req["po"])
            ch_ids, ch_feats, ch_mask = rp.chrono_arrays(req["ch"])
            counts["requests"] += 1
            counts["pairs"] += len(pi)
            counts["po_tokens"] += int(po_mask.sum())
            for k, v in (("req", r), ("row_item", rows_items), ("row_cand", rows_cand), ("row_feats", rows_feats),
                         ("row_tier", rows_tier), ("pair_i", pi), ("pair_j", pj), ("pair_margin", pm),
                         ("po_ids", po_ids), ("po_feats", po_feats), ("po_mask", po_mask),
                         ("ch_ids", ch_ids), ("ch_feats", ch_feats), ("ch_mask", ch_mask)):
                out[k].append(v)
            row_offsets.append(row_offsets[-1] + len(rows_items))
            pair_offsets.append(pair_offsets[-1] + len(pi))

        # After the request: its sampled tokens go into the state, its exposures into the user's log.
        exp_idx = sl.start + np.flatnonzero(data.cand_exposed[sl])
        rp.record(u, req, cfg.seed * 7_919 + r, exposures(data, r, exp_idx))
        if len(exp_idx):
            engaged = (data.cand_click[exp_idx] + data.cand_long_view[exp_idx] + data.cand_like[exp_idx]
                       + data.cand_follow[exp_idx]) > 0
            history.setdefault(u, set()).update(int(i) for i in data.cand_item[exp_idx[engaged]])

    res = {
        "req": np.asarray(out["req"], np.int64),
        "row_offsets": np.asarray(row_offsets, np.int64),
        "pair_offsets": np.asarray(pair_offsets, np.int64),
        "row_item": np.concatenate(out["row_item"]),
        "row_cand": np.concatenate(out["row_cand"]),
        "row_feats": np.concatenate(out["row_feats"]),
        "row_tier": np.concatenate(out["row_tier"]),
        "pair_i": np.concatenate(out["pair_i"]).astype(np.int32),
        "pair_j": np.concatenate(out["pair_j"]).astype(np.int32),
        "pair_margin": np.concatenate(out["pair_margin"]).astype(np.float32),
        "po_ids": np.stack(out["po_ids"]), "po_feats": np.stack(out["po_feats"]).astype(np.float32),
        "po_mask": np.stack(out["po_mask"]),
        "ch_ids": np.stack(out["ch_ids"]), "ch_feats": np.stack(out["ch_feats"]).astype(np.float32),
        "ch_mask": np.stack(out["ch_mask"]),
    }
    res["is_train"] = data.req_split[res["req"]] == SPLIT_POEM_TRAIN
    res["counts"] = counts
    res["graph_edges"] = graph.num_edges
    return res
