"""The replay's columnar input and output: any ranking log, not only KuaiRand (docs/training.md).

Input: two tables of numpy columns (``ReplayInput``), validated up front; every error names its column.

requests, one row per logged request (R rows), and its candidates (C rows, CSR by ``cand_offsets``):
  request_id    integer [R]   unique, >= 0; the output refers to requests by it
  user          integer [R]   >= 0
  time          integer [R]   seconds; non-decreasing within each user (the replay's order)
  split         integer [R]   -1 skip, 0 warm-up (state only, and the item graph and popularity),
                              1 train (rows and pairs), 2 test and 3 validation (rows of exposed
                              candidates)
  cand_offsets  integer [R+1] candidates of request r: cand_offsets[r]:cand_offsets[r+1]
  cand_item     integer [C]   item ids in [0, n_items); distinct within a request
  cand_scores   float   [K,C] the K upstream scores (rows: objectives, the ranker config's order)
  cand_exposed  0/1     [C]   optional; absent: a candidate is exposed when an engagement row names it
  cand_side     float   [S,C] optional: side features (the ranker config's side_features, in order), what
                              the service knows of each candidate besides its scores (item statistics)

score_items (optional): a callable (users, times, items) -> float (K + S) x n, column j the scores and side
features of items[j] for users[j] at times[j], items that were not candidates (the mined negatives, which
then join their request as candidates). The replay asks for the negatives of many requests in one call,
so per-call costs (a PyTorch forward pass) are paid once per batch. Absent: unknown (NaN), which fusion
ranks last and the model sees as 0.

engagements, one row per exposure with its feedback (E rows):
  request_id    integer [E]   the request the item was shown in (its user and time must agree)
  user          integer [E]   the request's user
  item          integer [E]   in [0, n_items); one row per (request_id, item)
  time          integer [E]   seconds, >= the request's time; logged after the request, in time order
  play_time, duration  float [E]   seconds (the engagement rule's long view reads them)
  click, like, follow  0/1   [E]
  engaged       0/1     [E]   optional: counts for the item graph and the hard negatives' exclusion;
                              absent: click or like or follow
  long_view     0/1     [E]   optional: the log's long-view label, what train.py's main head learns

n_items: optional; default: the largest item id + 1. popularity: optional float [>= n_items], the
random negatives' weights; default: exposure counts of the warm-up requests.

Output (``replay()``; one entry per train or test request, M of them, in input order; rows and pairs
of request m at row_offsets[m]:row_offsets[m+1] and pair_offsets[m]:pair_offsets[m+1]): see OUTPUT.
"""
from dataclasses import dataclass, field
import hashlib
from types import SimpleNamespace
from typing import Callable, Dict, Optional

import numpy as np

SPLIT_SKIP, SPLIT_WARMUP, SPLIT_TRAIN, SPLIT_TEST, SPLIT_VALID = -1, 0, 1, 2, 3
EVALUATED = (SPLIT_TEST, SPLIT_VALID)  # replayed alike: rows of exposed candidates, no pairs

REQUEST_COLUMNS = ("request_id", "user", "time", "split", "cand_offsets", "cand_item", "cand_scores")
ENGAGEMENT_COLUMNS = ("request_id", "user", "item", "time", "play_time", "duration", "click", "like", "follow")

# name: (dtype, what it holds). Indices of pair_i / pair_j are rows of their own request.
OUTPUT = {
    "request_id": (np.int64, "[M] the request"),
    "user": (np.uint64, "[M]"),
    "time": (np.int64, "[M]"),
    "split": (np.int8, "[M] 1 train, 2 test"),
    "row_offsets": (np.int64, "[M+1]"),
    "pair_offsets": (np.int64, "[M+1]"),
    "row_item": (np.uint64, "[rows] item id"),
    "row_pos": (np.int64, "[rows] position among the request's candidates; -1: a mined negative"),
    "row_feats": (np.float32, "[rows, F] the model's candidate features (RankedRequest.candidate_features)"),
    "row_tier": (np.int8, "[rows] hierarchical tier (0 best); -1 on test requests"),
    "pair_i": (np.int32, "[pairs] row of the better item, within the request"),
    "pair_j": (np.int32, "[pairs] row of the worse item"),
    "pair_margin": (np.float32, "[pairs]"),
    "po_ids": (np.uint64, "[M, Lp] partial-order sequence"),
    "po_feats": (np.float32, "[M, Lp, 4] fused score, rank pct, level, age (s)"),
    "po_mask": (np.uint8, "[M, Lp]"),
    "ch_ids": (np.uint64, "[M, Lc] chronological sequence"),
    "ch_feats": (np.float32, "[M, Lc, 2] age (s), play ratio"),
    "ch_mask": (np.uint8, "[M, Lc]"),
}
PER_REQUEST = ("request_id", "user", "time", "split", "po_ids", "po_feats", "po_mask", "ch_ids", "ch_feats", "ch_mask")
PER_ROW = ("row_item", "row_pos", "row_feats", "row_tier")
PER_PAIR = ("pair_i", "pair_j", "pair_margin")


