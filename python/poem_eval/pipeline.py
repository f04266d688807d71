"""POEM's inputs for the KuaiRand evaluation, built with poem's C++ calls (the `poem` module).

Requests are replayed in time order through poem.RequestRanker, the C++ orchestration that serves
(there is no second implementation here). For each request of user u at time t:
  1. fusion of the upstream scores (3 x N), the request's levels (Pareto, or fused-score tiers) and the
     model's candidate features;
  2. the partial-order sequence from u's state, which holds only earlier requests (no look-ahead),
     and the chronological sequence of u's engagements before t;
  3. for training requests, hierarchical samples: tiers of the candidates (strong positives,
     system-favoured, other candidates), graph-mined hard negatives and popularity negatives, and the
     margin pairs between tiers;
  4. then the request's selected quintuples go into u's state (RequestRanker.record) and its exposures
     into u's log (RequestRanker.log).
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


def fusion_config(poem):
    # Long view counts double: the evaluation's main label. Watch time is unbounded: log1p min-max.
    return poem.FusionConfig([poem.ObjectiveConfig(poem.Direction.higher_is_better, poem.Normalization.rank_pct, 1.0),
                            poem.ObjectiveConfig(poem.Direction.higher_is_better, poem.Normalization.rank_pct, 2.0),
                            poem.ObjectiveConfig(poem.Direction.higher_is_better, poem.Normalization.log1p_min_max, 1.0)],
                           poem.FusionMethod.weighted_rank)


def level_config(poem, cfg: PipelineConfig):
    method = {"pareto": poem.LevelMethod.pareto, "fused_tiers": poem.LevelMethod.fused_tiers}[cfg.level_method]
    return poem.LevelConfig(method=method, directions=[poem.Direction.higher_is_better] * 3, tiers=4)


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


RAW_FEATURES = ("identity", "identity", "log1p")  # the raw rows beside the normalised ones (watch time: log1p)
N_CAND_OBJECTIVES = 6  # the model's per-candidate "objective" rows: 3 normalised + 3 raw scores


def ranker_config(poem, cfg: PipelineConfig):
    """The serving configuration of the evaluation's models: what poem.RequestRanker builds from a request
    (fusion, levels, raw rows, sequence lengths, state bounds, engagement rule, seed). The exported model
    carries it (metadata "poem_serving"), so the C++ demo serves with exactly it."""
    return poem.RankerConfig(fusion_config(poem), level_config(poem, cfg),
                             raw_features=[getattr(poem.RawTransform, r) for r in RAW_FEATURES],
                             po_length=cfg.lp, chrono_length=cfg.lc, state_tokens=cfg.state_tokens,
                             state_requests=cfg.state_requests, engagement=poem.EngagementConfig(), seed=cfg.seed)


class Replayer:
    """Requests replayed in time order through poem.RequestRanker, the C++ code that serves.

    rank() reads a user's history (never the request itself) and returns the bound RankedRequest: fusion,
    levels, the model's candidate features and both sequences; record() then adds the request's selected
    quintuples to the user's state and its exposures to the user's log. Calling them in that order,
    request by request, keeps look-ahead out. With `model` (a poem.Model) the ranker also scores, with the
    model file's own serving config unless `config` is given."""

    def __init__(self, cfg: PipelineConfig = None, model=None, config=None):
        self.poem = _poem()
        self.cfg = cfg or PipelineConfig()
        if model is not None:
            self.ranker = self.poem.RequestRanker(model, config) if config is not None else self.poem.RequestRanker(model)
        else:
            self.ranker = self.poem.RequestRanker(config if config is not None else ranker_config(self.poem, self.cfg))
        self.config = self.ranker.config
        self.ws = self.poem.Workspace()
        self.users = {}

    def history(self, u: int):
        h = self.users.get(u)
        if h is None:
            h = self.users[u] = self.ranker.new_user(u)
        return h

    def rank(self, u: int, t: int, items: np.ndarray, scores: np.ndarray):
        return self.ranker.rank(self.history(u), t, np.ascontiguousarray(items, np.uint64),
                                np.ascontiguousarray(scores, np.float32), self.ws)

    def record(self, u: int, ranked, exposed: dict = None):
        """`exposed`: the request's exposures (item, time, play, duration, click, like, follow)."""
        h = self.history(u)
        self.ranker.record(h, ranked, self.ws)
        if exposed is not None and len(exposed["item"]):
            self.ranker.log(h, exposed["item"].astype(np.uint64), exposed["time"].astype(np.int64),
                            exposed["play"].astype(np.float32), exposed["duration"].astype(np.float32),
                            exposed["click"].astype(bool), exposed["like"].astype(bool), exposed["follow"].astype(bool))

    @staticmethod
    def po_arrays(ranked):
        """The partial-order sequence as the model's inputs: ids, L x 4 (fused, rank_pct, level, age), mask."""
        po = ranked.po
        feats = np.stack([po["fused_score"], po["rank_pct"], po["level"].astype(np.float32), po["age_seconds"]], axis=1)
        return np.array(po["item_id"]), feats.astype(np.float32), np.array(po["mask"])

    @staticmethod
    def chrono_arrays(ranked):
        """The chronological sequence as the model's inputs: ids, L x 2 (age, play ratio), mask."""
        ch = ranked.chrono
        feats = np.stack([ch["age_seconds"], ch["play_ratio"]], axis=1)
        return np.array(ch["item_id"]), feats.astype(np.float32), np.array(ch["mask"])


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
    # Strong positives are long views, likes and follows under the same engagement rule as the
    # chronological sequence: one definition of a long view for training and serving.
    hcfg = poem.HierarchyConfig(system_top_k=cfg.system_top_k, engagement=poem.EngagementConfig(),
                                hard_negatives=cfg.hard_negatives, hops=cfg.hops,
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
        req = rp.rank(u, t, items, scores[:, sl])
        fused_rank = np.array(req.fused_rank)
        if split != SPLIT_UPSTREAM:
            exposed = data.cand_exposed[sl].astype(bool)
            feats = req.candidate_features()
            if split == SPLIT_TEST:
                keep = np.flatnonzero(exposed)
                rows_items, rows_cand, rows_feats = items[keep], sl.start + keep, feats[keep]
                rows_tier = np.full(len(keep), -1, np.int8)
                pi = pj = np.zeros(0, np.int32)
                pm = np.zeros(0, np.float32)
            else:
                fav = fused_rank < cfg.system_top_k
                rest = np.flatnonzero(~exposed & ~fav)
                extra = rng.choice(rest, size=min(cfg.train_unexposed, len(rest)), replace=False) if len(rest) else rest
                keep = np.sort(np.concatenate([np.flatnonzero(exposed | fav), extra]))
                c = sl.start + keep
                hs = poem.hierarchical_samples(
                    items[keep], fused_rank[keep].astype(np.uint32), data.cand_play_time_s[c].astype(np.float32),
                    data.cand_duration_s[c].astype(np.float32), data.cand_click[c].astype(bool),
                    data.cand_like[c].astype(bool), data.cand_follow[c].astype(bool),
                    np.fromiter(history.get(u, ()), np.uint64), graph, popularity, hcfg, cfg.seed * 1_000_003 + r)
                n_extra = len(hs["items"]) - len(keep)
                rows_items = hs["items"].astype(np.uint64)
                rows_cand = np.concatenate([c, np.full(n_extra, -1, np.int64)])
                rows_feats = np.concatenate([feats[keep], np.zeros((n_extra, feats.shape[1]), np.float32)])
                rows_feats[len(keep):, 2] = 7.0  # not candidates: the last level
                rows_tier = hs["tiers"].astype(np.int8)
                pi, pj, pm = hs["pair_i"], hs["pair_j"], hs["pair_margin"]
                counts["hard_negatives"] += int(hs["tier_sizes"][3])
                counts["random_negatives"] += int(hs["tier_sizes"][4])
            po_ids, po_feats, po_mask = rp.po_arrays(req)
            ch_ids, ch_feats, ch_mask = rp.chrono_arrays(req)
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
        rp.record(u, req, exposures(data, r, exp_idx))
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
    res["serving_config"] = rp.config.to_json()
    return res
