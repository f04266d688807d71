"""KuaiRand-Pure exposure log -> requests with candidates, day splits and per-user engagement logs.

What this module builds (see docs/evaluation_data.md for the full description):

* Exposures: every row of the log, with rows that share (user_id, video_id, time_ms) collapsed into one
  exposure (labels: max over the rows; the source repeats ~2.8% of its rows, mostly verbatim or with a
  different `hourmin`). Every collapse is counted in ``meta["log_report"]``; nothing else is dropped.
* Requests: a user's consecutive exposures with gaps of at most ``gap_s`` (5 minutes) form one request;
  ``request_time`` is its first exposure's time in seconds; its day (split) is its first exposure's
  ``date``. Requests are stored in global time order (ties by user), so replaying them in index order
  never lets a request see a later one.
* Candidates of a request: its exposed items (one candidate per distinct item, in order of first
  exposure; an item exposed twice in one request is merged, labels max, and counted) followed by
  ``n_neg`` distinct unexposed items drawn by popularity: exposure counts over ``popularity_days`` only
  (default: the upstream-ranker days, which precede every evaluated day), excluding the request's
  exposed items, drawn with a seeded ``numpy.random.Generator``. Unexposed candidates have exposed = 0
  and all labels 0 (play time and duration too; the item's catalogue duration is ``item_duration_s``).
* Layout: flat, CSR-like. ``req_offsets[r]:req_offsets[r + 1]`` indexes the ``cand_*`` arrays of request
  r. The engagement log (``log_*``) is grouped by user (``user_log_offsets``) and in time order inside a
  user, with ``log_request`` pointing at each exposure's request.

Everything is cached as ``<cache_dir>/requests_<config hash>.npz`` (default ``build/eval_cache/``); a
change of any parameter, of the input files' sizes or of ``CACHE_VERSION`` gives a new hash and a
rebuild.

Data: KuaiRand (Gao et al., CIKM 2022, https://kuairand.com), CC BY-SA 4.0. Files derived here carry
that attribution in their metadata and are under the same license.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .files import replace_atomically, write_text

try:
    from tqdm import tqdm as _tqdm
except ImportError:  # pragma: no cover - tqdm is installed with Debian's python3-tqdm
    _tqdm = None

CACHE_VERSION = 1

ATTRIBUTION = ("Derived from KuaiRand-Pure (Gao et al., \"KuaiRand: An Unbiased Sequential Recommendation "
               "Dataset with Randomly Exposed Videos\", CIKM 2022, doi:10.1145/3511808.3557624, "
               "https://kuairand.com). Licensed under Creative Commons Attribution-ShareAlike 4.0 "
               "International (CC BY-SA 4.0); redistributed derivatives must keep this note and license.")
LICENSE = "CC-BY-SA-4.0"

# The replay's split codes (schema.py): validation requests are replayed like test requests.
SPLIT_NONE, SPLIT_UPSTREAM, SPLIT_POEM_TRAIN, SPLIT_TEST, SPLIT_VALID = -1, 0, 1, 2, 3
SPLIT_NAMES = {SPLIT_UPSTREAM: "upstream", SPLIT_POEM_TRAIN: "poem_train", SPLIT_VALID: "valid", SPLIT_TEST: "test",
               SPLIT_NONE: "none"}
LABELS = ("click", "long_view", "like", "follow")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = os.environ.get("POEM_KUAIRAND_DIR",
                                  str(REPO_ROOT.parent / "shared" / "data" / "kuairand-pure"))
DEFAULT_CACHE_DIR = os.environ.get("POEM_EVAL_CACHE", str(REPO_ROOT / "build" / "eval_cache"))


def progress(iterable=None, *, enabled: bool = True, **kw):
    """A tqdm progress bar on stderr, or the bare iterable when disabled or tqdm is missing."""
    if not enabled or _tqdm is None:
        return iterable if iterable is not None else _NullBar()
    kw.setdefault("file", sys.stderr)
    kw.setdefault("leave", False)
    kw.setdefault("dynamic_ncols", True)
    return _tqdm(iterable, **kw)


class _NullBar:
    def update(self, n=1):
        pass

    def close(self):
        pass

    def set_postfix(self, *a, **k):
        pass


# --------------------------------------------------------------------------------------------------
# configuration


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Every parameter of the data step. Days are `date` values (yyyymmdd, Beijing time, as logged)."""
    data_dir: str = DEFAULT_DATA_DIR
    log_file: str = "log_standard_20220425_to_20220504.csv"
    features_file: str = "video_features_basic_pure.csv"
    gap_s: float = 300.0
    n_neg: int = 50
    upstream_days: Tuple[int, ...] = (20220425, 20220426, 20220427)
    poem_train_days: Tuple[int, ...] = (20220428, 20220429, 20220430, 20220501)
    valid_days: Tuple[int, ...] = (20220502,)   # early stopping and every choice; may be empty
    test_days: Tuple[int, ...] = (20220503, 20220504)
    popularity_days: Optional[Tuple[int, ...]] = None   # None: the upstream days
    seed: int = 0
    quick: bool = False
    quick_user_frac: float = 0.2
    cache_dir: str = DEFAULT_CACHE_DIR

    def __post_init__(self):
        for name in ("upstream_days", "poem_train_days", "valid_days", "test_days", "popularity_days"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, tuple(sorted(int(d) for d in v)))
        up, tr, te = self.upstream_days, self.poem_train_days, self.test_days
        if not up or not tr or not te:
            raise ValueError("EvalConfig: upstream_days, poem_train_days and test_days must be non-empty")
        va = self.valid_days
        if not (max(up) < min(tr) and max(tr) < min(va or te) and max(va or tr) < min(te)):
            raise ValueError("EvalConfig: days must be ordered upstream_days < poem_train_days < valid_days < "
                             f"test_days, got {up}, {tr}, {va}, {te}")
        if max(self.pop_days) >= min(tr):
            raise ValueError(f"EvalConfig: popularity_days {self.pop_days} reach into the POEM days "
                             f"(first {min(tr)}): that would be look-ahead")
        if self.n_neg < 0 or self.gap_s < 0:
            raise ValueError("EvalConfig: n_neg and gap_s must be >= 0")
        if not (0.0 < self.quick_user_frac <= 1.0):
            raise ValueError("EvalConfig: quick_user_frac must be in (0, 1]")

    @property
    def pop_days(self) -> Tuple[int, ...]:
        return self.popularity_days if self.popularity_days is not None else self.upstream_days

    @classmethod
    def quick_mode(cls, **kw) -> "EvalConfig":
        kw.setdefault("quick", True)
        return cls(**kw)

    def key(self) -> dict:
        """What the cached arrays depend on (not where files live)."""
        d = dataclasses.asdict(self)
        d.pop("data_dir")
        d.pop("cache_dir")
        d["popularity_days"] = list(self.pop_days)
        if not self.quick:
            d.pop("quick_user_frac")
        d["cache_version"] = CACHE_VERSION
        for f in ("log_file", "features_file"):
            p = Path(self.data_dir) / getattr(self, f)
            d[f + "_bytes"] = p.stat().st_size if p.exists() else -1
        return d

    def config_hash(self) -> str:
        return hashlib.sha1(json.dumps(self.key(), sort_keys=True).encode()).hexdigest()[:12]

    def cache_path(self) -> Path:
        tag = "quick_" if self.quick else ""
        return Path(self.cache_dir) / f"requests_{tag}{self.config_hash()}.npz"

    def split_of_days(self, dates: np.ndarray) -> np.ndarray:
        out = np.full(len(dates), SPLIT_NONE, dtype=np.int8)
        out[np.isin(dates, self.upstream_days)] = SPLIT_UPSTREAM
        out[np.isin(dates, self.poem_train_days)] = SPLIT_POEM_TRAIN
        out[np.isin(dates, self.valid_days)] = SPLIT_VALID
        out[np.isin(dates, self.test_days)] = SPLIT_TEST
        return out


