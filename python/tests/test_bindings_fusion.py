"""The poem module's fusion calls against numpy references; learned fusion against poem_ref's PyTorch
ensemble (parity within 1e-5), its files and its refusals."""
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch

import poem
from poem_ref import LearnedFusion, export_fusion, lively
from poem_ref.export import export
from poem_ref.fusion import fusion_tensors, load_fusion
from poem_ref.model import PoemConfig, PoemModel


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


def trained_like(k=4, d=4, h=16, seed=0):
    """A torch ensemble with lively (variance-preserving, non-zero bias) weights, not the tiny default."""
    torch.manual_seed(seed)
    m = lively(LearnedFusion(k, d, h)).eval()
    with torch.no_grad():
        m.skip.weight.mul_(4.0)  # a trained ensemble's sigmoid spreads
    return m


def torch_fused(m, normalized):
    with torch.no_grad():
        return m(torch.from_numpy(np.ascontiguousarray(normalized.T, dtype=np.float32))).numpy()


class LearnedFusionBindings(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_score_matches_pytorch(self):
        saved = poem.simd_target()
        try:
            for target in poem.simd_targets():  # every SIMD target this build has and this CPU runs
                poem.set_simd_target(target)
                for k, d, h, seed in [(4, 4, 16, 0), (3, 5, 7, 1), (1, 1, 1, 2), (16, 8, 33, 3)]:
                    m = trained_like(k, d, h, seed)
                    f = poem.LearnedFusion.from_tensors(fusion_tensors(m))
                    self.assertEqual((f.objectives, f.component_dim, f.hidden), (k, d, h))
                    for n in (0, 1, 7, 8, 9, 1000):
                        x = np.random.default_rng(n + seed).random((k, n)).astype(np.float32)
                        x[:, ::5] = np.round(x[:, ::5])  # 0s and 1s, as rank percentiles and non-finite scores give
                        got = f.score(x)
                        self.assertEqual(got.shape, (n,))
                        np.testing.assert_allclose(got, torch_fused(m, x), atol=1e-5, rtol=0, err_msg=target)
                        if n == 1000:
                            self.assertGreater(np.ptp(got), 0.1)  # the weights make candidates differ
        finally:
            poem.set_simd_target(saved)

    def test_fuse_with_learned_matches_pytorch_on_fuse_normalized(self):
        m = trained_like()
        f = poem.LearnedFusion.from_tensors(fusion_tensors(m))
        g = np.random.default_rng(5)
        scores = g.random((4, 777)).astype(np.float32)
        scores[1, 3] = np.nan
        scores[2, 10] = -np.inf
        objs = [poem.ObjectiveConfig(poem.Direction.higher_is_better, n)
                for n in (poem.Normalization.rank_pct, poem.Normalization.min_max, poem.Normalization.z_score,
                          poem.Normalization.log1p_min_max)]
        spec = poem.FusionConfig(objs, poem.FusionMethod.learned, learned=f)
        self.assertIs(spec.learned, f)
        out = poem.fuse(scores, spec)
        np.testing.assert_allclose(out["fused"], torch_fused(m, out["normalized"]), atol=1e-5, rtol=0)
        np.testing.assert_array_equal(out["fused"], f.score(out["normalized"]))
        fused = out["fused"]
        self.assertTrue(np.all(np.diff(fused[out["order"]]) <= 0))
        self.assertEqual(out["nonfinite_count"], 2)
        # The formula on the same config gives another score; the property is writable.
        spec.method = poem.FusionMethod.weighted_rank
        spec.learned = None
        self.assertFalse(np.array_equal(poem.fuse(scores, spec)["fused"], fused))

    def test_file_round_trip_and_refusals(self):
        m = trained_like(seed=7)
        path = self.dir / "ens.safetensors"
        export_fusion(m, path)
        f = poem.LearnedFusion.load(path)
        self.assertEqual(f, poem.LearnedFusion.from_tensors(fusion_tensors(m)))
        x = np.random.default_rng(1).random((4, 100)).astype(np.float32)
        np.testing.assert_allclose(f.score(x), torch_fused(m, x), atol=1e-5, rtol=0)
        self.assertIn("objectives=4", repr(f))

        # K = 3 tensors: loaded, but a 4-objective config refuses them.
        k3 = self.dir / "k3.safetensors"
        export_fusion(trained_like(3), k3)
        f3 = poem.LearnedFusion.load(str(k3))
        self.assertEqual(f3.objectives, 3)
        spec = poem.FusionConfig([poem.ObjectiveConfig()] * 4, poem.FusionMethod.learned, learned=f3)
        with self.assertRaisesRegex(poem.Error, "the ensemble takes 3 objectives, the scores have 4"):
            poem.fuse(x, spec)
        with self.assertRaisesRegex(poem.Error, "normalized has 4 rows, the ensemble takes K = 3"):
            f3.score(x)
        with self.assertRaisesRegex(poem.Error, "method learned needs an ensemble"):
            poem.fuse(x, poem.FusionConfig([poem.ObjectiveConfig()] * 4, poem.FusionMethod.learned))
        with self.assertRaisesRegex(poem.Error, "an ensemble is set but fusion_config.method"):
            poem.fuse(x, poem.FusionConfig([poem.ObjectiveConfig()] * 4, learned=f))

        # Mixed K in one file: tensors of a K = 3 ensemble beside K = 4 components.
        t = fusion_tensors(m)
        t["fusion.skip.weight"] = fusion_tensors(trained_like(3))["fusion.skip.weight"]
        with self.assertRaisesRegex(poem.Error, r"'fusion.skip.weight' has shape \(1, 3\), expected \(1, 4\)"):
            poem.LearnedFusion.from_tensors(t)
        from poem_ref.safetensors_io import write_safetensors
        mixed = self.dir / "mixed.safetensors"
        write_safetensors(mixed, t, {"poem_fusion": m.config_json()})
        with self.assertRaisesRegex(poem.Error, r"mixed.safetensors.*'fusion.skip.weight' has shape \[1, 3\]"):
            poem.LearnedFusion.load(mixed)
        t = fusion_tensors(m)
        del t["fusion.out.bias"]
        with self.assertRaisesRegex(poem.Error, "'fusion.out.bias' is missing"):
            poem.LearnedFusion.from_tensors(t)
        t = fusion_tensors(m)
        t["fusion.extra"] = t["fusion.out.bias"]
        with self.assertRaisesRegex(poem.Error, "unknown tensor 'fusion.extra'"):
            poem.LearnedFusion.from_tensors(t)
        t = fusion_tensors(m)
        t["fusion.aggregate.bias"] = t["fusion.aggregate.bias"].clone()
        t["fusion.aggregate.bias"][3] = float("nan")
        with self.assertRaisesRegex(poem.Error, "fusion.aggregate.bias holds a non-finite value"):
            poem.LearnedFusion.from_tensors(t)
        with self.assertRaises(poem.DtypeError):
            poem.LearnedFusion.from_tensors({**fusion_tensors(m), "fusion.out.bias": np.array(["x"])})
        bad_version = self.dir / "v2.safetensors"
        write_safetensors(bad_version, fusion_tensors(m), {"poem_fusion": '{"version": 2}'})
        with self.assertRaisesRegex(poem.Error, "version 2, this reader knows 1"):
            poem.LearnedFusion.load(bad_version)
        with self.assertRaisesRegex(ValueError, "version 2, this reader knows 1"):
            load_fusion(bad_version)

    def test_model_file_carries_the_ensemble(self):
        torch.manual_seed(0)
        model = PoemModel(PoemConfig(vocab=97, d=8, n_heads=2, n_objectives=4, chrono_feats=1, mlp=[16])).eval()
        ens = trained_like(seed=3)
        with_fusion, without = self.dir / "with.safetensors", self.dir / "without.safetensors"
        export(model, with_fusion, fusion=ens)
        export(model, without)
        loaded = poem.Model.load(with_fusion)
        self.assertIsNotNone(loaded.learned_fusion)
        self.assertEqual(loaded.learned_fusion, poem.LearnedFusion.from_tensors(fusion_tensors(ens)))
        self.assertEqual(loaded.learned_fusion, poem.LearnedFusion.load(with_fusion))
        self.assertIsNone(poem.Model.load(without).learned_fusion)
        # An F16 export reads back as its rounded values.
        half = self.dir / "half.safetensors"
        export(model, half, dtype="F16", fusion=ens)
        x = np.random.default_rng(2).random((4, 50)).astype(np.float32)
        np.testing.assert_allclose(poem.Model.load(half).learned_fusion.score(x), torch_fused(ens, x), atol=5e-3)


if __name__ == "__main__":
    unittest.main()
