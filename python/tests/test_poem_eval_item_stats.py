"""The causal item and user statistics (poem_eval.item_stats) against a brute-force count over the log,
and the property that matters: nothing at or after the request time moves them."""
import sys
import unittest
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from poem_eval import item_stats  # noqa: E402


def brute(user, item, time, lv, click, u, t, i):
    """The four features of item i for user u at time t, by scanning every exposure."""
    before = time < t
    prior_lv = (lv[before].sum() + 1.0) / (before.sum() + 2.0)
    prior_click = (click[before].sum() + 1.0) / (before.sum() + 2.0)
    mask, m = before & (item == i), item_stats.ITEM_M
    n = mask.sum()
    rates = [(lv[mask].sum() + m * prior_lv) / (n + m), (click[mask].sum() + m * prior_click) / (n + m)]
    return np.array([np.log(r / (1 - r)) for r in rates] + [n, (before & (user == u)).sum()])


class CausalStats(unittest.TestCase):
    def setUp(self):
        g = np.random.default_rng(3)
        n = 3000
        self.user = g.integers(0, 40, n)
        self.item = g.integers(0, 120, n)
        self.time = g.integers(0, 500, n)  # many exposures share a second: "strictly before" matters
        self.lv = g.random(n) < 0.3
        self.click = g.random(n) < 0.5
        self.stats = item_stats.CausalStats(self.user, self.item, self.time, self.lv, self.click)

    def test_rows_match_a_brute_force_count(self):
        g = np.random.default_rng(4)
        users, items, times = g.integers(0, 45, 400), g.integers(0, 130, 400), g.integers(-5, 520, 400)
        times = np.maximum(times, 0)
        got = self.stats.rows(users, times, items)
        self.assertEqual(got.shape, (4, 400))
        self.assertEqual(got.dtype, np.float32)
        for j in range(400):
            want = brute(self.user, self.item, self.time, self.lv, self.click, users[j], times[j], items[j])
            np.testing.assert_allclose(got[:, j], want, rtol=1e-6, err_msg=f"query {j}")

    def test_nothing_at_or_after_the_request_moves_them(self):
        t = 250
        late = self.time >= t
        changed = item_stats.CausalStats(self.user, self.item, np.where(late, self.time + 7, self.time),
                                         np.where(late, ~self.lv, self.lv), np.where(late, ~self.click, self.click))
        items = np.arange(130)
        np.testing.assert_array_equal(self.stats.rows(3, t, items), changed.rows(3, t, items))
        # ...while one exposure strictly before does.
        early = item_stats.CausalStats(np.r_[self.user, 3], np.r_[self.item, 5], np.r_[self.time, t - 1],
                                       np.r_[self.lv, True], np.r_[self.click, True])
        a, b = self.stats.rows(3, t, [5]), early.rows(3, t, [5])
        self.assertEqual(b[2, 0], a[2, 0] + 1)
        self.assertEqual(b[3, 0], a[3, 0] + 1)
        self.assertGreater(b[0, 0], a[0, 0] - 1e-3)

    def test_unseen_items_and_users_get_the_prior_and_bad_ids_are_refused(self):
        r = self.stats.rows(1000, 10_000, [10_000])
        self.assertEqual(r[2, 0], 0)
        self.assertEqual(r[3, 0], 0)
        prior = np.log((self.lv.sum() + 1.0) / (len(self.lv) - self.lv.sum() + 1.0))  # log-odds
        self.assertAlmostEqual(float(r[0, 0]), prior, places=6)
        with self.assertRaisesRegex(ValueError, "ids must be in"):
            item_stats.CausalStats([2 ** 40], [1], [5], [True], [False])
        with self.assertRaisesRegex(ValueError, "one entry per exposure"):
            item_stats.CausalStats([1, 2], [1], [5], [True], [False])


if __name__ == "__main__":
    unittest.main()