# --------------------------------------------------------------------------------------------------
# raw files


def load_log(cfg: EvalConfig) -> Tuple[pd.DataFrame, dict]:
    """The exposure log with duplicate exposures collapsed (and counted); quick mode subsamples users.

    Returns the exposures sorted by (user_id, time_ms, video_id) and a report of what was merged."""
    path = Path(cfg.data_dir) / cfg.log_file
    if not path.exists():
        raise FileNotFoundError(f"poem_eval: exposure log not found: {path} (set POEM_KUAIRAND_DIR)")
    usecols = ["user_id", "video_id", "date", "hourmin", "time_ms", "is_click", "is_like", "is_follow",
               "long_view", "play_time_ms", "duration_ms", "tab"]
    df = pd.read_csv(path, usecols=usecols)
    rep = {"raw_rows": int(len(df)), "raw_users": int(df.user_id.nunique()),
           "raw_items": int(df.video_id.nunique())}
    if cfg.quick:
        users = np.unique(df.user_id.to_numpy())
        rng = np.random.default_rng([cfg.seed, 7])
        keep = np.sort(rng.choice(users, size=max(1, int(round(cfg.quick_user_frac * len(users)))),
                                  replace=False))
        df = df[df.user_id.isin(keep)]
        rep["quick_users_kept"] = int(len(keep))
        rep["quick_rows_kept"] = int(len(df))
    key = ["user_id", "video_id", "time_ms"]
    rep["exact_duplicate_rows"] = int(df.duplicated().sum())
    rep["same_key_extra_rows"] = int(df.duplicated(key).sum())
    labels = ["is_click", "is_like", "is_follow", "long_view", "play_time_ms"]
    g = df.groupby(key, sort=False)
    multi = g[labels].nunique().max(axis=1) > 1
    rep["same_key_groups_with_label_conflict"] = int(multi.sum())
    rep["same_key_groups_with_date_conflict"] = int((g["date"].nunique() > 1).sum())
    df = g.agg(date=("date", "min"), hourmin=("hourmin", "min"), is_click=("is_click", "max"),
               is_like=("is_like", "max"), is_follow=("is_follow", "max"), long_view=("long_view", "max"),
               play_time_ms=("play_time_ms", "max"), duration_ms=("duration_ms", "max"),
               tab=("tab", "first")).reset_index()
    df = df.sort_values(["user_id", "time_ms", "video_id"], kind="mergesort").reset_index(drop=True)
    rep["exposures"] = int(len(df))
    rep["duration_zero_exposures_kept"] = int((df.duration_ms == 0).sum())
    rep["duration_zero_items"] = int(df.video_id[df.duration_ms == 0].nunique())
    rep["play_time_over_duration_exposures"] = int((df.play_time_ms > df.duration_ms).sum())
    rep["long_view_without_click"] = int(((df.long_view == 1) & (df.is_click == 0)).sum())
    return df, rep


