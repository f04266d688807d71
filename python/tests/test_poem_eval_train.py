"""The evaluation end to end in quick mode (python -m poem_eval.run --quick): the pipeline builds POEM's
inputs, trains POEM and the chronological baseline with validation-day early stopping, and evaluates
them on the test days.

Asserts that training works (each run's loss over its last 10% of steps is below its first 10%), that
the models beat the item-rate floor's AUC on the held-out days, that each run was stopped by its
validation checks, and that the inputs hold what POEM needs (graph-mined hard negatives, pairs,
partial-order tokens). Runs in a subprocess so that Debian's OpenBLAS, when scripts/local-openblas.sh
has unpacked it under build/openblas, can be put first on LD_LIBRARY_PATH.

In process: the mined negatives join their request as candidates, with the upstream model's scores and
the causal statistics, through the same ranker as every other candidate; and build_inputs' cache."""
import unittest

from quick_run import quick_report


class QuickEvaluation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.report = quick_report("poem_eval.run")

    def test_loss_falls(self):
        loss = self.report["loss"]
        self.assertEqual(set(loss), {"poem/0", "chrono_baseline/0"})
        for run, l in loss.items():
            self.assertGreater(l["steps"], 50, run)
            self.assertLess(l["last"], 0.95 * l["first"], f"{run}: loss {l['first']:.3f} -> {l['last']:.3f}")

    def test_metrics_beat_the_floor_auc(self):
        floor = self.report["floor"]["metrics"]
        for variant, runs in self.report["results"].items():
            for m in runs:
                self.assertGreater(m["n"], 1000, variant)
                for k in ("auc_long_view", "auc_click"):
                    self.assertGreater(m[k], floor[k], f"{variant}: {k} {m[k]:.4f}, floor {floor[k]:.4f}")

    def test_validation_chose_the_stopping_point(self):
        for run, sel in self.report["selections"].items():
            curve = dict((round(e, 3), v) for e, v in sel["curve"])
            self.assertGreaterEqual(len(curve), 2, run)
            self.assertIn(round(sel["epoch"], 3), curve, run)
            self.assertEqual(curve[round(sel["epoch"], 3)], max(curve.values()), run)
        for variant, runs in self.report["valid"].items():
            for m in runs:
                self.assertGreater(m["n"], 500, variant)  # the validation day's exposures, never the test days'

    def test_inputs(self):
        c = self.report["inputs"]["pareto"]
        self.assertGreater(c["hard_negatives"], 0)
        self.assertGreater(c["pairs"], c["requests"])
        self.assertGreater(c["po_tokens"], 0)
        self.assertGreater(self.report["graph_edges"]["pareto"], 1000)


class NegativesAreCandidates(unittest.TestCase):
    """A few users' requests of the quick split, replayed with the upstream scorer and side features."""

    def test_negatives_carry_upstream_scores_and_statistics(self):
        import numpy as np
        from poem_eval import item_stats, upstream
        from poem_eval.adapters import from_eval_data
        from poem_eval.data import EvalConfig, build_eval_data
        from poem_eval.pipeline import PipelineConfig, training_inputs
        data = build_eval_data(EvalConfig(quick=True), show_progress=False)
        ups = upstream.build_upstream_scores(data, show_progress=False)
        inp = from_eval_data(data, ups.scores, ups.scorer, side_features=True)
        users = np.unique(inp.requests["user"])[:25]
        part = inp.take(np.flatnonzero(np.isin(inp.requests["user"], users)))
        out = training_inputs(part, PipelineConfig(side_features=item_stats.TRANSFORMS))
        neg = np.flatnonzero(out["row_pos"] < 0)
        self.assertGreater(len(neg), 100)
        m = np.repeat(np.arange(len(out["request_id"])), np.diff(out["row_offsets"]))[neg]
        feats = out["row_feats"][neg]
        for j in range(len(neg)):  # raw score rows 6..8 (identity, identity, log1p), side rows 9..12
            u, t, item = int(out["user"][m[j]]), int(out["time"][m[j]]), int(out["row_item"][neg[j]])
            want = inp.score_items(u, t, [item])[:, 0]
            np.testing.assert_allclose(feats[j, 6:8], want[:2], rtol=1e-6)
            np.testing.assert_allclose(feats[j, 8], np.log1p(want[2]), rtol=1e-5)
            np.testing.assert_allclose(feats[j, 9:11], want[3:5], rtol=1e-6)
            np.testing.assert_allclose(feats[j, 11:13], np.log1p(want[5:7]), rtol=1e-5)
        # Ranked among the candidates: levels and fused ranks spread, as the candidates' do.
        self.assertGreater(len(np.unique(feats[:, 2])), 2)
        self.assertGreater(feats[:, 1].std(), 0.1)
        self.assertTrue(np.isfinite(out["row_feats"]).all())
        # What build_inputs caches comes back whole: every key, array, dtype and value.
        import tempfile
        from pathlib import Path
        from poem_eval.pipeline import load_inputs, save_inputs
        with tempfile.TemporaryDirectory() as d:
            save_inputs(Path(d) / "inputs.npz", out)
            back = load_inputs(Path(d) / "inputs.npz")
        self.assertEqual(set(back), set(out))
        for k, v in out.items():
            if isinstance(v, np.ndarray):
                self.assertEqual(back[k].dtype, v.dtype, k)
                np.testing.assert_array_equal(back[k], v, err_msg=k)
            else:
                self.assertEqual(back[k], v, k)


