"""A KuaiRand-grounded simulation of POEM's mechanism (docs/simulation.md): real candidate lists and an
upstream ranker that sees the user's current interest, fed through the real-log evaluation's pipeline.

    make simulation                                          # the full sweep, docs/simulation*
    PYTHONPATH=build/dispatch/python:python /usr/bin/python3 -m poem_eval.simulation --quick
    ... -m poem_eval.simulation --diagnose   # longer training, hidden features, tag-set ids (docs/simulation.md)
    ... -m poem_eval.simulation --replot     # the plot and tables again from docs/simulation_results.json

What comes from KuaiRand-Pure: the items (tags, duration), each item's long-view and click rates
(its quality), the users (those with enough exposures), their interests (tags of their long-viewed
items), the time of every request (one simulated request per logged exposure, at its time), and the
engagement rates the simulation is calibrated to. What is simulated: the drift of each user's current
interest, retrieval, the upstream ranker's scores, exposure and feedback.

Sweep: drift x informativeness, POEM against the chronological baseline (train.py), several seeds;
the seed is the simulation's and the training's. Every random draw has its own stream, so cells of one
seed share retrieval, noise and uniforms: cells differ only where drift or informativeness acts.
"""
import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from . import metrics
from .data import ATTRIBUTION, LICENSE, EvalConfig, load_log, progress, sessionize
from .files import replace_atomically, write_text
from .schema import SPLIT_TEST, SPLIT_TRAIN, SPLIT_WARMUP, ReplayInput

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LONG_VIEW_SECONDS = 10.0  # poem.EngagementConfig's default rule: play >= min(duration, 10 s)

# Independent random streams (np.random.default_rng([seed, stream])).
S_DRIFT, S_UPSTREAM, S_ITEM_NOISE, S_RETRIEVAL, S_FEEDBACK, S_USERS, S_PLAY = range(1, 8)


@dataclasses.dataclass(frozen=True)
class SimConfig:
    drift: float = 0.0             # stationary std of the log-interest deviation (0: interests fixed)
    informativeness: float = 0.0   # weight of the current interest in the upstream scores (0: none)
    n_users: int = 800             # drawn from the users with >= min_exposures logged exposures
    min_exposures: int = 20
    min_item_exposures: int = 5    # items: with a duration and >= this many logged exposures
    n_similar: int = 100           # candidates retrieved by the user's long-term interest
    n_popular: int = 100           # candidates retrieved by popularity
    exposed: int = 4               # top of the fused order shown per request
    rho_request: float = 0.7       # persistence of the interest deviation from one request to the next
    rho_session: float = 0.3       # ... across a session boundary (a gap over 300 s)
    interest_prior: float = 5.0    # pseudo-count of the population's tag mix in a user's interest
    upstream_noise: float = 0.5    # std of the noise on the upstream's view of the current interest (log)
    item_noise: float = 0.3        # std of the upstream's error on each item's quality (logit)
    retrieval_temperature: float = 1.0
    similar_pool: int = 400        # a user's items of highest long-term lift, retrieval's first pool
    popular_pool: int = 1500       # the most exposed items, retrieval's second pool
    beta: float = 1.0              # effect of the interest lift on the engagement logits
    warmup_days: tuple = (20220425, 20220426)
    train_days: tuple = (20220427, 20220428, 20220429, 20220430, 20220501, 20220502)
    test_days: tuple = (20220503, 20220504)
    seed: int = 0


