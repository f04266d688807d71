"""Python arguments: refuse, do not guess.

Every array argument of the module is checked against its dtype: a wrong kind (floats for ids or
indices, bools or strings for scores, floats for masks, another record layout) raises poem.DtypeError,
which is both a TypeError and a poem.Error; a wrong shape or a value the C++ type cannot hold (a
negative id, an index beyond uint32, a mask of 2, a float64 beyond float32's range) raises poem.Error.
Both name the argument, its dtype and its shape. The documented safe widenings (integer arrays of any
width whose values fit, bool or 0/1 integer masks, float16 and float64 scores) give the results of the
exact dtype."""
import json
import os
import pathlib
import tempfile
import unittest

import numpy as np

import poem

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "model"


def ranker_config():
    fusion = poem.FusionConfig([poem.ObjectiveConfig(poem.Direction.higher_is_better, poem.Normalization.rank_pct, 1.0),
                                poem.ObjectiveConfig(poem.Direction.lower_is_better, poem.Normalization.min_max, 2.0)])
    levels = poem.LevelConfig(method=poem.LevelMethod.pareto,
                              directions=[poem.Direction.higher_is_better, poem.Direction.lower_is_better])
    return poem.RankerConfig(fusion, levels, po_length=6, chrono_length=5, state_tokens=30, state_requests=5,
                             log_capacity=8)


class Strict(unittest.TestCase):
    def refused(self, exc, call, *parts):
        """`call()` raises `exc` whose message contains every part (argument name, dtype, shape)."""
        with self.assertRaises(exc) as cm:
            call()
        for p in parts:
            self.assertIn(p, str(cm.exception))
        return cm.exception

    def wrong_dtype(self, call, name, dtype, shape=None):
        e = self.refused(TypeError, call, name, dtype, *([shape] if shape else []))
        self.assertIsInstance(e, poem.Error)  # a poem.DtypeError: `except poem.Error` sees it too
        self.assertIsInstance(e, poem.DtypeError)


class DtypeError(Strict):
    def test_is_type_error_and_poem_error(self):
        self.assertTrue(issubclass(poem.DtypeError, TypeError))
        self.assertTrue(issubclass(poem.DtypeError, poem.Error))
        self.assertTrue(issubclass(poem.Error, ValueError))


class Fusion(Strict):
    def setUp(self):
        self.scores = np.random.default_rng(0).random((2, 30)).astype(np.float32)
        self.spec = poem.FusionConfig([poem.ObjectiveConfig(), poem.ObjectiveConfig(weight=2.0)])

    def test_refusals(self):
        self.wrong_dtype(lambda: poem.fuse(self.scores.astype(bool), self.spec), "fuse: scores", "bool", "(2, 30)")
        self.wrong_dtype(lambda: poem.fuse(self.scores.astype(np.complex64), self.spec), "scores", "complex64")
        self.wrong_dtype(lambda: poem.fuse(self.scores.astype(str), self.spec), "scores", "<U")
        self.wrong_dtype(lambda: poem.fuse([["a", "b"]], self.spec), "scores", "<U1")
        self.refused(poem.Error, lambda: poem.fuse(self.scores[0], self.spec), "fuse: scores", "expected a 2-D array",
                     "float32", "(30,)")
        big = self.scores.astype(np.float64)
        big[1, 3] = 1e39
        self.refused(poem.Error, lambda: poem.fuse(big, self.spec), "fuse: scores[33] = 1e+39", "beyond")
        self.wrong_dtype(lambda: poem.rank_scores(np.array([1, 2], np.float128)), "rank_scores: scores", "float128")
        self.refused(poem.Error, lambda: poem.rank_scores(self.scores), "rank_scores: scores", "1-D", "(2, 30)")
        # integers only when exact in float32
        self.refused(poem.Error, lambda: poem.rank_scores(np.array([2**24 + 1])), "rank_scores: scores[0]", "exact")

    def test_widenings(self):
        exact = poem.fuse(self.scores, self.spec)
        for loose in (self.scores.astype(np.float64), np.asfortranarray(self.scores), self.scores.tolist()):
            r = poem.fuse(loose, self.spec)
            for k in ("fused", "fused_rank", "order", "ranks"):
                np.testing.assert_array_equal(r[k], exact[k])
        # float64 rounds to the nearest float32; non-finite values pass through (they rank last)
        x = np.array([0.1, 1 / 3, np.nan, np.inf, -1e38, 2.0**-140], np.float64)
        np.testing.assert_array_equal(poem.rank_scores(x), poem.rank_scores(x.astype(np.float32)))
        h = self.scores.astype(np.float16)
        np.testing.assert_array_equal(poem.fuse(h, self.spec)["fused"], poem.fuse(h.astype(np.float32), self.spec)["fused"])
        ints = np.array([3, 1, 2, 2])
        np.testing.assert_array_equal(poem.rank_scores(ints), poem.rank_scores(ints.astype(np.float32)))
        np.testing.assert_array_equal(poem.rank_scores(ints.tolist()), poem.rank_scores(ints.astype(np.float32)))

    def test_config_fields(self):
        self.refused(poem.Error, lambda: poem.ObjectiveConfig(weight=1e39), "ObjectiveConfig.weight")
        self.refused(poem.Error, lambda: poem.FusionConfig([poem.ObjectiveConfig()], beta=-1e300), "FusionConfig.beta")
        spec = poem.FusionConfig([poem.ObjectiveConfig()])
        with self.assertRaisesRegex(poem.Error, "FusionConfig.alpha"):
            spec.alpha = 1e40
        self.assertEqual(spec.alpha, 1.0)
        self.assertEqual(poem.LevelConfig(gap_rel=float("inf")).tiers, 4)  # infinity is a value, not an overflow
        self.refused(poem.Error, lambda: poem.LevelConfig(gap_abs=1e39), "LevelConfig.gap_abs")
        self.refused(poem.Error, lambda: poem.EngagementConfig(long_view_seconds=1e39), "long_view_seconds")
        self.refused(poem.Error, lambda: poem.HierarchyConfig(margin_by_gap=[0.1, 1e39]), "margin_by_gap")
        with self.assertRaises(TypeError):
            poem.LevelConfig(tiers=-1)


