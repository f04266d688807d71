"""The replay: logged requests -> POEM's training and test inputs, with poem's C++ calls (`poem` module).

replay() reads any log in schema.py's columnar form (KuaiRand is one adapter: adapters.py) and replays
its requests in order through poem.RequestRanker, the C++ orchestration that serves (there is no second
implementation here). For each request of user u at time t:
  1. fusion of the K upstream scores, the request's levels (Pareto, or fused-score tiers) and the
     model's candidate features;
  2. the partial-order sequence from u's state, which holds only earlier requests (no look-ahead),
     and the chronological sequence of u's engagements before t;
  3. for training requests, hierarchical samples: tiers of the candidates (strong positives,
     system-favoured, other candidates), graph-mined hard negatives and popularity negatives, and the
     margin pairs between tiers;
  4. then the request's selected quintuples go into u's state (RequestRanker.record) and its engagements
     into u's log (RequestRanker.log).
The item graph is built from the engagements of the warm-up requests only, so no later request leaks in.
A request's output depends on its own user's earlier requests, the shared graph and popularity, and
seeds derived from (seed, user, time, ordinal) alone: the Dask replay (distributed.py) partitions the
requests by user and gets the same bytes.

The output (schema.OUTPUT) is a flat set of numpy arrays (rows of every request back to back,
`row_offsets`), what `train.py` batches. Rows: training requests keep their exposed candidates, the top
system-favoured ones and a seeded subset of the rest, then the hard and random negatives; test and
validation requests keep their exposed candidates only (metrics are on exposures).

The mined negatives join their request as candidates: the input's `score_items` gives their upstream
scores and side features (as the service would have had them), and the request is ranked again with
them among its candidates, so their features (fused score, rank, level, normalised and raw scores,
side features) come from the same code as every other candidate's and nothing marks them out. The
first ranking (without them) is the one served: it decides the system-favoured tier and joins the
user's state. Without `score_items`, a negative's scores are unknown (NaN): ranked last, seen as 0.
"""
from dataclasses import asdict, dataclass
import hashlib
import json
from pathlib import Path

import numpy as np

from .adapters import from_eval_data
from .data import EvalData, load_npz, progress, save_npz
from .schema import EVALUATED, OUTPUT, PER_PAIR, PER_ROW, SPLIT_SKIP, SPLIT_TRAIN, SPLIT_WARMUP, ReplayInput

SCORE_DIRS = ("higher", "higher", "higher")  # p_click, p_long_view, pred_watch_time_s

# A request's exposures as Replayer.record takes them: the columns of RequestRanker.log, in its order,
# with the dtypes it takes.
LOG_COLUMNS = (("item", np.uint64), ("time", np.int64), ("play", np.float32), ("duration", np.float32),
               ("click", bool), ("like", bool), ("follow", bool))


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
    side_features: tuple = ()       # transforms of the input's cand_side rows (item_stats.TRANSFORMS)
    seed: int = 0

    def key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def _poem():
    try:
        import poem  # the pybind11 module, built by CMake (build/dispatch/python)
    except ImportError as e:  # pragma: no cover - a clear message beats a bare ImportError
        raise ImportError("the `poem` module is not built: run `make dispatch` and put build/dispatch/python "
                          "on PYTHONPATH") from e
    return poem


def fusion_config(poem):
    # Long view counts double: the evaluation's main label. Watch time is unbounded: log1p min-max.
    return poem.FusionConfig([poem.ObjectiveConfig(poem.Direction.higher_is_better, poem.Normalization.rank_pct, 1.0),
                            poem.ObjectiveConfig(poem.Direction.higher_is_better, poem.Normalization.rank_pct, 2.0),
                            poem.ObjectiveConfig(poem.Direction.higher_is_better, poem.Normalization.log1p_min_max, 1.0)],
                           poem.FusionMethod.weighted_rank)


def level_config(poem, cfg: PipelineConfig, k: int = 3):
    method = {"pareto": poem.LevelMethod.pareto, "fused_tiers": poem.LevelMethod.fused_tiers}[cfg.level_method]
    return poem.LevelConfig(method=method, directions=[poem.Direction.higher_is_better] * k, tiers=4)