# --------------------------------------------------------------------------------------------------
# The world fitted to the log: items, users and the log's marginals (independent of the cell and seed)


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def fit_world(cfg: SimConfig = SimConfig(), eval_cfg: EvalConfig = None) -> SimpleNamespace:
    """Items (tag mix, duration, click and long-view quality), users (interest, request times, dates) and
    the log's marginals. Long view is the engagement rule's (play >= min(duration, 10 s)) throughout, so
    the simulated label and the pipeline's strong positives agree."""
    eval_cfg = eval_cfg or EvalConfig()
    df, _ = load_log(eval_cfg)
    feats = pd.read_csv(Path(eval_cfg.data_dir) / eval_cfg.features_file, dtype={"tag": str})
    play, dur = df.play_time_ms.to_numpy() / 1000.0, df.duration_ms.to_numpy() / 1000.0
    lv = (dur > 0) & (play >= np.minimum(dur, LONG_VIEW_SECONDS))
    click = df.is_click.to_numpy().astype(bool)
    vid = df.video_id.to_numpy()

    # Items: a duration and enough exposures to estimate a rate. Topic: the tag multi-hot, rows summing
    # to 1 (an item without a tag gets its own topic).
    tags = feats.tag.fillna("").str.split(",").map(lambda l: [t for t in l if t])
    tag_names = sorted({t for l in tags for t in l}, key=int) + ["none"]
    col = {t: k for k, t in enumerate(tag_names)}
    fdur = feats.video_duration.to_numpy(dtype=np.float64) / 1000.0
    n_exp = np.bincount(vid, minlength=len(feats))[:len(feats)]
    keep = np.flatnonzero((n_exp >= cfg.min_item_exposures) & (fdur > 0))
    video_ids = feats.video_id.to_numpy()[keep]
    dense = np.full(int(max(vid.max(), video_ids.max())) + 1, -1, np.int64)
    dense[video_ids] = np.arange(len(keep))
    V = np.zeros((len(keep), len(tag_names)))
    for k, i in enumerate(keep):
        ts = tags.iloc[i] or ["none"]
        for t in ts:
            V[k, col[t]] += 1.0 / len(ts)
    used = V.sum(0) > 0
    V, tag_names = V[:, used], [t for t, u in zip(tag_names, used) if u]
    item = dense[vid]
    known = item >= 0
    m = 20.0  # the floor's smoothing (metrics.smoothed_item_rate)
    lv_rate, click_rate = lv[known].mean(), click[known].mean()
    n_i = np.bincount(item[known], minlength=len(keep))
    def rate(y, r):
        return (np.bincount(item[known], weights=y[known], minlength=len(keep)) + m * r) / (n_i + m)
    q_lv, q_click = _logit(rate(lv, lv_rate)) - _logit(lv_rate), _logit(rate(click, click_rate)) - _logit(click_rate)
    pop = n_i.astype(np.float64)
    g = (pop[:, None] * V).sum(0) / pop.sum()  # the population's tag mix: exposure-weighted

    # Users: enough exposures; interest = tags of their long-viewed (known) items, smoothed toward g.
    users_all = df.user_id.to_numpy()
    per_user = np.bincount(users_all)
    heavy = np.flatnonzero(per_user >= cfg.min_exposures)
    sel = np.isin(users_all, heavy)
    order = np.flatnonzero(sel)  # df is sorted by (user, time)
    u_codes, u_start = np.unique(users_all[order], return_index=True)
    interest = np.zeros((len(u_codes), len(tag_names)))
    w = (lv & known)[order]
    ucode = np.searchsorted(u_codes, users_all[order])
    np.add.at(interest, ucode[w], V[item[order][w]])
    n_lv = np.bincount(ucode[w], minlength=len(u_codes))
    interest = (interest + cfg.interest_prior * g) / (n_lv + cfg.interest_prior)[:, None]
    times = (df.time_ms.to_numpy()[order] // 1000).astype(np.int64)
    dates = df.date.to_numpy()[order].astype(np.int64)
    bounds = np.r_[u_start, len(order)]
    sess = sessionize(users_all[order], df.time_ms.to_numpy()[order], 300.0)
    new_session = np.r_[True, sess[1:] != sess[:-1]]

    sess_all = sessionize(users_all, df.time_ms.to_numpy(), 300.0)
    marg = {"log_exposures": int(len(df)), "log_users": int(len(per_user[per_user > 0])),
            "log_click_rate": float(click.mean()), "log_long_view_rate_rule": float(lv.mean()),
            "log_long_view_rate_label": float(df.long_view.mean()),
            "log_like_rate": float(df.is_like.mean()), "log_follow_rate": float(df.is_follow.mean()),
            "log_exposures_per_user": float(len(df) / (per_user > 0).sum()),
            "log_exposures_per_session": float(len(df) / len(np.unique(sess_all))),
            "heavy_users": int(len(u_codes)), "heavy_exposures_per_user": float(len(order) / len(u_codes)),
            "heavy_sessions_per_user": float(new_session.sum() / len(u_codes)),
            "heavy_click_rate": float(click[order].mean()), "heavy_long_view_rate_rule": float(lv[order].mean()),
            "items": int(len(keep)), "tags": len(tag_names), "item_lv_rate": float(lv_rate),
            "item_click_rate": float(click_rate)}
    # Each item's tags as (index, weight) triples, for the lifts of a few hundred candidates at a time.
    nz = [np.flatnonzero(r) for r in V]
    width = max(len(x) for x in nz)
    tag_idx = np.zeros((len(V), width), np.int64)
    tag_w = np.zeros((len(V), width))
    for k, x in enumerate(nz):
        tag_idx[k, :len(x)], tag_w[k, :len(x)] = x, V[k, x]
    like_rate, follow_rate = df.is_like.to_numpy()[order].mean(), df.is_follow.to_numpy()[order].mean()
    heavy_lv = lv[order].mean()
    # An item's tag set as one id (1..): what the diagnosis's "tag ids" arm embeds instead of the item.
    _, topic_id = np.unique(np.round(V, 6), axis=0, return_inverse=True)
    return SimpleNamespace(topic_id=topic_id.reshape(-1) + 1, tag_idx=tag_idx, tag_w=tag_w, log_gV=np.log(V @ g),
                           like_given_lv=like_rate / heavy_lv,
                           follow_given_lv=follow_rate / heavy_lv, V=V, g=g, q_lv=q_lv, q_click=q_click,
                           duration=fdur[keep], pop=pop,
                           video_ids=video_ids, tag_names=tag_names, interest=interest, user_ids=u_codes,
                           bounds=bounds, times=times, dates=dates, new_session=new_session, marginals=marg,
                           targets={"click": float(click[order].mean()), "long_view": float(lv[order].mean()),
                                    "like": float(df.is_like.to_numpy()[order].mean()),
                                    "follow": float(df.is_follow.to_numpy()[order].mean())})


# --------------------------------------------------------------------------------------------------
# The simulation proper


def _rank_pct(x):
    """Row-wise rank percentile in [0, 1] (higher x, higher pct), ties broken by position."""
    order = np.argsort(x, axis=1, kind="stable")
    r = np.empty_like(order)
    np.put_along_axis(r, order, np.arange(x.shape[1])[None, :], 1)
    return r / max(x.shape[1] - 1, 1)


def _lift(world, c, cand):
    """log(c . v_i / g . v_i) for the candidates `cand` [A, N] of rows with interest `c` [A, T]: how much
    more than the population this interest likes the item's tags."""
    idx, w = world.tag_idx[cand], world.tag_w[cand]              # [A, N, 3]
    cv = (np.take_along_axis(c, idx.reshape(len(c), -1), 1).reshape(idx.shape) * w).sum(-1)
    return np.log(cv) - world.log_gV[cand]


def simulate(world, cfg: SimConfig, offsets=(0.0, 0.0), users=None, keep_truth: bool = False) -> dict:
    """Every request of the chosen users, step by step in parallel over users (a user's k-th request at
    step k). `offsets`: the intercepts (click, long view) added to the logits, from calibrate().
    Returns one row per request in (user, step) order: user (index into `users`), step, and [rows, N]
    arrays of the candidates (item, upstream scores, exposure, feedback; true_lift with keep_truth)."""
    W = world
    if users is None:
        rng_users = np.random.default_rng([cfg.seed, S_USERS])
        users = np.sort(rng_users.choice(len(W.user_ids), size=min(cfg.n_users, len(W.user_ids)), replace=False))
    U, T, I = len(users), W.V.shape[1], W.V.shape[0]
    counts = W.bounds[users + 1] - W.bounds[users]
    S = int(counts.max())
    N = cfg.n_similar + cfg.n_popular
    rd = np.random.default_rng([cfg.seed, S_DRIFT])
    ru = np.random.default_rng([cfg.seed, S_UPSTREAM])
    rr = np.random.default_rng([cfg.seed, S_RETRIEVAL])
    rf = np.random.default_rng([cfg.seed, S_FEEDBACK])
    rp = np.random.default_rng([cfg.seed, S_PLAY])
    item_err = np.random.default_rng([cfg.seed, S_ITEM_NOISE]).normal(0, cfg.item_noise, size=(2, I))
    qc_up, ql_up = W.q_click + item_err[0], W.q_lv + item_err[1]
    log_b = np.log(W.interest[users])                # [U, T] long-term interest (fixed)
    # Retrieval pools: each user's items of highest long-term lift (the stale interest) and the most
    # popular items; each request draws from them without replacement (Gumbel top-k).
    base_lift = np.log(W.interest[users] @ W.V.T) - W.log_gV[None, :]   # [U, I]
    pool_sim = np.argsort(-base_lift, axis=1, kind="stable")[:, :cfg.similar_pool]
    pool_sim_score = np.take_along_axis(base_lift, pool_sim, 1)
    del base_lift
    log_pop = 0.75 * np.log1p(W.pop)
    pool_pop = np.argsort(-log_pop, kind="stable")[:cfg.popular_pool]
    a = rd.normal(0, 1, size=(U, T)) * cfg.drift     # stationary start
    a_c, a_l = offsets
    names = ("item", "p_click", "p_lv", "watch", "exposed", "click", "lv", "like", "follow", "play", "interest_up") + \
        (("true_lift", "interest") if keep_truth else ())
    out = {k: [] for k in names + ("user", "step")}
    for s in range(S):
        act = np.flatnonzero(counts > s)     # users with a request at step s
        A = len(act)
        rows = np.arange(A)[:, None]
        # Drift: an AR(1) deviation of the log-interest, stationary std = drift, faster across sessions.
        if s > 0:
            rho = np.where(W.new_session[W.bounds[users[act]] + s], cfg.rho_session, cfg.rho_request)[:, None]
            a[act] = rho * a[act] + np.sqrt(1 - rho ** 2) * cfg.drift * rd.normal(0, 1, size=(A, T))
        z = log_b[act] + a[act]
        c = np.exp(z - z.max(1, keepdims=True))
        c /= c.sum(1, keepdims=True)
        # Retrieval: interest-similar items by the long-term interest, then popular ones not yet taken.
        k = np.argpartition(-(pool_sim_score[act] + cfg.retrieval_temperature * rr.gumbel(size=(A, cfg.similar_pool))),
                            cfg.n_similar, axis=1)[:, :cfg.n_similar]
        sim = pool_sim[act[:, None], k]
        taken = np.zeros((A, I), bool)
        taken[rows, sim] = True
        pop_score = log_pop[pool_pop][None, :] + rr.gumbel(size=(A, len(pool_pop)))
        pop_score[taken[:, pool_pop]] = -np.inf
        popular = pool_pop[np.argpartition(-pop_score, cfg.n_popular, axis=1)[:, :cfg.n_popular]]
        cand = np.concatenate([sim, popular], axis=1)          # [A, N], distinct per row
        # Upstream: item quality (with its estimation error) plus, weighted by informativeness, the lift
        # under a noisy view of the current interest. informativeness 0: a function of the item alone.
        z_up = z + cfg.upstream_noise * ru.normal(0, 1, size=(A, T))
        c_up = np.exp(z_up - z_up.max(1, keepdims=True))
        c_up /= c_up.sum(1, keepdims=True)
        p_click, p_lv, watch = upstream_scores(W, cfg, offsets, qc_up, ql_up, c_up, cand)
        dur = W.duration[cand]
        need = np.minimum(dur, LONG_VIEW_SECONDS)
        # Exposure: the top of the weighted rank fusion (click 1, long view 2, watch 1), as pipeline.py fuses.
        fused = _rank_pct(p_click) + 2 * _rank_pct(p_lv) + _rank_pct(watch)
        top = np.argsort(-fused, axis=1, kind="stable")[:, :cfg.exposed]
        exposed = np.zeros((A, N), bool)
        exposed[rows, top] = True
        # Feedback from the true current interest and the item's quality; one uniform per candidate couples
        # click and long view (a long view without a click is rare in the log).
        lift = _lift(W, c, cand)
        pc = _sigmoid(a_c + W.q_click[cand] + cfg.beta * lift)
        pl = _sigmoid(a_l + W.q_lv[cand] + cfg.beta * lift)
        uni = rf.random(size=(A, N))
        clk, lv = exposed & (uni < pc), exposed & (uni < pl)
        like = lv & (rf.random(size=(A, N)) < W.like_given_lv)
        follow = lv & (rf.random(size=(A, N)) < W.follow_given_lv)
        v = rp.random(size=(A, N))
        play = np.where(lv, need + v * (1.2 * dur - need), 0.95 * v * need) * exposed
        for name, x in (("item", cand), ("p_click", p_click), ("p_lv", p_lv), ("watch", watch),
                        ("exposed", exposed), ("click", clk), ("lv", lv), ("like", like), ("follow", follow),
                        ("play", play), ("interest_up", c_up), ("true_lift", lift), ("interest", c), ("user", act),
                        ("step", np.full(A, s))):
            if name in out:
                out[name].append(x.astype(np.float32) if x.dtype == np.float64 else x)
    out = {k: np.concatenate(v) for k, v in out.items()}
    order = np.lexsort((out["step"], out["user"]))  # (user, step): the logged exposures' order
    out = {k: v[order] for k, v in out.items()}
    out["users"] = users
    out["counts"] = counts
    out["quality_up"], out["offsets"] = (qc_up, ql_up), offsets
    return out


def upstream_scores(W, cfg: SimConfig, offsets, qc_up, ql_up, c_up, cand):
    """The upstream's three scores of items `cand` [A, N] for rows whose view of the current interest is
    `c_up` [A, T]: item quality (with its estimation error) plus, weighted by informativeness, the lift
    under that view. informativeness 0: a function of the item alone."""
    lift_up = _lift(W, c_up, cand)
    p_click = _sigmoid(offsets[0] + qc_up[cand] + cfg.beta * cfg.informativeness * lift_up)
    p_lv = _sigmoid(offsets[1] + ql_up[cand] + cfg.beta * cfg.informativeness * lift_up)
    dur = W.duration[cand]
    need = np.minimum(dur, LONG_VIEW_SECONDS)
    return p_click, p_lv, p_lv * dur + (1 - p_lv) * 0.5 * need


class SimScorer:
    """score_items of the simulation's replay: the upstream's scores of any items for a request, from
    the same view of the user's current interest it scored the request's candidates with (so the mined
    negatives join their request as candidates like on the real log)."""

    def __init__(self, world, cfg: SimConfig, offsets, quality_up, interest_up, user, time):
        self.world, self.cfg, self.offsets, self.quality_up = world, cfg, offsets, quality_up
        self.interest_up = interest_up
        # (user, time) -> request; two requests of a user in one second share the later one's view
        self.row = {(int(u), int(t)): r for r, (u, t) in enumerate(zip(user, time))}

    def __call__(self, users, times, items) -> np.ndarray:
        """Column j: items[j] for users[j] at times[j] (a scalar user or time stands for every item)."""
        cand = np.asarray(items, np.int64)[:, None]
        at = np.stack([np.broadcast_to(np.asarray(x, np.int64), len(cand)) for x in (users, times)], axis=1)
        keys, which = np.unique(at, axis=0, return_inverse=True)
        rows = np.array([self.row[(int(u), int(t))] for u, t in keys], np.int64)[which.reshape(-1)]
        c_up = self.interest_up[rows]
        return np.stack(upstream_scores(self.world, self.cfg, self.offsets, *self.quality_up, c_up, cand))[:, :, 0]


def calibrate(world, cfg: SimConfig, n_users: int = 200, passes: int = 2):
    """Intercepts (click, long view) that make the exposures' engagement rates match the log's heavy
    users' rates. Exposure hardly depends on the intercepts (a common shift of the upstream logits keeps
    the order but for the watch score), so each pass simulates a pilot of n_users (a fixed seed, the same
    for every seed of a cell) and solves the rate equation on its exposures by bisection."""
    pilot = dataclasses.replace(cfg, n_users=n_users, seed=10_000)
    off = np.zeros(2)
    for _ in range(passes):
        sim = simulate(world, pilot, tuple(off), keep_truth=True)
        e = sim["exposed"]
        it, tl = sim["item"][e], sim["true_lift"][e].astype(np.float64)
        for j, (q, target) in enumerate(((world.q_click, world.targets["click"]),
                                         (world.q_lv, world.targets["long_view"]))):
            x = q[it] + cfg.beta * tl
            lo, hi = -20.0, 20.0
            for _ in range(60):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if _sigmoid(mid + x).mean() < target else (lo, mid)
            off[j] = (lo + hi) / 2
    return tuple(float(x) for x in off)


def replay_order(world, sim) -> np.ndarray:
    """The simulation's rows in the replay's order: global time (ties: by user, then step)."""
    t = world.times[world.bounds[sim["users"][sim["user"]]] + sim["step"]]
    return np.lexsort((sim["step"], sim["user"], t))


def to_replay_input(world, cfg: SimConfig, sim: dict) -> ReplayInput:
    """The simulation as the replay's input: one request per valid step, its N candidates with the three
    upstream scores, engagement rows for the exposed ones. Split by the logged request's date."""
    W = world
    order = replay_order(world, sim)
    uu, ss = sim["user"][order], sim["step"][order]
    idx = W.bounds[sim["users"][uu]] + ss
    t, date = W.times[idx], W.dates[idx]
    R, N = len(uu), sim["item"].shape[1]
    split = np.full(R, -1, np.int64)
    split[np.isin(date, cfg.warmup_days)] = SPLIT_WARMUP
    split[np.isin(date, cfg.train_days)] = SPLIT_TRAIN
    split[np.isin(date, cfg.test_days)] = SPLIT_TEST
    g = lambda k: sim[k][order].reshape(-1)  # noqa: E731  [R * N], request-major
    exposed = g("exposed")
    scores = np.stack([g("p_click"), g("p_lv"), g("watch")]).astype(np.float32)
    requests = dict(request_id=np.arange(R), user=uu, time=t, split=split, cand_offsets=np.arange(R + 1) * N,
                    cand_item=g("item"), cand_scores=scores, cand_exposed=exposed)
    e = np.flatnonzero(exposed)
    r_of = e // N
    items = g("item")[e]
    click, lv, like, follow = g("click")[e], g("lv")[e], g("like")[e], g("follow")[e]
    engagements = dict(request_id=r_of, user=uu[r_of], item=items, time=t[r_of], play_time=g("play")[e],
                       duration=W.duration[items].astype(np.float32), click=click, like=like, follow=follow,
                       engaged=click | lv | like | follow, long_view=lv)
    scorer = SimScorer(W, cfg, sim["offsets"], sim["quality_up"], sim["interest_up"][order], uu, t)
    return ReplayInput.from_columns(requests, engagements, n_items=W.V.shape[0], score_items=scorer)


# --------------------------------------------------------------------------------------------------
# One cell and seed: simulate, replay, train, score


def _floor(inp: ReplayInput, lab, test_c):
    """Each item's smoothed rate from the exposures of the warm-up and train requests (the floor)."""
    rq = inp.requests
    cand_split = np.repeat(rq["split"], np.diff(rq["cand_offsets"]))
    tr = lab.cand_exposed.astype(bool) & ((cand_split == SPLIT_WARMUP) | (cand_split == SPLIT_TRAIN))
    items_tr, items_te = rq["cand_item"][tr], rq["cand_item"][test_c]
    p_click = metrics.smoothed_item_rate(items_tr, lab.cand_click[tr], items_te)
    p_lv = metrics.smoothed_item_rate(items_tr, lab.cand_long_view[tr], items_te)
    wt = np.expm1(metrics.smoothed_item_rate(items_tr, np.log1p(lab.cand_play_time_s[tr]), items_te))
    return p_click, p_lv, wt


def _score(lab, c, p_click, p_lv, watch):
    return metrics.evaluate(lab.cand_user[c], lab.cand_click[c], lab.cand_long_view[c], lab.cand_play_time_s[c],
                            p_click, p_lv, np.maximum(watch, 0.0))


def train_and_score(inputs: dict, lab, variants, tc, seed: int, hide_scores: bool = False, ids=None):
    """train.train_variant and train.evaluate for each variant: (metrics, loss summary) per variant.
    hide_scores: every candidate feature (all derived from the upstream scores of the request itself) set
    to 0, for training and test alike, so that the upstream's view reaches a model only through the
    partial-order sequence and the training pairs. ids: an array item -> the id the model embeds (the
    item's tag set, in the diagnosis), applied to candidates and both sequences alike."""
    from .train import evaluate, train_variant
    if hide_scores:
        inputs = {k: dict(v, row_feats=np.zeros_like(v["row_feats"])) for k, v in inputs.items()}
    if ids is not None:
        ids = np.asarray(ids, np.uint64)
        inputs = {k: dict(v, **{f: ids[v[f].astype(np.int64)] for f in ("row_item", "po_ids", "ch_ids")})
                  for k, v in inputs.items()}
    models, loss = {}, {}
    for v in variants:
        model, batches, hist, _ = train_variant(v, inputs, lab, tc, seed, log=lambda *a: None)
        m = evaluate(model, batches, lab, inputs["pareto"])
        m.pop("long_history", None)
        models[v] = m
        h = np.array(hist)
        k = max(1, len(h) // 10)
        tot = h[:, 1] + h[:, 2]
        loss[v] = {"first": float(tot[:k].mean()), "last": float(tot[-k:].mean()), "steps": len(h)}
    return models, loss


def run_cell(world, cfg: SimConfig, variants, tc, offsets=None, keep=False) -> dict:
    """Simulate one cell and seed, build the pipeline's inputs, train and score every variant."""
    from .pipeline import PipelineConfig, training_inputs
    t0 = time.time()
    offsets = offsets if offsets is not None else calibrate(world, cfg)
    sim = simulate(world, cfg, offsets, keep_truth=True)
    inp = to_replay_input(world, cfg, sim)
    t_sim = time.time() - t0
    inputs = {"pareto": training_inputs(inp, PipelineConfig(seed=cfg.seed))}
    t_replay = time.time() - t0 - t_sim
    lab = inp.labels()
    rq = inp.requests
    cand_split = np.repeat(rq["split"], np.diff(rq["cand_offsets"]))
    test_c = np.flatnonzero(lab.cand_exposed.astype(bool) & (cand_split == SPLIT_TEST))
    exp_all = lab.cand_exposed.astype(bool)
    res = {"cell": {"drift": cfg.drift, "informativeness": cfg.informativeness, "seed": cfg.seed},
           "offsets": list(offsets), "counts": inputs["pareto"]["counts"],
           "requests": {str(k): int((rq["split"] == k).sum()) for k in (0, 1, 2)},
           "rates": {"click": float(lab.cand_click[exp_all].mean()),
                     "long_view": float(lab.cand_long_view[exp_all].mean()),
                     "like": float(inp.derived["cand_like"][exp_all].mean()),
                     "follow": float(inp.derived["cand_follow"][exp_all].mean())},
           "floor": _score(lab, test_c, *_floor(inp, lab, test_c)),
           "upstream": _score(lab, test_c, rq["cand_scores"][0, test_c], rq["cand_scores"][1, test_c],
                              rq["cand_scores"][2, test_c])}
    # The oracle: the true engagement probabilities (the ceiling no model can pass in expectation).
    tl = sim["true_lift"][replay_order(world, sim)].reshape(-1)[test_c]
    it = rq["cand_item"][test_c]
    res["oracle"] = _score(lab, test_c, _sigmoid(offsets[0] + world.q_click[it] + cfg.beta * tl),
                           _sigmoid(offsets[1] + world.q_lv[it] + cfg.beta * tl), rq["cand_scores"][2, test_c])
    res["models"], res["loss"] = train_and_score(inputs, lab, variants, tc, cfg.seed)
    res["seconds"] = {"simulate": t_sim, "replay": t_replay, "total": time.time() - t0}
    if keep:
        res["_sim"], res["_inp"], res["_inputs"] = sim, inp, inputs
    return res


def sequence_readout(world, inp: ReplayInput, inputs: dict) -> dict:
    """What each sequence tells about the current interest, without a model: the tag mix of a test
    request's partial-order tokens (each weighted by its rank percentile in its own request) or of its
    chronological tokens (engaged items), scored as each exposed candidate's lift under that mix. The
    GAUC of these readouts against long view says how much of the user's current interest each
    sequence holds."""
    out = inputs["pareto"]
    te = np.flatnonzero(~out["is_train"])
    rq = inp.requests
    W = world
    res = {}
    ro = out["row_offsets"]
    rows = np.concatenate([np.arange(ro[m], ro[m + 1]) for m in te])
    m_of_row = np.repeat(te, ro[te + 1] - ro[te])
    cands = out["row_cand"][rows]
    items = rq["cand_item"][cands]
    lab = inp.labels()
    for name, ids, weight in (("partial_order", out["po_ids"], out["po_feats"][..., 1] * out["po_mask"]),
                              ("chronological", out["ch_ids"], out["ch_mask"].astype(np.float32))):
        seq = ids[te].astype(np.int64)
        w = weight[te].astype(np.float64)
        mix = np.einsum("ml,mlt->mt", w, W.V[np.minimum(seq, W.V.shape[0] - 1)])
        mix = (mix + 1e-3 * W.g) / (mix.sum(1, keepdims=True) + 1e-3)
        pos = np.searchsorted(te, m_of_row)
        score = np.log((mix[pos] * W.V[items]).sum(1)) - W.log_gV[items]
        res[name] = metrics.gauc(lab.cand_user[cands], lab.cand_long_view[cands], score)
    return res


# --------------------------------------------------------------------------------------------------
# The sweep

DRIFTS = (0.0, 0.75, 1.5)
INFORMATIVENESS = (0.0, 0.5, 1.0)
VARIANTS_RUN = ("poem", "chrono_baseline", "pointwise")
# Paired differences: POEM against the baseline, and its two halves: what the partial-order sequence adds
# alone (pointwise - chrono_baseline: the same pointwise loss, one sequence more) and what the pairwise
# loss on hierarchical tiers and mined negatives adds on top (poem - pointwise).
DIFFS = (("poem", "chrono_baseline"), ("pointwise", "chrono_baseline"), ("poem", "pointwise"))
METRICS = (("auc_long_view", "AUC long view"), ("gauc_long_view", "GAUC long view"),
           ("auc_click", "AUC click"), ("gauc_click", "GAUC click"))
FULL = dict(n_users=250, epochs=3, batch=64, seeds=(0, 1, 2, 3, 4),
            cells=[(d, i) for d in DRIFTS for i in INFORMATIVENESS])
QUICK = dict(n_users=200, epochs=3, batch=32, seeds=(0,), cells=[(0.75, 1.0)])


def _stats(x) -> dict:
    x = np.asarray(x, np.float64)
    n = len(x)
    sd = float(x.std(ddof=1)) if n > 1 else float("nan")
    t = float(x.mean() / (sd / math.sqrt(n))) if n > 1 and sd > 0 else float("nan")
    return {"mean": float(x.mean()), "sd": sd, "min": float(x.min()), "max": float(x.max()), "n": n, "t": t,
            "positive": int((x > 0).sum())}


def summarise(runs) -> list:
    """Per cell: each variant's and reference's mean and spread, and the paired POEM - baseline
    difference per seed (mean, sd, t = mean / (sd / sqrt(n)), how many seeds POEM won)."""
    cells = {}
    for r in runs:
        cells.setdefault((r["cell"]["drift"], r["cell"]["informativeness"]), []).append(r)
    out = []
    for (d, i), rs in sorted(cells.items()):
        row = {"drift": d, "informativeness": i, "seeds": [r["cell"]["seed"] for r in rs]}
        for m, _ in METRICS:
            for name in VARIANTS_RUN:
                row[f"{name}/{m}"] = _stats([r["models"][name][m] for r in rs])
            for ref in ("floor", "upstream", "oracle"):
                row[f"{ref}/{m}"] = _stats([r[ref][m] for r in rs])
            for a, b in DIFFS:
                row[f"{a}-{b}/{m}"] = _stats([r["models"][a][m] - r["models"][b][m] for r in rs])
        for k in ("partial_order", "chronological"):
            row[f"readout/{k}"] = _stats([r["readout"][k] for r in rs])
        out.append(row)
    return out


def table(summary) -> str:
    """The results table (markdown)."""
    f = lambda s: f"{s['mean']:.4f} ± {s['sd']:.4f}" if s["n"] > 1 else f"{s['mean']:.4f}"  # noqa: E731
    g = lambda s: (f"{s['mean']:+.4f} (t {s['t']:+.1f}, {s['positive']}/{s['n']})" if s["n"] > 1  # noqa: E731
                   else f"{s['mean']:+.4f}")
    lines = []
    for m, label in METRICS:
        lines += [f"**{label}** (test exposures; mean ± sd over seeds; paired differences per seed: mean, t, "
                  "seeds where the first won)", "",
                  "| drift | inform. | poem | chrono_baseline | pointwise | poem − baseline | "
                  "pointwise − baseline | "
                  "poem − pointwise | floor | upstream | oracle |", "|---" * 11 + "|"]
        for row in summary:
            lines.append(f"| {row['drift']} | {row['informativeness']} | "
                         + " | ".join(f(row[f"{v}/{m}"]) for v in VARIANTS_RUN) + " | "
                         + " | ".join(g(row[f"{a}-{b}/{m}"]) for a, b in DIFFS) + " | "
                         + " | ".join(f(row[f"{ref}/{m}"]) for ref in ("floor", "upstream", "oracle")) + " |")
        lines.append("")
    lines += ["**What the sequences hold**: GAUC of long view when each test exposure is scored by its lift "
              "under the tag mix of the request's partial-order tokens (weighted by rank pct) or of its "
              "chronological tokens (no model)", "",
              "| drift | informativeness | partial-order readout | chronological readout |", "|---|---|---|---|"]
    for row in summary:
        lines.append(f"| {row['drift']} | {row['informativeness']} | {f(row['readout/partial_order'])} | "
                     f"{f(row['readout/chronological'])} |")
    return "\n".join(lines) + "\n"


def plot(summary, path: Path) -> None:
    """Heatmaps of paired long-view gains per cell (POEM - baseline on GAUC and AUC; the partial-order
    sequence alone, pointwise - baseline, on GAUC), and per-cell GAUC with error bars."""
    import io
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    drifts = sorted({r["drift"] for r in summary})
    infos = sorted({r["informativeness"] for r in summary})
    fig, axes = plt.subplots(1, 4, figsize=(21, 4.8), gridspec_kw={"width_ratios": [1, 1, 1, 1.7]})
    panels = (("poem-chrono_baseline/gauc_long_view", "POEM − baseline, long-view GAUC"),
              ("poem-chrono_baseline/auc_long_view", "POEM − baseline, long-view AUC"),
              ("pointwise-chrono_baseline/gauc_long_view",
               "partial-order sequence alone\n(pointwise − baseline), GAUC"))
    lim = max(1e-3, max(abs(r[k]["mean"]) for k, _ in panels for r in summary))
    for ax, (key, title) in zip(axes, panels):
        grid = np.full((len(drifts), len(infos)), np.nan)
        tt = np.full_like(grid, np.nan)
        for r in summary:
            grid[drifts.index(r["drift"]), infos.index(r["informativeness"])] = r[key]["mean"]
            tt[drifts.index(r["drift"]), infos.index(r["informativeness"])] = r[key]["t"]
        im = ax.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, origin="lower")
        for a in range(len(drifts)):
            for b in range(len(infos)):
                ax.text(b, a, f"{grid[a, b]:+.4f}\nt {tt[a, b]:+.1f}", ha="center", va="center", fontsize=9)
        ax.set_xticks(range(len(infos)), [str(x) for x in infos])
        ax.set_yticks(range(len(drifts)), [str(x) for x in drifts])
        ax.set_xlabel("upstream informativeness")
        ax.set_ylabel("drift")
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.8)
    ax = axes[3]
    x = np.arange(len(summary))
    for name, color, dx in (("poem", "C0", -0.2), ("chrono_baseline", "C1", 0.0), ("pointwise", "C2", 0.2)):
        ms = [r[f"{name}/gauc_long_view"] for r in summary]
        ax.errorbar(x + dx, [s["mean"] for s in ms], yerr=[0 if s["n"] < 2 else s["sd"] for s in ms], fmt="o",
                    color=color, label=name, capsize=3)
    for ref, style in (("floor", "k_"), ("upstream", "m_"), ("oracle", "r_")):
        ax.plot(x, [r[f"{ref}/gauc_long_view"]["mean"] for r in summary], style, markersize=14, label=ref)
    ax.set_xticks(x, [f"d {r['drift']}\ni {r['informativeness']}" for r in summary], fontsize=8)
    ax.set_ylabel("long-view GAUC (mean ± sd over seeds)")
    ax.set_title("per cell")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    with replace_atomically(path, "wb") as fh:
        fh.write(buf.getvalue())