class InputsCacheKey(unittest.TestCase):
    """build_inputs' cache file is named by everything the replay reads, never used for a learned fusion
    (its weights are not in the serving config's JSON), and one per configuration."""

    @classmethod
    def setUpClass(cls):
        from poem_eval import item_stats, upstream
        from poem_eval.data import EvalConfig, build_eval_data
        from poem_eval.pipeline import PipelineConfig
        cls.data = build_eval_data(EvalConfig(quick=True), show_progress=False)
        cls.ups = upstream.build_upstream_scores(cls.data, show_progress=False)
        cls.cfg = PipelineConfig(side_features=item_stats.TRANSFORMS)  # precision's and run --quick's

    def test_the_name_moves_with_what_the_replay_reads(self):
        from dataclasses import replace
        import numpy as np
        import poem
        from poem_eval import item_stats
        from poem_eval.fusion_eval import poem_ranker_config
        from poem_eval.pipeline import PipelineConfig, inputs_cache_path, ranker_config
        data, ups, cfg = self.data, self.ups, self.cfg
        path = inputs_cache_path(data, ups, cfg)
        self.assertEqual(path, inputs_cache_path(data, ups, PipelineConfig(side_features=item_stats.TRANSFORMS)))
        self.assertEqual(path.parent, data.path.parent)
        others = [inputs_cache_path(data, ups, PipelineConfig()), inputs_cache_path(data, ups, replace(cfg, seed=1)),
                  inputs_cache_path(data, ups, replace(cfg, level_method="fused_tiers")),
                  inputs_cache_path(data, ups, cfg, score_rows=(1, 0, 2)),
                  inputs_cache_path(data, ups, cfg, config=ranker_config(poem, replace(cfg, lp=16)))]
        self.assertEqual(len({path, *others}), 1 + len(others))
        k, d, h = 4, 2, 3  # the four objectives of poem_ranker_config
        shapes = {"component.weight": (k, d), "component.bias": (k, d), "aggregate.weight": (h, k * d),
                  "aggregate.bias": (h,), "out.weight": (1, h), "out.bias": (1,), "skip.weight": (1, k)}
        learned = poem.LearnedFusion.from_tensors({"fusion." + n: np.full(s, 0.1, np.float32) for n, s in shapes.items()})
        self.assertIsNone(inputs_cache_path(data, ups, cfg, config=poem_ranker_config(poem, cfg, learned)))

    def test_one_file_per_configuration(self):
        """What an older build of the code cached for the same configuration goes when build_inputs
        runs (here from the cache that the quick evaluation's tests have filled, or after a replay)."""
        from poem_eval.pipeline import build_inputs, inputs_cache_path
        path = inputs_cache_path(self.data, self.ups, self.cfg)
        what = path.name.split("_")[1]
        stale = path.with_name(f"inputs_{what}_000000000000.npz")
        other = path.with_name("inputs_000000000000_000000000000.npz")  # another configuration's
        try:
            stale.write_bytes(b"")
            other.write_bytes(b"")
            out = build_inputs(self.data, self.ups, self.cfg, show_progress=False)
            self.assertTrue(path.exists())
            self.assertFalse(stale.exists())
            self.assertTrue(other.exists())
            self.assertGreater(out["counts"]["requests"], 1000)
        finally:
            stale.unlink(missing_ok=True)
            other.unlink(missing_ok=True)

if __name__ == "__main__":
    unittest.main()
