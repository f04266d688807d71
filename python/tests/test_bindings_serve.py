"""Bindings of serve/: RankerConfig (and its JSON), RequestRanker, UserHistory and RankedRequest.

The ranker's own behaviour is tested in tests/test_serve.cpp; here: what crosses into Python (views,
dtypes, bytes-like objects, errors), a ranker built from a model file alone, and its scores against
poem_ref's PyTorch model on the features the ranker built."""
import json
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

import poem
from poem_ref.export import export
from poem_ref.model import PoemConfig, PoemModel, hash_ids


def config(policy="top_fused", seed=0):
    fusion = poem.FusionConfig([poem.ObjectiveConfig(poem.Direction.higher_is_better, poem.Normalization.rank_pct, 1.0),
                              poem.ObjectiveConfig(poem.Direction.lower_is_better, poem.Normalization.min_max, 2.0)],
                             poem.FusionMethod.weighted_rank)
    levels = poem.LevelConfig(method=poem.LevelMethod.pareto, directions=[poem.Direction.higher_is_better,
                                                                        poem.Direction.lower_is_better],
                            policy=getattr(poem.SamplePolicy, policy))
    return poem.RankerConfig(fusion, levels, raw_features=[poem.RawTransform.identity, poem.RawTransform.log1p],
                             po_length=6, chrono_length=5, state_tokens=30, state_requests=5, log_capacity=8, seed=seed)


def request(n, seed):
    g = np.random.default_rng(seed)
    return g.integers(0, 50, n).astype(np.uint64), g.random((2, n)).astype(np.float32)