def sweep(quick: bool = False, seeds=None, log=print, on_run=None) -> dict:
    """Every cell and seed; `on_run(runs)` after each (the full run saves its progress)."""
    from .train import TrainConfig
    plan = QUICK if quick else FULL
    seeds = plan["seeds"] if seeds is None else tuple(seeds)
    t0 = time.time()
    world = fit_world()
    tc = TrainConfig(epochs=plan["epochs"], batch=plan["batch"], threads=1)
    runs, offsets = [], {}
    jobs = [(s, d, i) for s in seeds for d, i in plan["cells"]]
    bar = progress(jobs, enabled=not quick, desc="simulation sweep")
    for seed, d, i in bar:
        cfg = SimConfig(drift=d, informativeness=i, n_users=plan["n_users"], seed=seed)
        if (d, i) not in offsets:
            offsets[(d, i)] = calibrate(world, cfg)
        r = run_cell(world, cfg, VARIANTS_RUN, tc, offsets[(d, i)], keep=True)
        r["readout"] = sequence_readout(world, r["_inp"], r["_inputs"])
        for k in ("_sim", "_inp", "_inputs"):
            r.pop(k)
        runs.append(r)
        log(f"drift {d} informativeness {i} seed {seed}: " + ", ".join(
            f"{v} GAUC lv {r['models'][v]['gauc_long_view']:.4f}" for v in VARIANTS_RUN)
            + f", floor {r['floor']['gauc_long_view']:.4f}, upstream {r['upstream']['gauc_long_view']:.4f}, "
            f"oracle {r['oracle']['gauc_long_view']:.4f} ({r['seconds']['total']:.0f} s)")
        if on_run:
            on_run(runs)
    return {"attribution": ATTRIBUTION, "license": LICENSE, "quick": quick, "plan": {k: v for k, v in plan.items()},
            "sim_config": dataclasses.asdict(SimConfig(n_users=plan["n_users"])),
            "train_config": dataclasses.asdict(tc), "marginals": world.marginals, "targets": world.targets,
            "offsets": {f"{d}/{i}": v for (d, i), v in offsets.items()},
            "runs": runs, "summary": summarise(runs), "seconds": time.time() - t0}


