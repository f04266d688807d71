"""Evaluation metrics (numpy) and the item-rate floor baseline.

* :func:`auc`: ROC AUC through average ranks (ties count 1/2), O(n log n).
* :func:`gauc`: per-user AUC averaged with impression weights (a user's number of rows), over users
  with both classes.
* :func:`watch_time_error`: MAE and RMSE of watch time, in log1p(seconds) (the headline numbers:
  ``mae_log1p``, ``rmse_log1p``) and in seconds (``mae_s``, ``rmse_s``).
* :func:`smoothed_item_rate` and :func:`floor_report`: the floor every model must clear, each item's
  Bayesian-smoothed click / long-view rate (and mean log1p watch time) from the training days,
  ``(pos + a * m) / (n + m)`` with ``a`` the global rate, scored on the test days' exposures.

Non-finite scores are rejected (ValueError): a metric never silently reorders a NaN.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from poem_ref.soft_rank import exact_auc


def _check(labels, scores):
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {s.shape} must be 1-d of one length")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"scores contain {int((~np.isfinite(s)).sum())} non-finite values")
    return (y > 0), s


def auc(labels, scores) -> float:
    """ROC AUC (probability a random positive outscores a random negative, ties 1/2); NaN if one class.
    poem_ref.soft_rank.exact_auc, the one rank-sum AUC (which the soft AUC's tests compare with), after
    this module's refusal of non-finite scores."""
    y, s = _check(labels, scores)
    return exact_auc(s, y)


def per_user_auc(users, labels, scores):
    """(user ids, per-user AUC (NaN if one class), rows per user), vectorised over users."""
    y, s = _check(labels, scores)
    u = np.asarray(users)
    if u.shape != y.shape:
        raise ValueError("users must have the labels' shape")
    n = len(y)
    if n == 0:
        return np.zeros(0, u.dtype), np.zeros(0), np.zeros(0, np.int64)
    order = np.lexsort((s, u))
    uu, ss, yy = u[order], s[order], y[order]
    ustart = np.r_[True, uu[1:] != uu[:-1]]
    ufirst = np.flatnonzero(ustart)
    uid = np.cumsum(ustart) - 1
    # tie groups: same user and same score
    tstart = ustart | np.r_[True, ss[1:] != ss[:-1]]
    tfirst = np.flatnonzero(tstart)
    tlast = np.r_[tfirst[1:], n] - 1
    tid = np.cumsum(tstart) - 1
    pos_in_user = np.arange(n) - ufirst[uid]
    avg_rank = ((pos_in_user[tfirst] + pos_in_user[tlast]) / 2.0 + 1.0)[tid]
    n_u = np.bincount(uid)
    pos_u = np.bincount(uid, weights=yy.astype(np.float64))
    rank_sum = np.bincount(uid, weights=np.where(yy, avg_rank, 0.0))
    neg_u = n_u - pos_u
    with np.errstate(invalid="ignore", divide="ignore"):
        a = (rank_sum - pos_u * (pos_u + 1) / 2.0) / (pos_u * neg_u)
    a[(pos_u == 0) | (neg_u == 0)] = np.nan
    return uu[ufirst], a, n_u


def gauc(users, labels, scores) -> float:
    """Impression-weighted mean of per-user AUC over users with both classes (NaN if none)."""
    _, a, n_u = per_user_auc(users, labels, scores)
    ok = np.isfinite(a)
    if not ok.any():
        return float("nan")
    return float(np.sum(a[ok] * n_u[ok]) / np.sum(n_u[ok]))


def gauc_users(users, labels, scores) -> int:
    """How many users count in :func:`gauc` (both classes present)."""
    _, a, _ = per_user_auc(users, labels, scores)
    return int(np.isfinite(a).sum())


def watch_time_error(true_s, pred_s) -> Dict[str, float]:
    """MAE / RMSE on log1p(seconds) (mae_log1p, rmse_log1p) and on seconds (mae_s, rmse_s)."""
    t = np.asarray(true_s, dtype=np.float64)
    p = np.asarray(pred_s, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError("true_s and pred_s must have one shape")
    if not np.all(np.isfinite(p)):
        raise ValueError("pred_s contains non-finite values")
    if np.any(t < 0) or np.any(p < 0):
        raise ValueError("watch times must be >= 0 seconds")
    dl = np.log1p(p) - np.log1p(t)
    ds = p - t
    return {"mae_log1p": float(np.mean(np.abs(dl))), "rmse_log1p": float(np.sqrt(np.mean(dl ** 2))),
            "mae_s": float(np.mean(np.abs(ds))), "rmse_s": float(np.sqrt(np.mean(ds ** 2)))}


def evaluate(users, click, long_view, play_time_s, p_click, p_long_view, pred_watch_s) -> Dict[str, float]:
    """The evaluation's metric set on one set of exposures."""
    out = {"n": int(len(users)),
           "auc_click": auc(click, p_click), "gauc_click": gauc(users, click, p_click),
           "auc_long_view": auc(long_view, p_long_view), "gauc_long_view": gauc(users, long_view, p_long_view),
           "gauc_users_long_view": gauc_users(users, long_view, p_long_view)}
    w = watch_time_error(play_time_s, pred_watch_s)
    out.update({"watch_" + k: v for k, v in w.items()})
    return out


def smoothed_item_rate(train_items, train_values, query_items, m: float = 20.0,
                       prior: Optional[float] = None) -> np.ndarray:
    """(sum of values + prior * m) / (count + m) per query item; prior = global mean of train_values.

    train_values may be binary labels (a smoothed rate) or real values (a smoothed mean). Items absent
    from training get the prior."""
    ti = np.asarray(train_items, dtype=np.int64)
    tv = np.asarray(train_values, dtype=np.float64)
    qi = np.asarray(query_items, dtype=np.int64)
    if m < 0:
        raise ValueError("m must be >= 0")
    a = float(tv.mean()) if prior is None else float(prior)
    size = int(max(ti.max(initial=-1), qi.max(initial=-1))) + 1
    n = np.bincount(ti, minlength=size).astype(np.float64)
    s = np.bincount(ti, weights=tv, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = (s + a * m) / (n + m)
    rate[(n + m) == 0] = a
    return rate[qi]


def floor_report(data, train_days: Optional[Sequence[int]] = None, eval_days: Optional[Sequence[int]] = None,
                 m: float = 20.0) -> dict:
    """The item-rate floor on the test days' exposures (default: trained on every day before them).

    Click and long-view scores are the items' smoothed rates; the watch-time prediction is the items'
    smoothed mean of log1p(play seconds), back in seconds."""
    cfg_days = data.meta["config"]
    test_days = list(eval_days) if eval_days is not None else list(cfg_days["test_days"])
    if train_days is None:
        train_days = [d for d in cfg_days["upstream_days"] + cfg_days["poem_train_days"] + cfg_days.get("valid_days", [])
                      if d < min(test_days)]
    train_days = sorted(int(d) for d in train_days)
    if max(train_days) >= min(test_days):
        raise ValueError("floor_report: training days must precede the evaluated days")
    cand_date = data.req_date[data.cand_request]
    exp = data.cand_exposed == 1
    tr = exp & np.isin(cand_date, train_days)
    te = exp & np.isin(cand_date, test_days)
    items_tr, items_te = data.cand_item[tr], data.cand_item[te]
    p_click = smoothed_item_rate(items_tr, data.cand_click[tr], items_te, m)
    p_lv = smoothed_item_rate(items_tr, data.cand_long_view[tr], items_te, m)
    wt = np.expm1(smoothed_item_rate(items_tr, np.log1p(data.cand_play_time_s[tr]), items_te, m))
    met = evaluate(data.cand_user[te], data.cand_click[te], data.cand_long_view[te],
                   data.cand_play_time_s[te], p_click, p_lv, wt)
    met["cold_item_share"] = float((np.bincount(items_tr, minlength=len(data.item_duration_s))[items_te] == 0).mean())
    return {"train_days": train_days, "eval_days": test_days, "m": m, "metrics": met}