class Order(Strict):
    def setUp(self):
        self.scores = np.random.default_rng(1).random((3, 20)).astype(np.float32)
        self.fused = poem.fuse(self.scores, poem.FusionConfig([poem.ObjectiveConfig()] * 3))
        self.lspec = poem.LevelConfig(poem.LevelMethod.pareto, [poem.Direction.higher_is_better] * 3)
        self.levels = poem.assign_levels(self.scores, self.fused["fused"], self.lspec)
        self.ids = np.arange(1000, 1020, dtype=np.uint64)

    def tokens(self, ids=None, levels=None, fused=None):
        return poem.quintuples(self.ids if ids is None else ids, 7, self.fused if fused is None else fused,
                               self.levels if levels is None else levels)

    def test_ids_and_levels(self):
        self.wrong_dtype(lambda: self.tokens(ids=self.ids.astype(np.float64)), "quintuples: ids", "float64", "(20,)")
        self.wrong_dtype(lambda: self.tokens(ids=np.ones(20, bool)), "quintuples: ids", "bool")
        neg = self.ids.astype(np.int64)
        neg[4] = -1
        self.refused(poem.Error, lambda: self.tokens(ids=neg), "quintuples: ids[4] = -1", "negative")
        self.refused(poem.Error, lambda: self.tokens(ids=self.ids.reshape(4, 5)), "quintuples: ids", "1-D", "(4, 5)")
        self.wrong_dtype(lambda: self.tokens(levels=self.levels.astype(np.float32)), "quintuples: levels", "float32")
        big = self.levels.astype(np.int64)
        big[2] = 2**32
        self.refused(poem.Error, lambda: self.tokens(levels=big), "quintuples: levels[2] = 4294967296", "uint32")
        bad = dict(self.fused, fused_rank=self.fused["fused_rank"].astype(np.float64))
        self.wrong_dtype(lambda: self.tokens(fused=bad), "fused['fused_rank']", "float64")
        exact = self.tokens()
        for ids in (self.ids.astype(np.int64), self.ids.astype(np.int32), self.ids.tolist()):
            for levels in (self.levels.astype(np.int64), self.levels.astype(np.uint8), self.levels.tolist()):
                np.testing.assert_array_equal(self.tokens(ids=ids, levels=levels), exact)
        self.wrong_dtype(lambda: poem.assign_levels(self.scores, self.fused["fused"].astype(bool), self.lspec),
                         "assign_levels: fused", "bool")

    def test_quintuple_record_arrays(self):
        t = self.tokens()
        self.wrong_dtype(lambda: poem.sample_levels(np.zeros(20), self.lspec), "sample_levels: tokens", "float64",
                         "QUINTUPLE_DTYPE")
        fields = poem.QUINTUPLE_DTYPE.descr
        swapped = np.zeros(20, np.dtype([fields[1], fields[0]] + fields[2:]))
        self.wrong_dtype(lambda: poem.sample_levels(swapped, self.lspec), "sample_levels: tokens", "request_time")
        state = poem.PartialOrderState(64, 4)
        self.wrong_dtype(lambda: state.record(t.astype(np.dtype([(n, "<f8") for n in t.dtype.names]))),
                         "PartialOrderState.record: tokens", "<f8")
        self.refused(poem.Error, lambda: state.record(t.reshape(4, 5)), "PartialOrderState.record: tokens", "1-D",
                     "(4, 5)")
        self.assertEqual(state.token_count, 0)
        np.testing.assert_array_equal(poem.sample_levels(t[::-1], self.lspec), poem.sample_levels(t[::-1].copy(), self.lspec))

    def test_engagement_log(self):
        n = 3
        args = dict(item=np.array([1, 2, 3], np.uint64), time=np.array([10, 20, 30], np.int64),
                    play_time=np.array([1, 30, 5], np.float32), duration=np.full(n, 60, np.float32),
                    click=np.array([0, 0, 1], bool), like=np.zeros(n, bool), follow=np.zeros(n, bool))
        log = poem.EngagementLog()
        self.wrong_dtype(lambda: log.extend(**dict(args, time=args["time"].astype(np.float64))),
                         "EngagementLog.extend: time", "float64")
        self.wrong_dtype(lambda: log.extend(**dict(args, click=np.array([0, 0.5, 1]))), "EngagementLog.extend: click",
                         "float64")
        self.refused(poem.Error, lambda: log.extend(**dict(args, like=np.array([0, 256, 0], np.int16))),
                     "EngagementLog.extend: like[1] = 256")
        self.assertEqual(len(log), 0)
        log.extend(**args)
        loose = poem.EngagementLog()
        loose.extend(item=[1, 2, 3], time=np.array([10, 20, 30], np.int32), play_time=[1.0, 30.0, 5.0],
                     duration=np.full(n, 60.0), click=np.array([0, 0, 1], np.uint8), like=[0, 0, 0], follow=[False] * 3)
        for k in ("item_id", "age_seconds", "play_ratio", "click", "mask"):
            np.testing.assert_array_equal(loose.sequence(100, 4)[k], log.sequence(100, 4)[k])

    def test_state_bytes_like(self):
        state = poem.PartialOrderState(64, 4)
        state.record(self.tokens())
        b = state.serialize()
        for like in (b, bytearray(b), memoryview(b)):
            self.assertEqual(poem.PartialOrderState.deserialize(like).serialize(), b)
        with self.assertRaises(TypeError):
            poem.PartialOrderState.deserialize("not bytes")