# The longer training only where the sweep shows a gain; hidden features in a drifting and a static cell.
DIAGNOSE = dict(cells=[(1.5, 1.0), (0.0, 1.0)], seeds=(0, 1, 2), long_epochs=9, long_cells=[(1.5, 1.0)])


def diagnose(seeds=None, log=print) -> dict:
    """Where POEM gains, which half brings it, and whether the gain survives a model trained to the end.
    Per cell and seed, on one simulation: the sweep's training (`sweep`); three times the epochs (`long`);
    the candidates' own upstream features hidden (`hidden`, see train_and_score), where the sequence is
    the only way the upstream's view of the current interest reaches a pointwise model; and the same two
    with each item embedded by its tag set (`tags`, `tags_hidden`), ids a model can learn from this much
    data (3,651 items, about 5 labelled exposures each per run; 82 tag sets)."""
    from .train import TrainConfig
    seeds = DIAGNOSE["seeds"] if seeds is None else tuple(seeds)
    t0 = time.time()
    world = fit_world()
    base = TrainConfig(epochs=FULL["epochs"], batch=FULL["batch"], threads=1)
    arms = {"sweep": (base, False, None),
            "long": (dataclasses.replace(base, epochs=DIAGNOSE["long_epochs"]), False, None),
            "hidden": (base, True, None), "tags": (base, False, world.topic_id),
            "tags_hidden": (base, True, world.topic_id)}
    runs = []
    for d, i in DIAGNOSE["cells"]:
        cfg0 = SimConfig(drift=d, informativeness=i, n_users=FULL["n_users"])
        off = calibrate(world, cfg0)
        for seed in progress(seeds, desc=f"diagnose drift {d} informativeness {i}"):
            cfg = dataclasses.replace(cfg0, seed=seed)
            r = run_cell(world, cfg, VARIANTS_RUN, base, off, keep=True)
            lab = r["_inp"].labels()
            out = {"cell": r["cell"], "floor": r["floor"], "upstream": r["upstream"], "oracle": r["oracle"],
                   "arms": {"sweep": {"models": r["models"], "loss": r["loss"]}}}
            for arm, (tc, hide, ids) in arms.items():
                if arm == "long" and (d, i) not in DIAGNOSE["long_cells"]:
                    continue
                if arm != "sweep":
                    models, loss = train_and_score(r["_inputs"], lab, VARIANTS_RUN, tc, seed, hide_scores=hide,
                                                   ids=ids)
                    out["arms"][arm] = {"models": models, "loss": loss}
            log(f"diagnose drift {d} informativeness {i} seed {seed}: " + "; ".join(
                f"{arm}: " + ", ".join(f"{v} {a['models'][v]['gauc_long_view']:.4f}" for v in VARIANTS_RUN)
                for arm, a in out["arms"].items()))
            runs.append(out)
    summary = []
    for d, i in DIAGNOSE["cells"]:
        rs = [r for r in runs if (r["cell"]["drift"], r["cell"]["informativeness"]) == (d, i)]
        row = {"drift": d, "informativeness": i, "seeds": list(seeds)}
        for m, _ in METRICS:
            for ref in ("floor", "upstream", "oracle"):
                row[f"{ref}/{m}"] = _stats([r[ref][m] for r in rs])
            for arm in arms:
                if arm not in rs[0]["arms"]:
                    continue
                for v in VARIANTS_RUN:
                    row[f"{arm}/{v}/{m}"] = _stats([r["arms"][arm]["models"][v][m] for r in rs])
                for a, b in DIFFS:
                    row[f"{arm}/{a}-{b}/{m}"] = _stats([r["arms"][arm]["models"][a][m] - r["arms"][arm]["models"][b][m]
                                                        for r in rs])
        summary.append(row)
    return {"plan": DIAGNOSE, "runs": runs, "summary": summary, "seconds": time.time() - t0}