def _column(table: str, cols: dict, name: str, kind: str, ndim: int = 1, length: Optional[int] = None,
            required: bool = True):
    """cols[name] as an array of `kind` ('int', 'float', 'flag'), or a TypeError/ValueError naming it."""
    where = f"{table}.{name}"
    if name not in cols:
        if required:
            raise ValueError(f"{where}: missing column")
        return None
    a = np.asarray(cols[name])
    ok = {"int": a.dtype.kind in "iu", "float": a.dtype.kind in "fiu" and a.dtype.itemsize <= 8,
          "flag": a.dtype.kind in "biu"}[kind]
    if not ok:
        raise TypeError(f"{where}: expected {kind} values, got {a.dtype} of shape {a.shape}")
    if a.ndim != ndim:
        raise ValueError(f"{where}: expected {ndim}-D, got shape {a.shape}")
    if length is not None and a.shape[-1] != length:
        raise ValueError(f"{where}: expected {length} entries, got shape {a.shape}")
    if kind == "int" and a.dtype.kind == "i" and len(a) and a.min() < 0 and name not in ("split", "time"):
        raise ValueError(f"{where}: negative value {a.min()}")
    if kind == "flag":
        if a.dtype.kind != "b" and len(a) and not np.isin(a, (0, 1)).all():
            raise ValueError(f"{where}: a flag must be 0 or 1")
        return a.astype(bool)
    if kind == "float":  # NaN and inf pass: the ranker ranks them last and flags them (docs/fusion.md)
        return a.astype(np.float32)
    # User ids may use all 64 bits (hashes); every other integer column fits int64.
    return a.astype(np.uint64 if name == "user" else np.int64)