RAW_FEATURES = ("identity", "identity", "log1p")  # the raw rows beside the normalised ones (watch time: log1p)


def ranker_config(poem, cfg: PipelineConfig, fusion=None, raw_features=RAW_FEATURES):
    """The serving configuration of the evaluation's models: what poem.RequestRanker builds from a request
    (fusion, levels, raw rows, sequence lengths, state bounds, engagement rule, seed). The exported model
    carries it (metadata "poem_serving"), so the C++ demo serves with exactly it. `fusion` (a
    poem.FusionConfig) and `raw_features` (one transform per objective) replace the three upstream
    scores' for other objectives (fusion_eval.py)."""
    fusion = fusion if fusion is not None else fusion_config(poem)
    return poem.RankerConfig(fusion, level_config(poem, cfg, len(fusion.objectives)),
                             raw_features=[getattr(poem.RawTransform, r) for r in raw_features],
                             po_length=cfg.lp, chrono_length=cfg.lc, state_tokens=cfg.state_tokens,
                             state_requests=cfg.state_requests, engagement=poem.EngagementConfig(), seed=cfg.seed,
                             side_features=[getattr(poem.RawTransform, r) for r in cfg.side_features])


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
        """`exposed`: the request's exposures (LOG_COLUMNS; a column already of its dtype is not copied)."""
        h = self.history(u)
        self.ranker.record(h, ranked, self.ws)
        if exposed is not None and len(exposed["item"]):
            self.ranker.log(h, *(exposed[k].astype(t, copy=False) for k, t in LOG_COLUMNS))

    @staticmethod
    def po_into(ranked, ids: np.ndarray, feats: np.ndarray, mask: np.ndarray) -> None:
        """The partial-order sequence as the model's inputs, written into rows the caller owns: ids (Lp),
        feats (Lp x 4: fused, rank_pct, level, age), mask (Lp)."""
        po = ranked.po
        ids[:] = po["item_id"]
        for j, k in enumerate(("fused_score", "rank_pct", "level", "age_seconds")):
            feats[:, j] = po[k]
        mask[:] = po["mask"]

    @staticmethod
    def chrono_into(ranked, ids: np.ndarray, feats: np.ndarray, mask: np.ndarray) -> None:
        """The chronological sequence as the model's inputs: ids (Lc), feats (Lc x 2: age, play ratio), mask."""
        ch = ranked.chrono
        ids[:] = ch["item_id"]
        feats[:, 0] = ch["age_seconds"]
        feats[:, 1] = ch["play_ratio"]
        mask[:] = ch["mask"]

    @classmethod
    def po_arrays(cls, ranked):
        """po_into's rows as new arrays: ids, L x 4 features, mask."""
        return _new_rows(cls.po_into, ranked, len(ranked.po["item_id"]), 4)

    @classmethod
    def chrono_arrays(cls, ranked):
        """chrono_into's rows as new arrays: ids, L x 2 features, mask."""
        return _new_rows(cls.chrono_into, ranked, len(ranked.chrono["item_id"]), 2)


def _new_rows(fill, ranked, n: int, width: int):
    """What `fill` (Replayer.po_into or chrono_into) writes for `ranked`, into new arrays: ids (n),
    features (n x width), mask (n)."""
    out = np.zeros(n, np.uint64), np.zeros((n, width), np.float32), np.zeros(n, np.uint8)
    fill(ranked, *out)
    return out


# The training sample's draws (the unexposed subset, the mined negatives) come from their own stream:
# request_seed(seed ^ SAMPLE_STREAM, user, time, ordinal), beside the ranker's level selection, which
# draws from request_seed(seed, ...). Both depend on the request alone, never on which requests were
# replayed before it, so a partitioned replay draws exactly what a single process draws.
SAMPLE_STREAM = 0x5A4D504C45  # "SAMPLE"-ish tag: any constant that differs from 0


