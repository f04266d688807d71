"""Logs onto the replay's input schema (schema.py): KuaiRand's evaluation data and the demo's sample.

A team with its own logs writes one such function: columns in, ReplayInput.from_columns out
(docs/training.md)."""
from pathlib import Path

import numpy as np

from .data import SPLIT_NAMES, EvalData
from . import item_stats
from .item_stats import CausalStats
from .schema import ReplayInput

SAMPLE_SPLITS = {name: code for code, name in SPLIT_NAMES.items()}


class CandidateScorer:
    """score_items of the KuaiRand replay: for any items of a request, the upstream model's scores (its
    rows `rows`, default the first three; NaN without a model) and the causal statistics, as the service
    would have computed them."""

    def __init__(self, upstream, stats: CausalStats, user_ids: np.ndarray, rows=(0, 1, 2)):
        self.upstream, self.stats, self.user_ids = upstream, stats, np.asarray(user_ids)
        self.rows = list(rows)

    def __call__(self, users, times, items) -> np.ndarray:
        """Column j: items[j] for users[j] at times[j] (a scalar user or time stands for every item)."""
        items = np.asarray(items, np.int64)
        if self.upstream is None:
            scores = np.full((len(self.rows), len(items)), np.nan, np.float32)
        else:
            scores = self.upstream(np.searchsorted(self.user_ids, users), items)[self.rows]
        return np.concatenate([scores, self.stats.rows(users, times, items)])


def _exposure_time(data: EvalData, exp: np.ndarray) -> np.ndarray:
    """Whole seconds of the exposed candidates `exp`: the request's time plus the exposure's offset."""
    return (data.req_time_s[data.cand_request[exp]] + data.cand_time_offset_s[exp]).astype(np.int64)


def kuairand_stats(data: EvalData) -> CausalStats:
    """The causal statistics of KuaiRand's exposures (its own long-view label, clicks)."""
    exp = np.flatnonzero(data.cand_exposed)
    return CausalStats(data.req_user_id[data.cand_request[exp]], data.cand_item[exp], _exposure_time(data, exp),
                       data.cand_long_view[exp], data.cand_click[exp])


def candidate_side(data: EvalData, stats: CausalStats, cands) -> np.ndarray:
    """The side features (item_stats.NAMES) of the candidates `cands` (an index into data's candidates)
    at their request's time."""
    r = data.cand_request[cands]
    return stats.rows(data.req_user_id[r], data.req_time_s[r].astype(np.int64), data.cand_item[cands])


def from_eval_data(data: EvalData, scores: np.ndarray, upstream=None, side_features: bool = False,
                   score_rows=(0, 1, 2)) -> ReplayInput:
    """KuaiRand's requests (request_id: the request's index in `data`), the upstream `scores`' rows
    `score_rows` (K x C; the evaluation's three by default)
    and one engagement row per exposed candidate. Popularity: data.item_pop_counts (exposures of the
    upstream days); engaged: KuaiRand's click, long view, like or follow labels. With `side_features`,
    every candidate carries item_stats.NAMES (causal statistics of the whole log before its request),
    and the mined negatives get theirs and `upstream`'s scores (upstream.UpstreamScorer) through
    score_items."""
    R = data.n_requests
    req_time = data.req_time_s.astype(np.int64)  # whole seconds, as served
    exp = np.flatnonzero(data.cand_exposed)
    r_of = data.cand_request[exp]
    requests = dict(request_id=np.arange(R), user=data.req_user_id, time=req_time, split=data.req_split,
                    cand_offsets=data.req_offsets, cand_item=data.cand_item,
                    cand_scores=np.ascontiguousarray(scores[list(score_rows)]),
                    cand_exposed=data.cand_exposed)
    score_items = None
    if side_features:
        stats = kuairand_stats(data)
        requests["cand_side"] = candidate_side(data, stats, slice(None))
        score_items = CandidateScorer(upstream, stats, data.user_ids, score_rows)
    engagements = dict(
        request_id=r_of, user=data.req_user_id[r_of],
        time=_exposure_time(data, exp),
        item=data.cand_item[exp], play_time=data.cand_play_time_s[exp], duration=data.cand_duration_s[exp],
        click=data.cand_click[exp], like=data.cand_like[exp], follow=data.cand_follow[exp],
        engaged=(data.cand_click[exp] + data.cand_long_view[exp] + data.cand_like[exp] + data.cand_follow[exp]) > 0,
        long_view=data.cand_long_view[exp])
    return ReplayInput.from_columns(requests, engagements, popularity=data.item_pop_counts, score_items=score_items)


def from_sample(path, requests_limit: int = None, side_features: bool = False) -> ReplayInput:
    """The demo's sample directory (requests.csv, sample.py's columns), or its first `requests_limit`
    requests; with `side_features`, its side columns as cand_side. Popularity: exposures of its upstream
    requests (the default). No score_items: the mined negatives' scores are unknown."""
    from .sample import read_sample
    s = read_sample(Path(path))
    rid = s["request_id"]
    starts = np.flatnonzero(np.r_[True, rid[1:] != rid[:-1]])
    if requests_limit is not None and requests_limit < len(starts):
        s = {k: v[:starts[requests_limit]] for k, v in s.items()}
        starts = starts[:requests_limit]
    n = len(s["request_id"])
    offsets = np.r_[starts, n]
    split = np.array([SAMPLE_SPLITS[x] for x in s["split"][starts]], np.int8)
    requests = dict(request_id=s["request_id"][starts], user=s["user_id"][starts], time=s["time_s"][starts],
                    split=split, cand_offsets=offsets, cand_item=s["item_id"],
                    cand_scores=np.stack([s["p_click"], s["p_long_view"], s["pred_watch_s"]]),
                    cand_exposed=s["exposed"])
    if side_features:
        requests["cand_side"] = np.stack([s[c] for c in item_stats.NAMES])
    e = np.flatnonzero(s["exposed"] > 0)
    engagements = dict(request_id=s["request_id"][e], user=s["user_id"][e], item=s["item_id"][e],
                       time=s["time_s"][e] + s["time_offset_s"][e], play_time=s["play_time_s"][e],
                       duration=s["duration_s"][e], click=s["click"][e], like=s["like"][e], follow=s["follow"][e],
                       engaged=(s["click"][e] + s["long_view"][e] + s["like"][e] + s["follow"][e]) > 0,
                       long_view=s["long_view"][e])
    return ReplayInput.from_columns(requests, engagements)