class Sample(Strict):
    def setUp(self):
        self.users = np.repeat(np.arange(20, dtype=np.uint64), 3)
        self.items = (np.arange(60) % 10).astype(np.uint64)
        self.time = np.arange(60, dtype=np.int64)
        self.graph = poem.ItemGraph.build(self.users, self.items, self.time, 10)

    def test_graph_build_and_walks(self):
        build = lambda **kw: poem.ItemGraph.build(**dict(dict(user=self.users, item=self.items, time=self.time,  # noqa
                                                              item_count=10), **kw))
        self.wrong_dtype(lambda: build(user=self.users.astype(np.float64)), "ItemGraph.build: user", "float64", "(60,)")
        self.wrong_dtype(lambda: build(time=self.time.astype(np.float32)), "ItemGraph.build: time", "float32")
        self.refused(poem.Error, lambda: build(time=self.time.reshape(6, 10)), "ItemGraph.build: time", "1-D")
        exact = self.graph.to_bytes()
        for user, item, time in ((self.users.astype(np.int32), self.items.astype(np.int8), self.time.astype(np.int32)),
                                 (self.users.tolist(), self.items.astype(np.uint16), self.time.astype(np.uint32))):
            self.assertEqual(build(user=user, item=item, time=time).to_bytes(), exact)
        g = self.graph
        self.wrong_dtype(lambda: g.walks(np.array([1.0, 2.0]), 5), "ItemGraph.walks: starts", "float64", "(2,)")
        self.refused(poem.Error, lambda: g.walks(np.array([[1, 2]]), 5), "ItemGraph.walks: starts", "1-D", "(1, 2)")
        self.refused(poem.Error, lambda: g.walks(np.array([1, -2]), 5), "ItemGraph.walks: starts[1] = -2", "negative")
        np.testing.assert_array_equal(g.walks(np.array([1, 2], np.int32), 5, 3), g.walks(np.array([1, 2], np.uint64), 5, 3))
        np.testing.assert_array_equal(g.walks(1, 5, 3), g.walks([1], 5, 3))  # a scalar is one start
        self.wrong_dtype(lambda: poem.hard_negatives(g, [1.5], []), "hard_negatives: positives", "float64")
        self.assertEqual(len(poem.hard_negatives(g, [1], [], count=3)["items"]), 3)  # an empty list is fine

    def test_graph_config(self):
        self.refused(poem.Error, lambda: poem.GraphConfig(window_seconds=1e30), "GraphConfig.window_seconds")
        self.refused(poem.Error, lambda: poem.GraphConfig(window_seconds=1.5), "GraphConfig.window_seconds")
        self.refused(poem.Error, lambda: poem.GraphConfig(window_seconds=float("nan")), "window_seconds")
        poem.GraphConfig(window_seconds=7200)
        with self.assertRaises(TypeError):
            poem.GraphConfig(window_items=2**32)
        with self.assertRaises(TypeError):
            poem.GraphConfig(top_m=-1)
        with self.assertRaises(TypeError):
            poem.GraphConfig(window_items=2.5)

    def test_graph_paths_and_bytes(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "g.bin"
            self.graph.save(path)
            self.assertEqual(poem.ItemGraph.load(path).to_bytes(), self.graph.to_bytes())
            self.assertEqual(poem.ItemGraph.load(str(path)).to_bytes(), self.graph.to_bytes())
        b = self.graph.to_bytes()
        for like in (b, bytearray(b), memoryview(b)):
            self.assertEqual(poem.ItemGraph.from_bytes(like).to_bytes(), b)

    def hs(self, **kw):
        n = 8
        args = dict(items=np.arange(n, dtype=np.uint64), fused_rank=np.arange(n, dtype=np.uint32),
                    play_time=np.array([30.0] + [2.0] * 7, np.float32), duration=np.full(n, 60.0, np.float32),
                    click=np.zeros(n, bool), like=np.zeros(n, bool), follow=np.zeros(n, bool),
                    history=np.array([], np.uint64), graph=self.graph, seed=4)
        args.update(kw)
        return poem.hierarchical_samples(**args)

    def test_hierarchical_samples(self):
        n = 8
        self.wrong_dtype(lambda: self.hs(items=np.arange(n, dtype=np.float64)), "hierarchical_samples: items", "float64")
        self.wrong_dtype(lambda: self.hs(fused_rank=np.arange(n, dtype=np.float32)), "hierarchical_samples: fused_rank",
                         "float32")
        self.refused(poem.Error, lambda: self.hs(fused_rank=np.arange(n) - 1), "hierarchical_samples: fused_rank[0] = -1")
        self.wrong_dtype(lambda: self.hs(play_time=np.ones(n, bool)), "hierarchical_samples: play_time", "bool")
        self.wrong_dtype(lambda: self.hs(click=np.full(n, 0.5)), "hierarchical_samples: click", "float64")
        self.refused(poem.Error, lambda: self.hs(follow=np.full(n, 2, np.uint8)), "hierarchical_samples: follow[0] = 2")
        self.wrong_dtype(lambda: self.hs(history=np.array([1.0])), "hierarchical_samples: history", "float64")
        exact = self.hs()
        loose = self.hs(items=np.arange(n, dtype=np.int32), fused_rank=list(range(n)),
                        play_time=np.array([30.0] + [2.0] * 7), duration=np.full(n, 60, np.int64),
                        click=np.zeros(n, np.uint8), like=[0] * n, follow=np.zeros(n, np.int64), history=[])
        for k in ("items", "tiers", "pair_i", "pair_j", "pair_margin"):
            np.testing.assert_array_equal(loose[k], exact[k])

    def test_pairwise_loss(self):
        rng = np.random.default_rng(3)
        s = rng.normal(size=20).astype(np.float32)
        i, j = rng.integers(0, 20, 50).astype(np.int32), rng.integers(0, 20, 50).astype(np.int32)
        m = np.full(50, 0.3, np.float32)
        self.wrong_dtype(lambda: poem.pairwise_loss(s, i.astype(np.float64), j, m), "pairwise_loss: i", "float64")
        big = j.astype(np.int64)
        big[7] = 2**32
        self.refused(poem.Error, lambda: poem.pairwise_loss(s, i, big, m), "pairwise_loss: j[7] = 4294967296", "uint32")
        neg = i.copy()
        neg[0] = -1
        self.refused(poem.Error, lambda: poem.pairwise_loss(s, neg, j, m), "pairwise_loss: i[0] = -1", "negative")
        self.wrong_dtype(lambda: poem.pairwise_loss(s, i, j, m.astype(bool)), "pairwise_loss: margin", "bool")
        loss, grad = poem.pairwise_loss(s, i, j, m)
        for ii, jj, ss in ((i.astype(np.int64), j.astype(np.uint8), s.astype(np.float64)),
                           (i.astype(np.uint32), j.tolist(), s.tolist())):
            l2, g2 = poem.pairwise_loss(ss, ii, jj, m.astype(np.float64))
            self.assertEqual(l2, loss)
            np.testing.assert_array_equal(g2, grad)
        self.wrong_dtype(lambda: poem.dense_pairwise_loss(s, s.astype(np.int8) > 0, 0.1), "dense_pairwise_loss: neg",
                         "bool")
        self.refused(poem.Error, lambda: poem.dense_pairwise_loss(s, s, 1e39), "dense_pairwise_loss: margin")
        self.wrong_dtype(lambda: poem.popularity_alias(np.ones(3, bool)), "popularity_alias: counts", "bool")
        self.assertEqual(len(poem.popularity_alias(np.array([1, 2, 3]))), 3)


class Serve(Strict):
    def setUp(self):
        self.ranker = poem.RequestRanker(ranker_config())
        g = np.random.default_rng(7)
        self.ids = g.integers(0, 50, 10).astype(np.uint64)
        self.scores = g.random((2, 10)).astype(np.float32)

    def test_rank(self):
        h = self.ranker.new_user(1)
        self.wrong_dtype(lambda: self.ranker.rank(h, 0, self.ids.astype(np.float64), self.scores), "rank: item_ids",
                         "float64", "(10,)")
        self.wrong_dtype(lambda: self.ranker.rank(h, 0, self.ids, self.scores > 0.5), "rank: scores", "bool", "(2, 10)")
        neg = self.ids.astype(np.int64)
        neg[3] = -1
        self.refused(poem.Error, lambda: self.ranker.rank(h, 0, neg, self.scores), "rank: item_ids[3] = -1")
        self.refused(poem.Error, lambda: self.ranker.rank(h, 0, self.ids[None], self.scores), "rank: item_ids", "1-D",
                     "(1, 10)")
        self.refused(poem.Error, lambda: self.ranker.rank(h, 0, self.ids, self.scores.ravel()), "rank: scores", "2-D")
        exact = self.ranker.rank(h, 0, self.ids, self.scores)
        for ids, scores in ((self.ids.astype(np.int64), self.scores.astype(np.float64)),
                            (self.ids.astype(np.int32).tolist(), np.asfortranarray(self.scores))):
            r = self.ranker.rank(h, 0, ids, scores)
            for k in ("item_id", "fused", "order", "level", "objectives"):
                np.testing.assert_array_equal(getattr(r, k), getattr(exact, k))
            np.testing.assert_array_equal(r.tokens, exact.tokens)

    def test_log(self):
        args = dict(item=self.ids[:3], time=np.array([10, 20, 30], np.int64), play_time=np.array([12, 1, 30], np.float32),
                    duration=np.full(3, 20, np.float32), click=np.array([True, False, False]), like=np.zeros(3, bool),
                    follow=np.zeros(3, bool))
        h = self.ranker.new_user(1)
        before = h.serialize()
        self.wrong_dtype(lambda: self.ranker.log(h, **dict(args, item=args["item"].astype(np.float32))), "log: item",
                         "float32")
        self.wrong_dtype(lambda: self.ranker.log(h, **dict(args, time=args["time"] + 0.5)), "log: time", "float64")
        self.refused(poem.Error, lambda: self.ranker.log(h, **dict(args, click=np.array([0, 2, 0]))), "log: click[1] = 2")
        self.refused(poem.Error, lambda: self.ranker.log(h, **dict(args, time=np.array([0, 2**63, 0], np.uint64))),
                     "log: time[1] = 9223372036854775808", "int64")
        self.assertEqual(h.serialize(), before)
        self.ranker.log(h, **args)
        loose = self.ranker.new_user(1)
        self.ranker.log(loose, item=args["item"].astype(np.int64), time=[10, 20, 30], play_time=[12.0, 1.0, 30.0],
                        duration=np.full(3, 20.0), click=np.array([1, 0, 0], np.uint8), like=[False] * 3,
                        follow=np.zeros(3, np.int32))
        self.assertEqual(loose.serialize(), h.serialize())


@unittest.skipUnless((FIXTURES / "po_f32.json").exists(), "model fixtures missing")
class Model(Strict):
    @classmethod
    def setUpClass(cls):
        from test_bindings_model import fixture_request
        fixture = json.loads((FIXTURES / "po_f32.json").read_text())
        cls.path = FIXTURES / fixture["model"]
        cls.model = poem.Model.load(cls.path)  # a pathlib.Path
        cls.request = fixture_request(fixture["cases"][0], fixture["config"])

    def predict(self, **changes):
        return self.model.predict(**dict(self.request, **changes))

    def test_refusals(self):
        r = self.request
        self.wrong_dtype(lambda: self.predict(cand_item_id=r["cand_item_id"].astype(np.float64)), "cand_item_id", "float64")
        # numpy makes a list of Python ints beyond int64 a float64 array: refused, not rounded
        self.assertGreater(max(r["cand_item_id"].tolist()), 2**63)
        self.wrong_dtype(lambda: self.predict(cand_item_id=r["cand_item_id"].tolist()), "cand_item_id", "float64")
        self.np_ok = self.predict(cand_item_id=np.array(r["cand_item_id"].tolist(), np.uint64))
        self.wrong_dtype(lambda: self.predict(cand_level=r["cand_level"].astype(np.float32)), "cand_level", "float32")
        lv = r["cand_level"].astype(np.int64)
        lv[0] = -1
        self.refused(poem.Error, lambda: self.predict(cand_level=lv), "cand_level[0] = -1", "negative")
        self.wrong_dtype(lambda: self.predict(chrono_mask=r["chrono_mask"] * 0.5), "chrono_mask", "float64")
        m = r["po_mask"].astype(np.int32)
        m[1] = 256
        self.refused(poem.Error, lambda: self.predict(po_mask=m), "po_mask[1] = 256")
        big = r["objectives"].astype(np.float64)
        big[0, 0] = -1e39
        self.refused(poem.Error, lambda: self.predict(objectives=big), "objectives[0] = -1e+39", "beyond")
        self.wrong_dtype(lambda: self.predict(chrono_features=r["chrono_features"].astype(np.complex128)),
                         "chrono_features", "complex128")

    def test_widenings(self):
        r = self.request
        ids = r["cand_item_id"] >> np.uint64(1)  # below 2^63: int64 and Python lists of them convert exactly
        exact = self.predict(cand_item_id=ids)
        loose = self.predict(cand_item_id=ids.tolist(), chrono_item_id=r["chrono_item_id"].astype(np.uint64),
                             cand_level=r["cand_level"].astype(np.uint8), po_level=r["po_level"].astype(np.int16),
                             chrono_mask=r["chrono_mask"].astype(bool), po_mask=r["po_mask"].astype(np.int64),
                             chrono_age=r["chrono_age"].astype(np.float64), po_fused=r["po_fused"].astype(np.float16)
                             if np.array_equal(r["po_fused"].astype(np.float16), r["po_fused"]) else r["po_fused"])
        np.testing.assert_array_equal(loose, exact)

    def test_bytes_like_and_paths(self):
        b = self.path.read_bytes()
        x = self.predict()
        for like in (b, bytearray(b), memoryview(b)):
            np.testing.assert_array_equal(poem.Model.from_bytes(like).predict(**self.request), x)
        np.testing.assert_array_equal(poem.Model.load(str(self.path)).predict(**self.request), x)
        with self.assertRaises(TypeError):
            poem.Model.from_bytes("text")


if __name__ == "__main__":
    unittest.main()