def replay_globals(inp: ReplayInput) -> dict:
    """What every request of the replay reads besides its own user's history, built once from the whole
    input: the item graph (engaged rows of the warm-up requests, so no trained or tested request leaks
    in) as bytes, and the popularity weights of the random negatives. Bytes and arrays travel to Dask
    workers as they are."""
    poem = _poem()
    eg = inp.engagements
    warm = (inp.requests["split"][inp.derived["eng_request"]] == SPLIT_WARMUP) & eg["engaged"]
    # Users engage a few times a day: a one-hour window links almost nothing, two days link sessions.
    gcfg = poem.GraphConfig(window_items=5, window_seconds=2 * 86400, top_m=32)
    order = np.lexsort((eg["time"][warm], eg["user"][warm]))  # per user, in time order
    graph = poem.ItemGraph.build(eg["user"][warm][order], eg["item"][warm][order].astype(np.uint64),
                                 eg["time"][warm][order], inp.n_items, gcfg)
    pop = inp.popularity
    if pop is None:
        rq = inp.requests
        cand_split = np.repeat(rq["split"], np.diff(rq["cand_offsets"]))
        exposed_warm = rq["cand_exposed"] & (cand_split == SPLIT_WARMUP)
        pop = np.bincount(rq["cand_item"][exposed_warm], minlength=inp.n_items).astype(np.float64)
    return {"graph": graph.to_bytes(), "popularity": pop}


# Users whose requests replay() interleaves: each holds at most one request suspended while its mined
# negatives wait for score_items, which then scores the negatives of all of them in one call (a call per
# request cost about 1 ms of PyTorch and numpy overhead for a handful of items: half of a replay).
# Enough users to amortise that, few enough to bound the suspended requests' memory.
USERS_IN_FLIGHT = 1024

