"""The poem module's order/ and sample/ calls: levels, state, sequences, pairs and losses."""
import unittest

import numpy as np

import poem


class OrderBindings(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(5)
        self.scores = rng.random((3, 40)).astype(np.float32)
        self.spec = poem.FusionConfig([poem.ObjectiveConfig()] * 3)
        self.lspec = poem.LevelConfig(poem.LevelMethod.pareto, [poem.Direction.higher_is_better] * 3)

    def test_pareto_levels_are_layers(self):
        fused = poem.fuse(self.scores, self.spec)
        lv = poem.assign_levels(self.scores, fused["fused"], self.lspec)
        s = self.scores.T
        dominates = lambda a, b: np.all(s[a] >= s[b]) and np.any(s[a] > s[b])
        for b in range(40):
            self.assertFalse(any(dominates(a, b) for a in range(40) if lv[a] == lv[b]))
            if lv[b] > 0:
                self.assertTrue(any(dominates(a, b) for a in range(40) if lv[a] == lv[b] - 1))

    def test_state_sequence_and_serialisation(self):
        state = poem.PartialOrderState(64, 4)
        ids = np.arange(100, 140, dtype=np.uint64)
        for t in (10, 20, 30):
            fused = poem.fuse(self.scores, self.spec)
            lv = poem.assign_levels(self.scores, fused["fused"], self.lspec)
            tokens = poem.quintuples(ids + t, t, fused, lv)
            self.assertEqual(tokens.dtype, poem.QUINTUPLE_DTYPE)
            state.record(poem.sample_levels(tokens, self.lspec, seed=t))
        seq = state.sequence(35, 16)
        self.assertEqual(int(seq["mask"].sum()), 16)
        newest = seq["request_index"][:seq["count"]] == 0
        self.assertEqual(int(newest[:11].sum()), 11)  # newest request first: its 4 + 3 + 2 + 1 + 1 tokens
        self.assertTrue(np.all(seq["item_id"][:11] >= 130))
        self.assertTrue(np.all(np.diff(seq["level"][:11].astype(int)) >= 0))
        again = poem.PartialOrderState.deserialize(state.serialize())
        np.testing.assert_array_equal(again.sequence(35, 16)["item_id"], seq["item_id"])
        with self.assertRaises(poem.Error):
            poem.PartialOrderState.deserialize(state.serialize()[:-3])

    def test_chronological_sequence(self):
        log = poem.EngagementLog()
        log.extend(np.array([1, 2, 3], np.uint64), np.array([10, 20, 30], np.int64), np.array([1, 30, 5], np.float32),
                   np.array([60, 60, 60], np.float32), np.array([0, 0, 1], bool), np.zeros(3, bool), np.zeros(3, bool))
        seq = log.sequence(25, 4, poem.EngagementConfig())
        self.assertEqual(seq["count"], 1)  # item 2 (long view); item 3 is in the future
        self.assertEqual(int(seq["item_id"][0]), 2)


class SampleBindings(unittest.TestCase):
    def test_hierarchical_pairs_respect_tiers(self):
        users = np.repeat(np.arange(50, dtype=np.uint64), 4)
        items = np.random.default_rng(2).integers(0, 30, 200).astype(np.uint32)
        graph = poem.ItemGraph.build(users, items, np.arange(200, dtype=np.int64), 30, poem.GraphConfig())
        pop = poem.popularity_alias(np.bincount(items, minlength=30).astype(np.float64) + 1)
        n = 8
        play = np.array([30.0] + [2.0] * 7, np.float32)  # candidate 0: a long view (30 s of 60 >= 10 s)
        hs = poem.hierarchical_samples(np.arange(n, dtype=np.uint64), np.arange(n, dtype=np.uint32), play,
                                       np.full(n, 60.0, np.float32), np.zeros(n, bool), np.zeros(n, bool),
                                       np.zeros(n, bool), np.array([0], np.uint64), graph, pop,
                                       poem.HierarchyConfig(base_margin=0.25), seed=1)
        t = hs["tiers"]
        self.assertEqual(t[0], 0)
        self.assertEqual(hs["items"].dtype, np.uint64)
        self.assertTrue(np.all(t[hs["pair_i"]] < t[hs["pair_j"]]))
        np.testing.assert_allclose(hs["pair_margin"], 0.25 * (t[hs["pair_j"]] - t[hs["pair_i"]]), rtol=1e-6)
        # The long-view threshold is the engagement rule's: at 40 s, 30 s of 60 is no long view.
        strict = poem.HierarchyConfig(base_margin=0.25, engagement=poem.EngagementConfig(long_view_seconds=40.0))
        hs2 = poem.hierarchical_samples(np.arange(n, dtype=np.uint64), np.arange(n, dtype=np.uint32), play,
                                        np.full(n, 60.0, np.float32), np.zeros(n, bool), np.zeros(n, bool),
                                        np.zeros(n, bool), [], graph, pop, strict, seed=1)
        self.assertNotEqual(hs2["tiers"][0], 0)

    def test_item_ids_are_uint64_and_checked(self):
        users = np.repeat(np.arange(20, dtype=np.uint64), 3)
        items = (np.arange(60) % 10).astype(np.int64)  # signed ids convert when none is negative
        graph = poem.ItemGraph.build(users, items, np.arange(60, dtype=np.int64), 10)
        walks = graph.walks(np.array([1, 2], np.uint64), 5, seed=3)
        self.assertEqual(walks.dtype, np.uint64)
        self.assertEqual(walks.shape, (2, 5))
        nb, w = graph.neighbors(1)
        self.assertEqual(nb.dtype, np.uint64)
        with self.assertRaisesRegex(poem.Error, r"starts\[0\] = 4294967297"):
            graph.walks(np.array([2**32 + 1], np.uint64), 5)
        with self.assertRaisesRegex(poem.Error, "integer"):
            graph.walks(np.array([1.5]), 5)
        with self.assertRaisesRegex(poem.Error, "negative"):
            poem.ItemGraph.build(users, -items, np.arange(60, dtype=np.int64), 10)
        with self.assertRaisesRegex(poem.Error, r"events\[0\]\.item_id"):
            poem.ItemGraph.build(users, items + 10, np.arange(60, dtype=np.int64), 10)
        hn = poem.hard_negatives(graph, np.array([1], np.uint64), np.array([2**40], np.uint64), count=3)
        self.assertEqual(hn["items"].dtype, np.uint64)

    def test_pairwise_loss_matches_numpy(self):
        rng = np.random.default_rng(9)
        s = rng.normal(size=20).astype(np.float32)
        i, j = rng.integers(0, 20, 50).astype(np.int32), rng.integers(0, 20, 50).astype(np.int32)
        m = np.full(50, 0.3, np.float32)
        loss, grad = poem.pairwise_loss(s, i, j, m)
        z = m - (s[i] - s[j])
        self.assertAlmostEqual(loss, float(np.maximum(z, 0).mean()), places=5)
        ref = np.zeros(20)
        active = (z > 0).astype(np.float64) / 50.0
        np.add.at(ref, i, -active)
        np.add.at(ref, j, active)
        np.testing.assert_allclose(grad, ref, atol=1e-6)


if __name__ == "__main__":
    unittest.main()
