"""Causal item and user statistics: what a production ranker's feature store knows at request time.

For a request of user u at time t and a candidate item i, the four side features (in this order) are
computed from the exposures logged strictly before t, never from the request itself or a later one:

  item_long_view_logit  log-odds of (long views of i + m * prior) / (exposures of i + m), m = ITEM_M
  item_click_logit      the same with clicks
  item_exposures        exposures of i (the model sees log1p of it)
  user_exposures        exposures of u (log1p): how much the system has seen of the user

The priors are the rates over every exposure before t (1/2 before the first). A replay that kept
running counters, updated as each request's feedback arrives, would hold exactly these numbers; here
they are answered by binary search over the time-sorted log, so any request (or a mined negative) can
be asked in any order, which keeps a replay partitioned by user identical to a single-process one.

The user's own running rates are left out on purpose. Across users they rank well (long-view AUC
0.65 on the quick split), but within one user they rank backwards (per-user AUC 0.15): a model that
learns the across-user direction then orders each user's exposures by a number that moves against
their labels over time: on the quick split POEM's per-user AUC of long view was 0.549 with them and
0.585 without (docs/evaluation.md says why they rank backwards).

Rates enter as log-odds: a smoothed rate moves by a few hundredths between items, too little for an
unnormalised input to stand out beside the others; its log-odds spread over about one unit.
"""
from typing import Tuple

import numpy as np

NAMES = ("item_long_view_logit", "item_click_logit", "item_exposures", "user_exposures")
TRANSFORMS = ("identity", "identity", "log1p", "log1p")  # the ranker's side_features
ITEM_M = 20.0


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)  # p is in (0, 1): smoothing keeps it off the ends


class _Counts:
    """Per key, the exposures, long views and clicks logged before a time: one sorted (key, time) array
    and running sums, so a query is two binary searches."""

    def __init__(self, key: np.ndarray, time: np.ndarray, long_view: np.ndarray, click: np.ndarray):
        key = np.asarray(key, np.int64)
        time = np.asarray(time, np.int64)
        if len(key) and (key.min() < 0 or key.max() >= 2 ** 31 or time.min() < 0 or time.max() >= 2 ** 32):
            raise ValueError("item_stats: user and item ids must be in [0, 2^31) and times in [0, 2^32) seconds")
        self.order_key = (key << 32) | time
        order = np.argsort(self.order_key, kind="stable")
        self.order_key = self.order_key[order]
        self.cum_lv = np.r_[0, np.cumsum(np.asarray(long_view, np.int64)[order])]
        self.cum_click = np.r_[0, np.cumsum(np.asarray(click, np.int64)[order])]

    def before(self, key: np.ndarray, t: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exposures, long views and clicks of each key strictly before its time t."""
        key = np.asarray(key, np.int64)
        t = np.broadcast_to(np.asarray(t, np.int64), key.shape)
        lo = np.searchsorted(self.order_key, key << 32, side="left")
        hi = np.searchsorted(self.order_key, (key << 32) | t, side="left")
        return hi - lo, self.cum_lv[hi] - self.cum_lv[lo], self.cum_click[hi] - self.cum_click[lo]


class CausalStats:
    """The side features (NAMES) of (user, time, items), from a log of exposures with their labels."""

    def __init__(self, user: np.ndarray, item: np.ndarray, time: np.ndarray, long_view: np.ndarray,
                 click: np.ndarray):
        n = len(item)
        if not (len(user) == len(time) == len(long_view) == len(click) == n):
            raise ValueError("CausalStats: user, item, time, long_view and click must have one entry per exposure")
        self.items = _Counts(item, time, long_view, click)
        self.users = _Counts(user, time, long_view, click)
        self.all = _Counts(np.zeros(n, np.int64), time, long_view, click)

    def rows(self, users: np.ndarray, times: np.ndarray, items: np.ndarray) -> np.ndarray:
        """float32 (4, n): the features of items[j] for users[j] at times[j] (scalars broadcast)."""
        items = np.asarray(items, np.int64)
        users = np.broadcast_to(np.asarray(users, np.int64), items.shape)
        times = np.broadcast_to(np.asarray(times, np.int64), items.shape)
        n_all, lv_all, click_all = self.all.before(np.zeros_like(items), times)
        n, lv, click = self.items.before(items, times)
        out = np.empty((len(NAMES), len(items)), np.float32)
        out[0] = _logit((lv + ITEM_M * (lv_all + 1.0) / (n_all + 2.0)) / (n + ITEM_M))
        out[1] = _logit((click + ITEM_M * (click_all + 1.0) / (n_all + 2.0)) / (n + ITEM_M))
        out[2] = n
        out[3] = self.users.before(users, times)[0]
        return out


def from_replay_input(inp) -> CausalStats:
    """The statistics of a ReplayInput's engagement rows (one per exposure): KuaiRand's long-view label
    (the engagements' `long_view` column) and clicks, at each exposure's time."""
    eg = inp.engagements
    if "long_view" not in eg:
        raise ValueError("engagements.long_view: missing column (the item statistics count long views)")
    return CausalStats(eg["user"].astype(np.int64), eg["item"], eg["time"], eg["long_view"], eg["click"])