@dataclass
class ReplayInput:
    """Validated input of the replay (see the module's docstring). Build with ReplayInput.from_columns."""
    requests: Dict[str, np.ndarray]
    engagements: Dict[str, np.ndarray]
    n_items: int
    popularity: Optional[np.ndarray] = None
    score_items: Optional[Callable] = field(default=None, repr=False)
    # Derived at validation: the engagement rows of request r, in time order, are
    # eng_order[eng_offsets[r]:eng_offsets[r+1]]; per-candidate labels from them.
    derived: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_requests(self) -> int:
        return len(self.requests["request_id"])

    @classmethod
    def from_columns(cls, requests: dict, engagements: dict, n_items: Optional[int] = None,
                     popularity=None, score_items: Optional[Callable] = None) -> "ReplayInput":
        rq = {}
        rq["request_id"] = _column("requests", requests, "request_id", "int")
        R = len(rq["request_id"])
        for name in ("user", "time", "split"):
            rq[name] = _column("requests", requests, name, "int", length=R)
        rq["cand_offsets"] = _column("requests", requests, "cand_offsets", "int", length=R + 1)
        off = rq["cand_offsets"]
        if off[0] != 0 or (np.diff(off) < 0).any():
            raise ValueError("requests.cand_offsets: must start at 0 and never decrease")
        C = int(off[-1])
        rq["cand_item"] = _column("requests", requests, "cand_item", "int", length=C)
        rq["cand_scores"] = _column("requests", requests, "cand_scores", "float", ndim=2, length=C)
        exposed = _column("requests", requests, "cand_exposed", "flag", length=C, required=False)
        side = _column("requests", requests, "cand_side", "float", ndim=2, length=C, required=False)
        if side is not None:
            rq["cand_side"] = side
        if not np.isin(rq["split"], (SPLIT_SKIP, SPLIT_WARMUP, SPLIT_TRAIN, SPLIT_TEST, SPLIT_VALID)).all():
            raise ValueError("requests.split: values must be -1, 0, 1, 2 or 3")
        if len(np.unique(rq["request_id"])) != R:
            raise ValueError("requests.request_id: ids must be unique")
        by_user = np.lexsort((np.arange(R), rq["user"]))  # stable: the input's order within a user
        same = rq["user"][by_user][1:] == rq["user"][by_user][:-1]
        back = same & (np.diff(rq["time"][by_user]) < 0)
        if back.any():
            r = by_user[1:][back][0]
            raise ValueError(f"requests.time: not in time order within user {rq['user'][r]} "
                             f"(request_id {rq['request_id'][r]})")
        cand_req = np.repeat(np.arange(R), np.diff(off))
        key = np.lexsort((rq["cand_item"], cand_req))
        dup = (cand_req[key][1:] == cand_req[key][:-1]) & (rq["cand_item"][key][1:] == rq["cand_item"][key][:-1])
        if dup.any():
            r = cand_req[key][1:][dup][0]
            raise ValueError(f"requests.cand_item: request_id {rq['request_id'][r]} lists an item twice")

        eg = {}
        eg["request_id"] = _column("engagements", engagements, "request_id", "int")
        E = len(eg["request_id"])
        for name in ("user", "item", "time"):
            eg[name] = _column("engagements", engagements, name, "int", length=E)
        for name in ("play_time", "duration"):
            eg[name] = _column("engagements", engagements, name, "float", length=E)
        for name in ("click", "like", "follow"):
            eg[name] = _column("engagements", engagements, name, "flag", length=E)
        engaged = _column("engagements", engagements, "engaged", "flag", length=E, required=False)
        eg["engaged"] = engaged if engaged is not None else eg["click"] | eg["like"] | eg["follow"]
        long_view = _column("engagements", engagements, "long_view", "flag", length=E, required=False)
        if long_view is not None:
            eg["long_view"] = long_view

        ids = np.argsort(rq["request_id"], kind="stable")
        at = np.minimum(np.searchsorted(rq["request_id"][ids], eg["request_id"]), max(R - 1, 0))
        req_of = ids[at] if R else at
        missing = rq["request_id"][req_of] != eg["request_id"] if R else np.ones(E, bool)
        if missing.any():
            raise ValueError(f"engagements.request_id: {eg['request_id'][missing][0]} is not a request")
        bad = eg["user"] != rq["user"][req_of]
        if bad.any():
            raise ValueError(f"engagements.user: row {np.flatnonzero(bad)[0]} differs from its request's user")
        bad = eg["time"] < rq["time"][req_of]
        if bad.any():
            raise ValueError(f"engagements.time: row {np.flatnonzero(bad)[0]} is before its request's time")
        # A request's engagements are logged after it, in time order (the input's order on ties).
        eng_order = np.lexsort((np.arange(E), eg["time"], req_of))
        eng_offsets = np.searchsorted(req_of[eng_order], np.arange(R + 1)).astype(np.int64)

        # Per-candidate labels: the engagement row of (request, item), zeros without one. Both sides
        # are matched on one int64 key, request * span + item.
        span = int(max(rq["cand_item"].max(initial=0), eg["item"].max(initial=0))) + 1
        if (R + 1) * span >= 2 ** 62:
            raise ValueError(f"requests.cand_item: item ids up to {span - 1} over {R} requests overflow the "
                             "join key; remap items to dense ids (docs/training.md)")
        eng_key = req_of * span + eg["item"]
        by_key = np.argsort(eng_key, kind="stable")
        dup = np.diff(eng_key[by_key]) == 0
        if dup.any():
            raise ValueError(f"engagements.item: request_id {eg['request_id'][by_key[1:][dup][0]]} has two rows "
                             "for one item; merge them into one row")
        cand_key = cand_req * span + rq["cand_item"]  # sorted order: `key` above
        cpos = np.minimum(np.searchsorted(cand_key[key], eng_key), max(C - 1, 0))
        hit = cand_key[key][cpos] == eng_key if C else np.zeros(E, bool)
        cand_of_eng = np.where(hit, key[cpos] if C else -1, -1)
        labels = {"play_time": np.zeros(C, np.float32), "duration": np.zeros(C, np.float32),
                  "click": np.zeros(C, bool), "like": np.zeros(C, bool), "follow": np.zeros(C, bool),
                  "long_view": np.zeros(C, bool)}
        m = cand_of_eng >= 0
        for name in labels:
            if name in eg:
                labels[name][cand_of_eng[m]] = eg[name][m]
        has_eng = np.zeros(C, bool)
        has_eng[cand_of_eng[m]] = True
        if exposed is None:
            exposed = has_eng
        elif (has_eng & ~exposed).any():
            c = np.flatnonzero(has_eng & ~exposed)[0]
            raise ValueError(f"requests.cand_exposed: request_id {rq['request_id'][cand_req[c]]} item "
                             f"{rq['cand_item'][c]} has an engagement but is marked unexposed")
        rq["cand_exposed"] = exposed

        seen = int(max(rq["cand_item"].max(initial=-1), eg["item"].max(initial=-1))) + 1
        if n_items is None:
            n_items = seen
        elif seen > n_items:
            raise ValueError(f"n_items: {n_items}, but an item id is {seen - 1}")
        if popularity is not None:
            popularity = np.asarray(popularity)
            if popularity.dtype.kind not in "fiu" or popularity.ndim != 1:
                raise TypeError(f"popularity: expected 1-D numbers, got {popularity.dtype} of shape {popularity.shape}")
            if len(popularity) < n_items:
                raise ValueError(f"popularity: {len(popularity)} entries, fewer than n_items {n_items}")
            popularity = popularity.astype(np.float64)
        derived = {"eng_order": eng_order, "eng_offsets": eng_offsets, "eng_request": req_of}
        derived.update({"cand_" + k: v for k, v in labels.items()})
        return cls(rq, eg, int(n_items), popularity, score_items, derived)

    def take(self, positions: np.ndarray) -> "ReplayInput":
        """The requests at `positions` (in that order), their candidates and engagements: a partition.
        Already validated, so nothing is checked again; n_items and popularity stay the whole input's."""
        positions = np.asarray(positions, np.int64)
        off = self.requests["cand_offsets"]
        counts = off[positions + 1] - off[positions]
        cand = _ranges(off[positions], counts)
        rq = {k: self.requests[k][positions] for k in ("request_id", "user", "time", "split")}
        rq["cand_offsets"] = np.r_[0, np.cumsum(counts)].astype(np.int64)
        rq["cand_item"] = self.requests["cand_item"][cand]
        rq["cand_scores"] = self.requests["cand_scores"][:, cand]
        if "cand_side" in self.requests:
            rq["cand_side"] = self.requests["cand_side"][:, cand]
        rq["cand_exposed"] = self.requests["cand_exposed"][cand]
        d = self.derived
        eoff = d["eng_offsets"]
        ecounts = eoff[positions + 1] - eoff[positions]
        rows = d["eng_order"][_ranges(eoff[positions], ecounts)]
        eg = {k: v[rows] for k, v in self.engagements.items()}
        derived = {"eng_order": np.arange(len(rows), dtype=np.int64),
                   "eng_offsets": np.r_[0, np.cumsum(ecounts)].astype(np.int64),
                   "eng_request": np.repeat(np.arange(len(positions)), ecounts)}
        derived.update({k: v[cand] for k, v in d.items() if k.startswith("cand_")})
        return ReplayInput(rq, eg, self.n_items, self.popularity, self.score_items, derived)

    def labels(self) -> SimpleNamespace:
        """The pointwise labels of every candidate, as train.py reads them (the fields of EvalData it
        uses): cand_exposed, cand_click, cand_long_view, cand_play_time_s, cand_user. Needs the
        engagements' `long_view` column, the log's own long-view label."""
        if "long_view" not in self.engagements:
            raise ValueError("engagements.long_view: missing column (the long-view label train.py learns)")
        d, rq = self.derived, self.requests
        return SimpleNamespace(cand_exposed=rq["cand_exposed"].astype(np.int8),
                               cand_click=d["cand_click"].astype(np.int8), cand_long_view=d["cand_long_view"].astype(np.int8), cand_play_time_s=d["cand_play_time"],
                               cand_user=np.repeat(rq["user"], np.diff(rq["cand_offsets"])))


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) over (starts, counts)."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    head = np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + (np.arange(total) - head)