def diagnose_table(diag: dict) -> str:
    f = lambda s: f"{s['mean']:.4f} ± {s['sd']:.4f}"  # noqa: E731
    g = lambda s: f"{s['mean']:+.4f} (t {s['t']:+.1f}, {s['positive']}/{s['n']})"  # noqa: E731
    lines = ["Long-view GAUC (test exposures; mean ± sd over seeds; paired differences per seed)", "",
             "| drift | inform. | training | poem | chrono_baseline | pointwise | poem − baseline | "
             "pointwise − baseline | poem − pointwise |", "|---" * 9 + "|"]
    m = "gauc_long_view"
    for row in diag["summary"]:
        for arm, label in (("sweep", f"sweep ({FULL['epochs']} epochs)"),
                           ("long", f"{DIAGNOSE['long_epochs']} epochs"), ("hidden", "candidate features hidden"),
                           ("tags", "tag-set ids"), ("tags_hidden", "tag-set ids, features hidden")):
            if f"{arm}/poem/{m}" not in row:
                continue
            lines.append(f"| {row['drift']} | {row['informativeness']} | {label} | "
                         + " | ".join(f(row[f"{arm}/{v}/{m}"]) for v in VARIANTS_RUN) + " | "
                         + " | ".join(g(row[f"{arm}/{a}-{b}/{m}"]) for a, b in DIFFS) + " |")
    lines += ["", "References, long-view GAUC: " + "; ".join(
        f"drift {row['drift']} informativeness {row['informativeness']}: floor {f(row[f'floor/{m}'])}, "
        f"upstream {f(row[f'upstream/{m}'])}, oracle {f(row[f'oracle/{m}'])}" for row in diag["summary"]) + "."]
    return "\n".join(lines) + "\n"


