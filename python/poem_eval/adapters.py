"""Logs onto the replay's input schema (schema.py): KuaiRand's evaluation data and the demo's sample.

A team with its own logs writes one such function: columns in, ReplayInput.from_columns out
(docs/training.md)."""
from pathlib import Path

import numpy as np

from .data import SPLIT_NAMES, EvalData
from .schema import ReplayInput

SAMPLE_SPLITS = {name: code for code, name in SPLIT_NAMES.items()}


def from_eval_data(data: EvalData, scores: np.ndarray) -> ReplayInput:
    """KuaiRand's requests (request_id: the request's index in `data`), the upstream `scores` (3 x C)
    and one engagement row per exposed candidate. Popularity: data.item_pop_counts (exposures of the
    upstream days); engaged: KuaiRand's click, long view, like or follow labels."""
    R = data.n_requests
    req_time = data.req_time_s.astype(np.int64)  # whole seconds, as served
    exp = np.flatnonzero(data.cand_exposed)
    r_of = data.cand_request[exp]
    requests = dict(request_id=np.arange(R), user=data.req_user_id, time=req_time, split=data.req_split,
                    cand_offsets=data.req_offsets, cand_item=data.cand_item, cand_scores=scores,
                    cand_exposed=data.cand_exposed)
    engagements = dict(
        request_id=r_of, user=data.req_user_id[r_of],
        time=(data.req_time_s[r_of] + data.cand_time_offset_s[exp]).astype(np.int64),
        item=data.cand_item[exp], play_time=data.cand_play_time_s[exp], duration=data.cand_duration_s[exp],
        click=data.cand_click[exp], like=data.cand_like[exp], follow=data.cand_follow[exp],
        engaged=(data.cand_click[exp] + data.cand_long_view[exp] + data.cand_like[exp] + data.cand_follow[exp]) > 0,
        long_view=data.cand_long_view[exp])
    return ReplayInput.from_columns(requests, engagements, popularity=data.item_pop_counts)


def from_sample(path, requests_limit: int = None) -> ReplayInput:
    """The demo's sample directory (requests.csv, sample.py's columns), or its first `requests_limit`
    requests. Popularity: exposures of its upstream requests (the default)."""
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
    e = np.flatnonzero(s["exposed"] > 0)
    engagements = dict(request_id=s["request_id"][e], user=s["user_id"][e], item=s["item_id"][e],
                       time=s["time_s"][e] + s["time_offset_s"][e], play_time=s["play_time_s"][e],
                       duration=s["duration_s"][e], click=s["click"][e], like=s["like"][e], follow=s["follow"][e],
                       engaged=(s["click"][e] + s["long_view"][e] + s["like"][e] + s["follow"][e]) > 0,
                       long_view=s["long_view"][e])
    return ReplayInput.from_columns(requests, engagements)
