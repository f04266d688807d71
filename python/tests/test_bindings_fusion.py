"""The poem module's fusion calls against numpy references."""
import unittest

import numpy as np

import poem


def mid_rank_pct(x, higher=True):
    """Reference: average ranks (0 = best) with non-finite last, as a mid-rank percentile (0 if bad)."""
    n = len(x)
    good = np.isfinite(x)
    key = np.where(good, -x if higher else x, np.inf)
    order = np.argsort(key, kind="stable")
    ranks = np.empty(n)
    i = 0
    while i < n:
        j = i + 1
        while j < n and (key[order[j]] == key[order[i]]):
            j += 1
        ranks[order[i:j]] = (i + j - 1) / 2
        i = j
    return ranks, np.where(good, 1 - (ranks + 0.5) / n, 0.0)


class FusionBindings(unittest.TestCase):
    def test_fuse_matches_reference(self):
        rng = np.random.default_rng(3)
        scores = rng.random((4, 300)).astype(np.float32)
        scores[2, 7] = np.nan
        scores[0, 9] = np.inf
        dirs = [poem.Direction.higher_is_better, poem.Direction.lower_is_better] * 2
        weights = [1.0, 2.0, 0.5, 1.5]
        spec = poem.FusionConfig([poem.ObjectiveConfig(d, poem.Normalization.rank_pct, w) for d, w in zip(dirs, weights)])
        out = poem.fuse(scores, spec)
        fused = np.zeros(300)
        for k in range(4):
            ranks, pct = mid_rank_pct(scores[k].astype(np.float64), dirs[k] == poem.Direction.higher_is_better)
            np.testing.assert_array_equal(out["ranks"][k], ranks)
            fused += weights[k] / sum(weights) * pct
        np.testing.assert_allclose(out["fused"], fused, atol=1e-6)
        self.assertEqual(out["nonfinite_count"], 2)
        self.assertEqual(sorted(out["order"].tolist()), list(range(300)))
        np.testing.assert_array_equal(out["fused_rank"][out["order"]], np.arange(300))
        self.assertEqual(out["normalized"].shape, (4, 300))

    def test_any_float_array_and_workspace_reuse(self):
        ws = poem.Workspace()
        spec = poem.FusionConfig([poem.ObjectiveConfig(), poem.ObjectiveConfig()])
        a = np.asfortranarray(np.random.default_rng(1).random((2, 50)))  # float64, column-major
        r1 = poem.fuse(a, spec, ws)
        r2 = poem.fuse(np.ascontiguousarray(a, dtype=np.float32), spec, ws)
        np.testing.assert_array_equal(r1["fused"], r2["fused"])
        self.assertGreater(ws.capacity, 0)

    def test_errors_are_poem_errors(self):
        spec = poem.FusionConfig([poem.ObjectiveConfig()])
        with self.assertRaisesRegex(poem.Error, "1 entries for 2 score rows"):
            poem.fuse(np.zeros((2, 3), np.float32), spec)
        with self.assertRaisesRegex(poem.Error, "expected a 2-D array"):
            poem.fuse(np.zeros(3, np.float32), spec)
        with self.assertRaisesRegex(poem.Error, "weights are all zero"):
            poem.fuse(np.zeros((1, 3), np.float32), poem.FusionConfig([poem.ObjectiveConfig(weight=0.0)]))

    def test_rank_scores(self):
        x = np.array([0.5, np.nan, 0.5, 2.0], np.float32)
        np.testing.assert_array_equal(poem.rank_scores(x), [1.5, 3.0, 1.5, 0.0])


if __name__ == "__main__":
    unittest.main()