def _json(obj) -> str:
    return json.dumps(obj, indent=1, default=lambda x: x.item() if hasattr(x, "item") else str(x))


RESULTS_BEGIN, RESULTS_END = ("<!-- results: begin (written by python -m poem_eval.simulation) -->",
                              "<!-- results: end -->")
DIAG_BEGIN, DIAG_END = ("<!-- diagnosis: begin (written by python -m poem_eval.simulation --diagnose) -->",
                        "<!-- diagnosis: end -->")


def _replace_block(page: Path, begin: str, end: str, body: str) -> None:
    text = page.read_text() if page.exists() else "# Simulation\n"
    block = f"{begin}\n\n{body}\n{end}"
    a, b = text.find(begin), text.find(end)
    text = text.rstrip("\n") + "\n\n" + block + "\n" if a < 0 or b < 0 else text[:a] + block + text[b + len(end):]
    write_text(page, text)


def write_docs(res: dict, docs: Path = DOCS) -> None:
    """docs/simulation_results.json, docs/simulation_gain.png and the results block of docs/simulation.md."""
    path = docs / "simulation_results.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    write_text(path, _json(dict(res, **({"diagnosis": old["diagnosis"]} if "diagnosis" in old else {}))) + "\n")
    plot(res["summary"], docs / "simulation_gain.png")
    _replace_block(docs / "simulation.md", RESULTS_BEGIN, RESULTS_END, _results_body(res))