def replay(inp: ReplayInput, cfg: PipelineConfig = None, config_json: str = None, shared: dict = None,
           show_progress: bool = False, config=None) -> dict:
    """Replays the requests of `inp` in order through poem.RequestRanker; returns schema.OUTPUT's arrays
    and "counts". The poem.RankerConfig: `config`, or `config_json`'s (which cannot hold a learned
    fusion's weights), or ranker_config(cfg); `shared`: what replay_globals(whole input) returned, when
    `inp` is one partition of it.

    Each user's requests run in time order; different users' requests interleave (a request reads only
    its own user's history), so that the mined negatives of many requests are scored in one score_items
    call. The output is in input order whatever the interleaving."""
    cfg = cfg or PipelineConfig()
    poem = _poem()
    if config is None and config_json:
        config = poem.RankerConfig.from_json(config_json)
    rp = Replayer(cfg, config=config)
    shared = shared if shared is not None else replay_globals(inp)
    graph = poem.ItemGraph.from_bytes(shared["graph"])
    popularity = poem.popularity_alias(np.maximum(shared["popularity"], 0.0), 0.75)
    # Strong positives are long views, likes and follows under the same engagement rule as the
    # chronological sequence: one definition of a long view for training and serving.
    hcfg = poem.HierarchyConfig(system_top_k=cfg.system_top_k, engagement=poem.EngagementConfig(),
                                hard_negatives=cfg.hard_negatives, hops=cfg.hops,
                                random_negatives=cfg.random_negatives, base_margin=cfg.base_margin,
                                max_pairs=cfg.max_pairs)
    rq, eg, d = inp.requests, inp.engagements, inp.derived
    n_side = len(rp.config.side_features)
    side = rq.get("cand_side")
    if (0 if side is None else len(side)) != n_side:
        raise ValueError(f"requests.cand_side: {0 if side is None else len(side)} rows, but the ranker config has "
                         f"{n_side} side features")
    request_scores = rq["cand_scores"] if side is None else np.concatenate([rq["cand_scores"], side])
    counts = {"requests": 0, "hard_negatives": 0, "random_negatives": 0, "pairs": 0, "po_tokens": 0}
    # The loop below runs once per request in Python, so what it reads is prepared once: per-request
    # scalars as Python ints, the candidates' ids as uint64, and the engagements gathered in request order
    # with LOG_COLUMNS' dtypes (a request then slices views; a gather and seven conversions per request
    # were a fifth of a replay).
    split_of, user_of, time_of = rq["split"].tolist(), rq["user"].tolist(), rq["time"].tolist()
    off, eoff = rq["cand_offsets"].tolist(), d["eng_offsets"].tolist()
    cand_item = rq["cand_item"].astype(np.uint64)
    e_order = d["eng_order"]
    events = {k: eg[src][e_order].astype(t) for (k, t), src in
              zip(LOG_COLUMNS, ("item", "time", "play_time", "duration", "click", "like", "follow"))}
    event_engaged = eg["engaged"][e_order]
    # The output requests (trained and evaluated), in input order; the per-request arrays are filled in
    # place, rows and pairs are kept per request and joined in that order at the end.
    out_req = np.flatnonzero((rq["split"] != SPLIT_SKIP) & (rq["split"] != SPLIT_WARMUP))
    slot = np.full(inp.n_requests, -1, np.int64)
    slot[out_req] = np.arange(len(out_req))
    slot = slot.tolist()
    lp, lc = rp.config.po_length, rp.config.chrono_length
    m = len(out_req)
    res = {"po_ids": np.zeros((m, lp), np.uint64), "po_feats": np.zeros((m, lp, 4), np.float32),
           "po_mask": np.zeros((m, lp), np.uint8), "ch_ids": np.zeros((m, lc), np.uint64),
           "ch_feats": np.zeros((m, lc, 2), np.float32), "ch_mask": np.zeros((m, lc), np.uint8)}
    rows = [None] * m  # per output request: its PER_ROW then PER_PAIR arrays (schema.py)
    no_pairs = (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32))
    bar = progress(total=inp.n_requests, enabled=show_progress, desc=f"replay ({cfg.level_method})",
                   mininterval=1.0)

    def user_requests(rs):
        """One user's requests `rs`, in order. Where mined negatives need scores, yields (user, time,
        items) and is sent their (K + S) x n scores."""
        engaged_items = set()  # the user's items engaged so far: not a hard negative for them
        for r in rs:
            bar.update()
            split = split_of[r]
            if split == SPLIT_SKIP:
                continue
            u, t = user_of[r], time_of[r]
            a, b = off[r], off[r + 1]
            items = cand_item[a:b]
            ordinal = rp.history(u).request_count
            scores = request_scores[:, a:b]
            req = rp.rank(u, t, items, scores)
            if split != SPLIT_WARMUP:
                fused_rank = req.fused_rank  # a view: valid while req lives
                exposed = rq["cand_exposed"][a:b]
                feats = req.candidate_features()
                if split in EVALUATED:
                    keep = np.flatnonzero(exposed)
                    row = (items[keep], keep, feats[keep], np.full(len(keep), -1, np.int8)) + no_pairs
                else:
                    sample_seed = poem.request_seed(cfg.seed ^ SAMPLE_STREAM, u, t, ordinal)
                    fav = fused_rank < cfg.system_top_k
                    rest = np.flatnonzero(~exposed & ~fav)
                    extra = np.random.default_rng([sample_seed, 1]).choice(
                        rest, size=min(cfg.train_unexposed, len(rest)), replace=False) if len(rest) else rest
                    keep = np.sort(np.concatenate([np.flatnonzero(exposed | fav), extra]))
                    c = a + keep
                    hs = poem.hierarchical_samples(
                        items[keep], fused_rank[keep].astype(np.uint32), d["cand_play_time"][c], d["cand_duration"][c],
                        d["cand_click"][c], d["cand_like"][c], d["cand_follow"][c],
                        np.fromiter(engaged_items, np.uint64, len(engaged_items)), graph, popularity, hcfg,
                        sample_seed)
                    n_extra = len(hs["items"]) - len(keep)
                    rows_items = hs["items"].astype(np.uint64)
                    rows_pos = np.concatenate([keep, np.full(n_extra, -1, np.int64)])
                    if n_extra:  # the negatives join the request as candidates; every row's features from that ranking
                        negatives = rows_items[len(keep):]
                        neg_scores = ((yield u, t, negatives) if inp.score_items is not None
                                      else np.full((len(scores), n_extra), np.nan, np.float32))
                        joined = rp.rank(u, t, np.concatenate([items, negatives]),
                                         np.concatenate([scores, neg_scores], axis=1))
                        jf = joined.candidate_features()
                        rows_feats = np.concatenate([jf[keep], jf[len(items):]])
                    else:
                        rows_feats = feats[keep]
                    row = (rows_items, rows_pos, rows_feats, hs["tiers"].astype(np.int8),
                           hs["pair_i"], hs["pair_j"], hs["pair_margin"])
                    counts["hard_negatives"] += int(hs["tier_sizes"][3])
                    counts["random_negatives"] += int(hs["tier_sizes"][4])
                i = slot[r]
                rows[i] = row
                rp.po_into(req, res["po_ids"][i], res["po_feats"][i], res["po_mask"][i])
                rp.chrono_into(req, res["ch_ids"][i], res["ch_feats"][i], res["ch_mask"][i])
                counts["pairs"] += len(row[4])

            # After the request: its sampled tokens go into the state, its engagements into the user's log.
            ea, eb = eoff[r], eoff[r + 1]
            rp.record(u, req, {k: v[ea:eb] for k, v in events.items()})
            if ea < eb:
                engaged_items.update(events["item"][ea:eb][event_engaged[ea:eb]].tolist())

    by_user = np.argsort(rq["user"], kind="stable")  # each user's requests in input (time) order
    bounds = np.flatnonzero(np.diff(rq["user"][by_user])) + 1
    _score_in_batches((user_requests(rs) for rs in np.split(by_user, bounds) if len(rs)), inp.score_items,
                      len(request_scores), USERS_IN_FLIGHT)
    bar.close()

    counts["requests"] = m
    counts["po_tokens"] = int(res["po_mask"].sum(dtype=np.int64))
    for k in ("request_id", "user", "time", "split"):
        res[k] = rq[k][out_req].astype(OUTPUT[k][0])
    for j, k in enumerate(PER_ROW + PER_PAIR):  # the order of `rows`' entries
        if m:
            res[k] = np.concatenate([x[j] for x in rows]).astype(OUTPUT[k][0], copy=False)
        else:  # a partition may hold no train or test request: its empty arrays still concatenate
            res[k] = np.zeros((0, 3 + rp.config.objective_rows) if k == "row_feats" else (0,), OUTPUT[k][0])
    for k, j in (("row_offsets", 0), ("pair_offsets", len(PER_ROW))):  # row_item's and pair_i's counts
        res[k] = np.cumsum([0] + [len(x[j]) for x in rows], dtype=np.int64)
    res["counts"] = counts
    return res