class Serve(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch.manual_seed(0)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.torch_model = PoemModel(PoemConfig(vocab=97, d=8, n_heads=2, n_objectives=4, chrono_feats=1, mlp=[16])).eval()
        cls.path = Path(cls.tmp.name) / "m.safetensors"
        export(cls.torch_model, cls.path, extra_metadata={"poem_serving": config().to_json()})
        cls.model = poem.Model.load(cls.path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_config_json_round_trip_and_strictness(self):
        c = config("weighted", seed=2**64 - 1)
        back = poem.RankerConfig.from_json(c.to_json())
        self.assertEqual(back, c)
        self.assertEqual(back.first_difference(c), "")
        self.assertEqual(back.seed, 2**64 - 1)
        self.assertEqual(c.objective_rows, 4)
        self.assertIn("levels.policy", config().first_difference(c))
        j = json.loads(c.to_json())
        j["fusion"]["method"] = "nonsense"
        with self.assertRaisesRegex(poem.Error, r"ranker_config\.fusion\.method"):
            poem.RankerConfig.from_json(json.dumps(j))
        with self.assertRaisesRegex(poem.Error, "nested deeper"):
            poem.RankerConfig.from_json("[" * 50000 + "]" * 50000)

    def test_ranker_without_a_model_builds_the_inputs_and_orders_by_fused_score(self):
        r = poem.RequestRanker(config())
        self.assertFalse(r.has_model)
        h = r.new_user(11)
        ids, s = request(40, 1)
        out = r.rank(h, 100, ids, s)
        self.assertEqual(out.status, "ranked")
        self.assertEqual(out.scores.shape, (40, 0))
        np.testing.assert_array_equal(out.item_id, ids)
        np.testing.assert_array_equal(out.order, np.argsort(out.fused_rank, kind="stable"))
        f = out.candidate_features()
        self.assertEqual(f.shape, (40, 3 + 4))
        np.testing.assert_array_equal(f[:, 0], out.fused)
        np.testing.assert_array_equal(f[:, 2], out.level.astype(np.float32))
        np.testing.assert_array_equal(f[:, 3:], out.objectives.T)
        # the SIMD log1p is within a few ULP of <cmath>'s, 1e-6 absolute (fusion/detail/kernels.hpp)
        np.testing.assert_allclose(out.objectives[3], np.log1p(np.maximum(s[1], 0)).astype(np.float32),
                                   rtol=0, atol=1e-6)
        with self.assertRaises(ValueError):  # the views are read-only
            out.fused[0] = 1.0
        self.assertEqual(out.tokens.dtype, poem.QUINTUPLE_DTYPE)
        r.record(h, out)
        self.assertEqual(out.status, "recorded")
        self.assertGreater(len(out.recorded), 0)
        self.assertEqual(h.requests_recorded, 1)
        with self.assertRaisesRegex(poem.Error, "already recorded"):
            r.record(h, out)
        # The next request sees the recorded tokens, the newest first.
        nxt = r.rank(h, 160, *request(10, 2))
        self.assertEqual(nxt.po["count"], min(6, len(set(out.recorded["item_id"]))))
        np.testing.assert_array_equal(nxt.po["age_seconds"][:nxt.po["count"]], 60.0)

    def test_ranker_from_the_model_file_alone_scores_as_pytorch(self):
        r = poem.RequestRanker(self.model)
        self.assertTrue(r.has_model)
        self.assertEqual(r.config, config())
        h = r.new_user(3)
        for t in range(6):
            ids, s = request(25, 10 + t)
            out = r.rank(h, 1000 + 10 * t, ids, s)
            po, ch = out.po, out.chrono
            with torch.no_grad():
                ref = self.torch_model(
                    torch.from_numpy(hash_ids(np.array(out.item_id), 97))[None],
                    torch.from_numpy(out.candidate_features())[None],
                    torch.from_numpy(hash_ids(np.array(ch["item_id"]), 97))[None],
                    torch.from_numpy(np.stack([ch["age_seconds"], ch["play_ratio"]], 1).astype(np.float32))[None],
                    torch.from_numpy(ch["mask"] > 0)[None],
                    torch.from_numpy(hash_ids(np.array(po["item_id"]), 97))[None],
                    torch.from_numpy(np.stack([po["fused_score"], po["rank_pct"], po["level"].astype(np.float32),
                                               po["age_seconds"]], 1).astype(np.float32))[None],
                    torch.from_numpy(po["mask"] > 0)[None])[0].numpy()
            self.assertEqual(out.scores.shape, (25, 3))
            np.testing.assert_allclose(out.scores, ref, atol=1e-5)
            np.testing.assert_array_equal(out.order, np.argsort(-out.scores[:, 0], kind="stable"))
            r.record(h, out)
            r.log(h, ids[:3], np.full(3, 1000 + 10 * t + 1, np.int64), np.array([12.0, 1.0, 30.0], np.float32),
                  np.full(3, 20.0, np.float32), np.array([True, False, False]), np.zeros(3, bool), np.zeros(3, bool))
        self.assertEqual(h.requests_recorded, 6)
        self.assertLessEqual(h.token_count, 30)  # the state's bounds evict the oldest requests
        self.assertLessEqual(h.request_count, 5)
        self.assertGreater(h.log_size, 0)
        # A config that contradicts the model's own is refused, naming the field.
        with self.assertRaisesRegex(poem.Error, r"ranker_config\.levels\.policy: differs"):
            poem.RequestRanker(self.model, config("weighted"))

    def test_side_features_reach_the_model_and_score_as_pytorch(self):
        base = json.loads(config().to_json())
        base["side_features"] = ["log1p", "identity"]
        c = poem.RankerConfig.from_json(json.dumps(base))
        self.assertEqual(c.side_features, [poem.RawTransform.log1p, poem.RawTransform.identity])
        self.assertEqual((c.score_rows, c.objective_rows), (4, 6))
        torch.manual_seed(1)
        tm = PoemModel(PoemConfig(vocab=97, d=8, n_heads=2, n_objectives=6, chrono_feats=1, mlp=[16])).eval()
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "side.safetensors"
            export(tm, path, extra_metadata={"poem_serving": c.to_json()})
            r = poem.RequestRanker(poem.Model.load(path))
        self.assertEqual(r.config, c)
        h = r.new_user(4)
        ids, s = request(30, 3)
        side = np.stack([np.linspace(-2, 50, 30), np.linspace(0, 1, 30)]).astype(np.float32)
        side[1, 7] = np.nan
        out = r.rank(h, 100, ids, np.concatenate([s, side]))
        f = out.candidate_features()
        self.assertEqual(f.shape, (30, 9))
        np.testing.assert_allclose(f[:, 7], np.log1p(np.maximum(side[0], 0)), rtol=1e-6)
        np.testing.assert_array_equal(f[:, 8], np.nan_to_num(side[1], nan=0.0))
        bare = poem.RequestRanker(config()).rank(h, 100, ids, s)  # fusion and levels see the K scores only
        np.testing.assert_array_equal(bare.fused_rank, out.fused_rank)
        np.testing.assert_array_equal(bare.candidate_features(), f[:, :7])
        with torch.no_grad():
            ref = tm(torch.from_numpy(hash_ids(np.array(out.item_id), 97))[None], torch.from_numpy(f)[None],
                     torch.zeros(1, 5, dtype=torch.int64), torch.zeros(1, 5, 2), torch.zeros(1, 5, dtype=torch.bool),
                     torch.zeros(1, 6, dtype=torch.int64), torch.zeros(1, 6, 4), torch.zeros(1, 6, dtype=torch.bool))[0]
        np.testing.assert_allclose(out.scores, ref.numpy(), atol=1e-5)
        with self.assertRaisesRegex(poem.Error, r"expected 2 objectives \+ 2 side features x 30"):
            r.rank(h, 100, ids, s)

    def test_history_bytes_round_trip_from_any_bytes_like_object(self):
        r = poem.RequestRanker(config("weighted", seed=5))
        h = r.new_user(2**63 + 7)
        for t in range(4):
            out = r.rank(h, 10 * t, *request(30, t))
            r.record(h, out)
        b = h.serialize()
        self.assertIsInstance(b, bytes)
        for like in (b, bytearray(b), memoryview(b)):
            back = poem.UserHistory.deserialize(like)
            self.assertEqual(back, h)
            self.assertEqual(back.user_id, 2**63 + 7)
        bad = bytearray(b)
        bad[10] ^= 1
        with self.assertRaisesRegex(poem.Error, "CRC-32"):
            poem.UserHistory.deserialize(bad)
        with self.assertRaises(poem.Error):
            poem.UserHistory.deserialize(b[:-1])

    def test_bad_input_is_refused_and_nothing_is_recorded(self):
        r = poem.RequestRanker(config())
        h = r.new_user(1)
        ids, s = request(10, 3)
        with self.assertRaisesRegex(poem.Error, "scores are 1 x 10"):
            r.rank(h, 0, ids, s[:1])
        out = poem.RankedRequest()
        with self.assertRaisesRegex(poem.Error, "no completed rank"):
            r.record(h, out)
        with self.assertRaisesRegex(poem.Error, "ranked for user 1, not 2"):
            r.record(r.new_user(2), r.rank(h, 0, ids, s))
        self.assertEqual(h.requests_recorded, 0)


if __name__ == "__main__":
    unittest.main()