def load_item_features(cfg: EvalConfig, n_items: int) -> Tuple[Dict[str, np.ndarray], dict]:
    """Per-item side features indexed by video_id (0..n_items-1); codes start at 1, 0 = missing.

    Returns arrays item_duration_s (float32, NaN missing), item_video_type, item_upload_type, item_tag
    (first tag of the `tag` list), item_n_tags, and the vocabularies (code -> value) for the metadata."""
    path = Path(cfg.data_dir) / cfg.features_file
    f = pd.read_csv(path, dtype={"tag": str})
    if f.video_id.max() >= n_items:
        n_items = int(f.video_id.max()) + 1
    vid = f.video_id.to_numpy()
    out = {"item_duration_s": np.full(n_items, np.nan, dtype=np.float32)}
    out["item_duration_s"][vid] = (f.video_duration.to_numpy(dtype=np.float64) / 1000.0).astype(np.float32)
    vocabs = {}
    first_tag = f.tag.fillna("").str.split(",").str[0]
    n_tags = f.tag.fillna("").map(lambda s: len([t for t in s.split(",") if t]))
    for name, col in (("video_type", f.video_type.fillna("")), ("upload_type", f.upload_type.fillna("")),
                      ("tag", first_tag)):
        col = col.astype(str)
        values = sorted(v for v in col.unique() if v not in ("", "UNKNOWN", "nan"))
        code = {v: i + 1 for i, v in enumerate(values)}
        arr = np.zeros(n_items, dtype=np.int16)
        arr[vid] = col.map(lambda v: code.get(v, 0)).to_numpy(dtype=np.int16)
        out["item_" + name] = arr
        vocabs[name] = values
    out["item_n_tags"] = np.zeros(n_items, dtype=np.int8)
    out["item_n_tags"][vid] = n_tags.to_numpy(dtype=np.int8)
    out["item_in_catalogue"] = np.zeros(n_items, dtype=np.int8)
    out["item_in_catalogue"][vid] = 1
    return out, vocabs