def _advance(gen, sent):
    """What the generator asks next (user, time, items), or None once it has finished."""
    try:
        return gen.send(sent)
    except StopIteration:
        return None


def _score_in_batches(users, score_items, rows: int, in_flight: int):
    """Runs the users' request generators (replay's user_requests), at most `in_flight` of them started at
    a time, and answers what the suspended ones ask for with one score_items call per round."""
    todo = iter(users)
    waiting = []  # (generator, (user, time, items))

    def start_more():
        while len(waiting) < in_flight:
            gen = next(todo, None)
            if gen is None:
                return
            ask = _advance(gen, None)
            if ask is not None:
                waiting.append((gen, ask))

    start_more()
    while waiting:
        n = np.array([len(ask[2]) for _, ask in waiting])
        items = np.concatenate([ask[2] for _, ask in waiting])
        got = np.asarray(score_items(np.repeat([ask[0] for _, ask in waiting], n).astype(np.int64),
                                     np.repeat([ask[1] for _, ask in waiting], n).astype(np.int64), items),
                         np.float32)
        if got.shape != (rows, len(items)):
            raise ValueError(f"score_items: returned shape {got.shape}, expected {(rows, len(items))}"
                             " (the K scores and the side features of each item)")
        asked, waiting = waiting, []
        for (gen, _), part in zip(asked, np.split(got, np.cumsum(n)[:-1], axis=1)):
            ask = _advance(gen, np.ascontiguousarray(part))
            if ask is not None:
                waiting.append((gen, ask))
        start_more()