def _results_body(res: dict) -> str:
    return f"{table(res['summary'])}\nFull sweep: {len(res['runs'])} runs in {res['seconds'] / 60:.1f} minutes.\n"


def _diagnosis_body(diag: dict) -> str:
    minutes = diag["seconds"] / 60
    return diagnose_table(diag) + f"\nDiagnosis: {len(diag['runs'])} simulations in {minutes:.1f} minutes.\n"


def write_diagnosis(diag: dict, docs: Path = DOCS) -> None:
    """The diagnosis into docs/simulation_results.json (key "diagnosis") and its block of simulation.md."""
    path = docs / "simulation_results.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    res["diagnosis"] = diag
    write_text(path, _json(res) + "\n")
    _replace_block(docs / "simulation.md", DIAG_BEGIN, DIAG_END, _diagnosis_body(diag))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one cell, one seed, fewer users (the test's run)")
    ap.add_argument("--seeds", type=int, nargs="*", help="override the plan's seeds")
    ap.add_argument("--json", type=Path, help="write the results here (quick mode: instead of docs/)")
    ap.add_argument("--docs", type=Path, default=DOCS, help="where the full run writes its files")
    ap.add_argument("--replot", action="store_true",
                    help="redraw the plot and tables of docs/ from docs/simulation_results.json (no simulation)")
    ap.add_argument("--diagnose", action="store_true",
                    help="the diagnosis instead of the sweep: longer training and hidden candidate features")
    args = ap.parse_args(argv)
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    if args.replot:
        res = json.loads((args.docs / "simulation_results.json").read_text())
        plot(res["summary"], args.docs / "simulation_gain.png")
        _replace_block(args.docs / "simulation.md", RESULTS_BEGIN, RESULTS_END, _results_body(res))
        if "diagnosis" in res:
            _replace_block(args.docs / "simulation.md", DIAG_BEGIN, DIAG_END, _diagnosis_body(res["diagnosis"]))
        return 0
    if args.diagnose:
        diag = diagnose(args.seeds, log=log)
        if args.json:
            write_text(args.json, _json(diag) + "\n")
        else:
            write_diagnosis(diag, args.docs)
        print(diagnose_table(diag))
        return 0
    partial = (args.json or args.docs / "simulation_results.json").with_suffix(".partial.json")
    save = None if args.quick else (lambda runs: write_text(partial, _json({"runs": runs}) + "\n"))
    res = sweep(args.quick, args.seeds, log=log, on_run=save)
    if args.json:
        write_text(args.json, _json(res) + "\n")
    if not args.quick:
        write_docs(res, args.docs)
        if partial.exists():
            partial.unlink()
    print(table(res["summary"]))
    print(f"{len(res['runs'])} runs in {res['seconds']:.0f} s. {ATTRIBUTION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