# --------------------------------------------------------------------------------------------------
# requests and candidates


def sessionize(user: np.ndarray, time_ms: np.ndarray, gap_s: float) -> np.ndarray:
    """Session id per exposure, for exposures sorted by (user, time): a new session starts at a user's
    first exposure and wherever the gap to the previous exposure exceeds gap_s seconds."""
    new = np.ones(len(user), dtype=bool)
    if len(user) > 1:
        same_user = user[1:] == user[:-1]
        gap_ok = (time_ms[1:] - time_ms[:-1]) <= gap_s * 1000.0
        new[1:] = ~(same_user & gap_ok)
    return np.cumsum(new) - 1


def popularity_counts(log_item: np.ndarray, log_date: np.ndarray, days: Sequence[int],
                      n_items: int) -> np.ndarray:
    """Exposure counts per item over the given days only."""
    m = np.isin(log_date, np.asarray(days))
    return np.bincount(log_item[m], minlength=n_items).astype(np.int64)


def sample_unexposed(rng: np.random.Generator, counts: np.ndarray, exp_offsets: np.ndarray,
                     exp_items: np.ndarray, n_neg: int, *, show_progress: bool = False,
                     chunk: int = 20000) -> np.ndarray:
    """n_neg distinct items per request, drawn with probability proportional to `counts`, none of them
    among the request's exposed items (exp_items[exp_offsets[r]:exp_offsets[r+1]]).

    Successive sampling without replacement: items are drawn with replacement and the first n_neg
    distinct admissible ones (in draw order) are kept; requests left short draw again. Returns an
    (R, n_neg) int32 array."""
    R = len(exp_offsets) - 1
    n_items = len(counts)
    out = np.full((R, n_neg), -1, dtype=np.int32)
    if n_neg == 0 or R == 0:
        return out
    n_exp = np.diff(exp_offsets)
    admissible = int((counts > 0).sum())
    if admissible - int(n_exp.max(initial=0)) < n_neg:
        raise ValueError(f"sample_unexposed: only {admissible} items have popularity > 0, too few to draw "
                         f"{n_neg} unexposed items per request")
    cum = np.cumsum(counts.astype(np.float64))
    total = cum[-1]
    exp_req = np.repeat(np.arange(R, dtype=np.int64), n_exp)
    exp_keys = np.sort(exp_req * n_items + exp_items.astype(np.int64))
    have = np.zeros(R, dtype=np.int64)
    pending = np.arange(R)
    bar = progress(total=R, enabled=show_progress, desc="unexposed candidates", unit="req")
    rounds = 0
    while len(pending):
        rounds += 1
        if rounds > 200:
            raise RuntimeError("sample_unexposed: no progress after 200 rounds")
        m_draw = n_neg + max(16, n_neg // 2)
        for s in range(0, len(pending), chunk):
            rows = pending[s:s + chunk]
            P = len(rows)
            draws = np.searchsorted(cum, rng.random((P, m_draw)) * total, side="right")
            np.minimum(draws, n_items - 1, out=draws)
            cand = np.concatenate([out[rows].astype(np.int64), draws], axis=1)   # kept first
            width = cand.shape[1]
            valid = cand >= 0
            # first occurrence within the row, in draw order
            local = np.arange(P, dtype=np.int64)[:, None] * n_items + np.where(valid, cand, 0)
            flat = local.ravel()
            order = np.argsort(flat, kind="stable")
            sk = flat[order]
            first_sorted = np.ones(len(sk), dtype=bool)
            first_sorted[1:] = sk[1:] != sk[:-1]
            first = np.empty(len(sk), dtype=bool)
            first[order] = first_sorted
            first = first.reshape(P, width)
            gkeys = rows.astype(np.int64)[:, None] * n_items + np.where(valid, cand, 0)
            pos = np.searchsorted(exp_keys, gkeys)
            pos = np.minimum(pos, max(len(exp_keys) - 1, 0))
            excluded = (exp_keys[pos] == gkeys) if len(exp_keys) else np.zeros_like(valid)
            ok = valid & first & ~excluded
            rank = np.cumsum(ok, axis=1)
            sel = ok & (rank <= n_neg)
            cnt = sel.sum(axis=1)
            # scatter the selected items (row-major keeps each row's draw order)
            col = (np.cumsum(sel, axis=1) - 1)[sel]
            rr = np.repeat(rows, cnt)
            out[rr, col] = cand[sel].astype(np.int32)
            bar.update(int(((cnt == n_neg) & (have[rows] < n_neg)).sum()))
            have[rows] = cnt
        pending = pending[have[pending] < n_neg]
    bar.close()
    return out


class EvalData:
    """The arrays of one EvalConfig (attribute access: ``d.req_offsets``, ``d.cand_item`` ...)."""

    def __init__(self, arrays: Dict[str, np.ndarray], meta: dict, path: Optional[Path] = None):
        self.arrays = arrays
        self.meta = meta
        self.path = path
        self._cand_request = None

    def __getattr__(self, name):
        arrays = self.__dict__.get("arrays")
        if arrays is not None and name in arrays:
            return arrays[name]
        raise AttributeError(name)

    @property
    def n_requests(self) -> int:
        return len(self.arrays["req_offsets"]) - 1

    @property
    def n_candidates(self) -> int:
        return int(self.arrays["req_offsets"][-1])

    @property
    def cand_request(self) -> np.ndarray:
        """Request index of every candidate."""
        if self._cand_request is None:
            off = self.arrays["req_offsets"]
            self._cand_request = np.repeat(np.arange(self.n_requests, dtype=np.int64), np.diff(off))
        return self._cand_request

    @property
    def cand_user(self) -> np.ndarray:
        """Dense user index of every candidate."""
        return self.arrays["req_user"][self.cand_request]

    @property
    def cand_split(self) -> np.ndarray:
        return self.arrays["req_split"][self.cand_request]

    def candidates(self, r: int) -> slice:
        off = self.arrays["req_offsets"]
        return slice(int(off[r]), int(off[r + 1]))

    def requests_of_split(self, split: int) -> np.ndarray:
        return np.flatnonzero(self.arrays["req_split"] == split)

    def user_log(self, u: int) -> slice:
        off = self.arrays["user_log_offsets"]
        return slice(int(off[u]), int(off[u + 1]))

    def summary(self) -> dict:
        a = self.arrays
        out = {}
        for s in (SPLIT_UPSTREAM, SPLIT_POEM_TRAIN, SPLIT_VALID, SPLIT_TEST, SPLIT_NONE):
            rm = a["req_split"] == s
            if s == SPLIT_NONE and not rm.any():
                continue
            n_c = int(np.diff(a["req_offsets"])[rm].sum())
            cm = self.cand_split == s
            n_e = int(a["cand_exposed"][cm].sum())
            out[SPLIT_NAMES[s]] = {
                "days": sorted(int(d) for d in np.unique(a["req_date"][rm])),
                "requests": int(rm.sum()), "users": int(len(np.unique(a["req_user"][rm]))),
                "candidates": n_c, "exposed": n_e, "unexposed": n_c - n_e,
                "click_rate": float(a["cand_click"][cm & (a["cand_exposed"] == 1)].mean()) if n_e else float("nan"),
                "long_view_rate": float(a["cand_long_view"][cm & (a["cand_exposed"] == 1)].mean()) if n_e else float("nan"),
                "exposed_per_request_mean": n_e / max(1, int(rm.sum())),
                "exposed_per_request_max": int(a["req_n_exposed"][rm].max()) if rm.any() else 0,
            }
        return out


def _build_arrays(cfg: EvalConfig, show_progress: bool) -> Tuple[Dict[str, np.ndarray], dict]:
    t0 = time.time()
    df, rep = load_log(cfg)
    n_items = int(df.video_id.max()) + 1
    item_arrays, vocabs = load_item_features(cfg, n_items)
    n_items = len(item_arrays["item_duration_s"])

    user_ids, user = np.unique(df.user_id.to_numpy(), return_inverse=True)
    user = user.astype(np.int32)
    item = df.video_id.to_numpy().astype(np.int32)
    t_ms = df.time_ms.to_numpy().astype(np.int64)
    date = df.date.to_numpy().astype(np.int32)
    sess = sessionize(user, t_ms, cfg.gap_s)                    # in (user, time) order
    n_sess = int(sess[-1]) + 1 if len(sess) else 0
    starts = np.flatnonzero(np.r_[True, sess[1:] != sess[:-1]]) if len(sess) else np.zeros(0, np.int64)
    s_user = user[starts]
    s_time = t_ms[starts]
    s_date = date[starts]
    s_end = np.maximum.reduceat(t_ms, starts) if len(starts) else np.zeros(0, np.int64)
    rep["requests_spanning_dates"] = int((np.minimum.reduceat(date, starts) !=
                                          np.maximum.reduceat(date, starts)).sum()) if len(starts) else 0
    # global time order of requests (ties: user, then session id which is unique)
    g_order = np.lexsort((np.arange(n_sess), s_user, s_time))
    new_id = np.empty(n_sess, dtype=np.int64)
    new_id[g_order] = np.arange(n_sess)
    log_request = new_id[sess]

    # candidates from exposures: one per (request, item), labels max, first exposure time
    ex = pd.DataFrame({"r": log_request, "item": item, "t": t_ms, "click": df.is_click.to_numpy(),
                       "long_view": df.long_view.to_numpy(), "like": df.is_like.to_numpy(),
                       "follow": df.is_follow.to_numpy(), "play": df.play_time_ms.to_numpy(),
                       "dur": df.duration_ms.to_numpy()})
    gx = ex.groupby(["r", "item"], sort=False)
    cx = gx.agg(t=("t", "min"), click=("click", "max"), long_view=("long_view", "max"),
                like=("like", "max"), follow=("follow", "max"), play=("play", "max"), dur=("dur", "max"),
                n=("t", "size")).reset_index()
    rep["repeated_item_in_request_extra_exposures"] = int((cx.n - 1).sum())
    cx = cx.sort_values(["r", "t", "item"], kind="mergesort").reset_index(drop=True)
    R = n_sess
    n_exp = np.bincount(cx.r.to_numpy(), minlength=R)
    exp_offsets = np.r_[0, np.cumsum(n_exp)].astype(np.int64)
    exp_items = cx.item.to_numpy().astype(np.int32)

    # popularity from cfg.pop_days only, then the unexposed candidates
    counts = popularity_counts(item, date, cfg.pop_days, n_items)
    rng = np.random.default_rng(cfg.seed)
    neg = sample_unexposed(rng, counts, exp_offsets, exp_items, cfg.n_neg, show_progress=show_progress)

    # interleave: per request, exposed then unexposed
    n_c = n_exp + cfg.n_neg
    req_offsets = np.r_[0, np.cumsum(n_c)].astype(np.int64)
    C = int(req_offsets[-1])
    is_exp = np.zeros(C, dtype=bool)
    exp_pos = np.repeat(req_offsets[:-1], n_exp) + (np.arange(len(exp_items)) - np.repeat(exp_offsets[:-1], n_exp))
    is_exp[exp_pos] = True
    r_req_time = np.empty(R, dtype=np.int64)
    r_req_time[new_id] = s_time
    arrays = {}
    arrays["cand_item"] = np.empty(C, dtype=np.int32)
    arrays["cand_item"][exp_pos] = exp_items
    arrays["cand_item"][~is_exp] = neg.ravel()
    arrays["cand_exposed"] = is_exp.astype(np.int8)
    for lab in LABELS:
        a = np.zeros(C, dtype=np.int8)
        a[exp_pos] = cx[lab].to_numpy().astype(np.int8)
        arrays["cand_" + lab] = a
    for name, col in (("cand_play_time_s", "play"), ("cand_duration_s", "dur")):
        a = np.zeros(C, dtype=np.float32)
        a[exp_pos] = (cx[col].to_numpy() / 1000.0).astype(np.float32)
        arrays[name] = a
    a = np.zeros(C, dtype=np.float32)
    a[exp_pos] = ((cx.t.to_numpy() - r_req_time[cx.r.to_numpy()]) / 1000.0).astype(np.float32)
    arrays["cand_time_offset_s"] = a
    a = np.zeros(C, dtype=np.int16)
    a[exp_pos] = cx.n.to_numpy().astype(np.int16)
    arrays["cand_n_exposures"] = a

    def reorder(x):
        y = np.empty_like(x)
        y[new_id] = x
        return y

    arrays["req_offsets"] = req_offsets
    arrays["req_user"] = reorder(s_user).astype(np.int32)
    arrays["req_user_id"] = user_ids[arrays["req_user"]].astype(np.int32)
    arrays["req_time_s"] = reorder(s_time).astype(np.float64) / 1000.0
    arrays["req_end_time_s"] = reorder(s_end).astype(np.float64) / 1000.0
    arrays["req_date"] = reorder(s_date).astype(np.int32)
    arrays["req_split"] = cfg.split_of_days(arrays["req_date"])
    arrays["req_n_exposed"] = n_exp.astype(np.int32)

    # engagement log: by user, in time order (the order of df)
    arrays["log_user"] = user
    arrays["log_item"] = item
    arrays["log_time_s"] = t_ms.astype(np.float64) / 1000.0
    arrays["log_play_time_s"] = (df.play_time_ms.to_numpy() / 1000.0).astype(np.float32)
    arrays["log_duration_s"] = (df.duration_ms.to_numpy() / 1000.0).astype(np.float32)
    arrays["log_click"] = df.is_click.to_numpy().astype(np.int8)
    arrays["log_long_view"] = df.long_view.to_numpy().astype(np.int8)
    arrays["log_like"] = df.is_like.to_numpy().astype(np.int8)
    arrays["log_follow"] = df.is_follow.to_numpy().astype(np.int8)
    arrays["log_date"] = date
    arrays["log_tab"] = df.tab.to_numpy().astype(np.int16)
    arrays["log_request"] = log_request
    arrays["user_log_offsets"] = np.r_[0, np.cumsum(np.bincount(user, minlength=len(user_ids)))].astype(np.int64)
    arrays["user_ids"] = user_ids.astype(np.int32)
    arrays["item_pop_counts"] = counts
    arrays.update(item_arrays)

    rep["requests"] = int(R)
    rep["candidates"] = C
    rep["users"] = int(len(user_ids))
    rep["items_with_popularity"] = int((counts > 0).sum())
    rep["exposures_of_items_without_popularity_outside_pop_days"] = int(
        ((counts[item] == 0) & ~np.isin(date, cfg.pop_days)).sum())
    rep["build_seconds"] = round(time.time() - t0, 2)
    meta = {"attribution": ATTRIBUTION, "license": LICENSE, "config": cfg.key(),
            "config_hash": cfg.config_hash(), "log_report": rep, "vocabs": vocabs,
            "split_codes": {str(k): v for k, v in SPLIT_NAMES.items()},
            "notes": "request_time = first exposure (s); candidates: exposed first (by first exposure "
                     "time), then n_neg popularity-drawn unexposed items with zero labels"}
    return arrays, meta


def save_npz(path: Path, arrays: Dict[str, np.ndarray], meta: dict) -> None:
    """Atomic write of arrays plus a JSON `meta` entry (uncompressed: fast to load)."""
    with replace_atomically(path, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)


def load_npz(path: Path) -> Tuple[Dict[str, np.ndarray], dict]:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
        meta = json.loads(str(z["meta"]))
    return arrays, meta


def build_eval_data(cfg: Optional[EvalConfig] = None, *, force: bool = False,
                    show_progress: bool = True, verbose: bool = False) -> EvalData:
    """The requests/candidates/log arrays of cfg, from the cache or built (and cached)."""
    cfg = cfg or EvalConfig()
    path = cfg.cache_path()
    if path.exists() and not force:
        arrays, meta = load_npz(path)
        if verbose:
            print(f"[poem_eval] loaded {path}", file=sys.stderr)
        return EvalData(arrays, meta, path)
    arrays, meta = _build_arrays(cfg, show_progress)
    save_npz(path, arrays, meta)
    if verbose:
        print(f"[poem_eval] built {path} in {meta['log_report']['build_seconds']} s", file=sys.stderr)
    return EvalData(arrays, meta, path)


def load_eval_data(quick: bool = False, **kw) -> EvalData:
    """Shorthand: ``load_eval_data(quick=True)`` is the test suite's subsample."""
    show = kw.pop("show_progress", True)
    force = kw.pop("force", False)
    return build_eval_data(EvalConfig(quick=quick, **kw), force=force, show_progress=show)


# --------------------------------------------------------------------------------------------------
# command line


def _fmt(x, nd=4):
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m poem_eval.data",
                                 description="Build (or load) the KuaiRand evaluation data, the upstream "
                                             "ranker scores and the floor metrics; print a summary.")
    ap.add_argument("--summary", action="store_true", help="print the summary (default action)")
    ap.add_argument("--quick", action="store_true", help="seeded user subsample (test-suite mode)")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--no-upstream", action="store_true", help="skip the upstream ranker")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    ap.add_argument("--json", help="also write the summary as JSON to this file")
    args = ap.parse_args(argv)

    from . import metrics
    t0 = time.time()
    cfg = EvalConfig(quick=args.quick, seed=args.seed, cache_dir=args.cache_dir)
    data = build_eval_data(cfg, force=args.force, verbose=True)
    t_data = time.time() - t0
    out = {"config_hash": cfg.config_hash(), "cache": str(data.path), "splits": data.summary(),
           "log_report": data.meta["log_report"], "seconds_data": round(t_data, 2)}
    print(f"poem_eval data ({'quick' if cfg.quick else 'full'} mode), {data.path.name}")
    print(f"  {ATTRIBUTION}")
    rep = data.meta["log_report"]
    print("  log: " + ", ".join(f"{k}={v}" for k, v in rep.items() if k != "build_seconds"))
    print(f"  {'split':<11}{'days':>22}{'requests':>10}{'users':>8}{'cands':>10}{'exposed':>9}"
          f"{'exp/req':>8}{'max':>5}{'click':>7}{'lv':>7}")
    for name, s in out["splits"].items():
        days = f"{s['days'][0]}..{s['days'][-1]}" if s["days"] else "-"
        print(f"  {name:<11}{days:>22}{s['requests']:>10}{s['users']:>8}{s['candidates']:>10}{s['exposed']:>9}"
              f"{s['exposed_per_request_mean']:>8.3f}{s['exposed_per_request_max']:>5}"
              f"{s['click_rate']:>7.3f}{s['long_view_rate']:>7.3f}")

    if not args.no_upstream:
        from . import upstream
        t1 = time.time()
        ups = upstream.build_upstream_scores(data, upstream.UpstreamConfig(seed=args.seed), force=args.force,
                                            verbose=True)
        out["seconds_upstream"] = round(time.time() - t1, 2)
        out["upstream"] = ups.report
        print(f"  upstream ranker ({ups.report['train_rows']} training rows, trained in "
              f"{ups.report['train_seconds']} s, scored {ups.report['scored_candidates']} candidates in "
              f"{ups.report['score_seconds']} s):")
        for split, m in ups.report["eval"].items():
            print(f"    {split:<11} " + "  ".join(f"{k}={_fmt(v)}" for k, v in m.items()))
    fl = metrics.floor_report(data)
    out["floor"] = fl
    print(f"  floor on test days (item rates from days {fl['train_days'][0]}..{fl['train_days'][-1]}, "
          f"prior strength m={fl['m']}):")
    print("    " + "  ".join(f"{k}={_fmt(v)}" for k, v in fl["metrics"].items()))
    out["seconds_total"] = round(time.time() - t0, 2)
    print(f"  time: data {t_data:.1f} s, total {out['seconds_total']:.1f} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.json, json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