def training_inputs(inp: ReplayInput, cfg: PipelineConfig, show_progress: bool = False, config=None) -> dict:
    """What train.py trains on: the replay of `inp` (under `config`, default ranker_config(cfg)), plus
    each request's position in `inp` (req), each row's candidate as an index into inp's candidate
    columns (row_cand, -1 for mined negatives), is_train, the graph's size and the serving config the
    exported model must carry."""
    shared = replay_globals(inp)
    res = replay(inp, cfg, shared=shared, show_progress=show_progress, config=config)
    ids = inp.requests["request_id"]
    by_id = np.argsort(ids, kind="stable")
    res["req"] = by_id[np.searchsorted(ids[by_id], res["request_id"])]
    row_req = np.repeat(res["req"], np.diff(res["row_offsets"]))
    res["row_cand"] = np.where(res["row_pos"] >= 0, inp.requests["cand_offsets"][row_req] + res["row_pos"], -1)
    res["is_train"] = res["split"] == SPLIT_TRAIN
    res["graph_edges"] = _poem().ItemGraph.from_bytes(shared["graph"]).num_edges
    res["serving_config"] = (config if config is not None else ranker_config(_poem(), cfg)).to_json()
    return res


def build_inputs(data: EvalData, ups, cfg: PipelineConfig, show_progress: bool = True, config=None,
                 score_rows=(0, 1, 2), cache: bool = True) -> dict:
    """The KuaiRand evaluation's inputs: training_inputs() of its requests (adapters.from_eval_data,
    whose request ids and candidate order are data's, so req and row_cand index `data`), with the
    upstream.UpstreamScores `ups` (its rows `score_rows`, and its scorer for the mined negatives) and,
    when cfg.side_features names them, the causal item and user statistics. `config`: the
    poem.RankerConfig, when not ranker_config(cfg) (another fusion, other score rows).

    Cached beside data's own cache (inputs_cache_path) when `cache` and both data and ups come from
    cache files: the evaluation, its precision check and their tests replay the same requests once.
    One file per configuration: the files an older build of the code left for it are removed."""
    path = inputs_cache_path(data, ups, cfg, config, score_rows) if cache else None
    if path is not None and path.exists():
        res = load_inputs(path)
    else:
        inp = from_eval_data(data, ups.scores, ups.scorer, side_features=bool(cfg.side_features),
                             score_rows=score_rows)
        res = training_inputs(inp, cfg, show_progress=show_progress, config=config)
        if path is not None:
            save_inputs(path, res)
    if path is not None:
        what = path.name.split("_")[1]  # inputs_<configuration>_<code>.npz
        for old in path.parent.glob(f"inputs_{what}_*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    return res


def save_inputs(path, res: dict) -> None:
    """training_inputs()' result as one .npz, atomically: its arrays, and the rest (counts, graph_edges,
    serving_config) as JSON."""
    save_npz(Path(path), {k: v for k, v in res.items() if isinstance(v, np.ndarray)},
             {k: v for k, v in res.items() if not isinstance(v, np.ndarray)})


def load_inputs(path) -> dict:
    arrays, meta = load_npz(Path(path))
    return {**arrays, **meta}


def inputs_cache_path(data: EvalData, ups, cfg: PipelineConfig, config=None, score_rows=(0, 1, 2)):
    """Where build_inputs caches its result, or None when data or ups has no cache file. The name,
    inputs_<configuration>_<code>.npz, hashes everything the replay reads: data's and the upstream
    model's cache files (whose names hash their configs), cfg, the serving config and the score rows;
    then the code that replays: the `poem` module's file and poem_eval's sources (an edit to either
    replays again). None too for a learned fusion, whose weights the serving config's JSON does not
    carry."""
    if data.path is None or getattr(ups, "path", None) is None:
        return None
    if config is not None and json.loads(config.to_json())["fusion"]["method"] == "learned":
        return None
    what = hashlib.sha1(json.dumps({"data": Path(data.path).name, "upstream": Path(ups.path).name,
                                    "cfg": asdict(cfg), "config": config.to_json() if config is not None else None,
                                    "score_rows": [int(r) for r in score_rows]}, sort_keys=True).encode())
    code = hashlib.sha1()
    for f in [Path(_poem().__file__), *sorted(Path(__file__).parent.glob("*.py"))]:
        code.update(f.name.encode())
        code.update(f.read_bytes())
    return Path(data.path).parent / f"inputs_{what.hexdigest()[:12]}_{code.hexdigest()[:12]}.npz"