def partition_of(user: np.ndarray, n_partitions: int) -> np.ndarray:
    """A user's partition: a SplitMix64 finaliser of the id, mod n_partitions. Stable across processes
    and machines (Python's hash() is not), and spreads consecutive ids."""
    if n_partitions < 1:
        raise ValueError(f"n_partitions: must be >= 1, got {n_partitions}")
    with np.errstate(over="ignore"):
        z = np.asarray(user).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_partitions)).astype(np.int64)


def concat_outputs(parts) -> dict:
    """Outputs of several replays (partitions) as one, in the order given."""
    parts = list(parts)
    out = {}
    for k in OUTPUT:
        if k in ("row_offsets", "pair_offsets"):
            sizes = np.concatenate([np.diff(p[k]) for p in parts]) if parts else np.zeros(0, np.int64)
            out[k] = np.r_[0, np.cumsum(sizes)].astype(np.int64)
        else:
            out[k] = np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, OUTPUT[k][0])
    return out


def canonical(out: dict) -> dict:
    """The output sorted by request_id, the order in which two replays are compared byte for byte."""
    order = np.argsort(out["request_id"], kind="stable")
    res = {k: out[k][order] for k in PER_REQUEST}
    for offsets, names in (("row_offsets", PER_ROW), ("pair_offsets", PER_PAIR)):
        off = out[offsets]
        counts = np.diff(off)[order]
        idx = _ranges(off[:-1][order], counts)
        res[offsets] = np.r_[0, np.cumsum(counts)].astype(np.int64)
        for k in names:
            res[k] = out[k][idx]
    return {k: res[k] for k in OUTPUT}


def digest(out: dict) -> str:
    """sha256 over every output array (name, dtype, shape, bytes) after the canonical sort."""
    h = hashlib.sha256()
    for k, v in canonical(out).items():
        v = np.ascontiguousarray(v)
        h.update(f"{k}:{v.dtype.str}:{v.shape};".encode())
        h.update(v.tobytes())
    return h.hexdigest()
