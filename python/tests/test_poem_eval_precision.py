"""python -m poem_eval.precision --quick: the demo's model on the quick evaluation's test days, its tower
in fp32 and in bf16 (docs/model.md, "Precision"). The bf16 rounding must leave the AUCs within 0.001 and
the per-user AUCs within 0.003, move no output by more than 0.05, and move some (bf16 really ran)."""
import unittest

from quick_run import quick_report


class PrecisionQuick(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.report = quick_report("poem_eval.precision")

    def test_the_model_scores_the_test_days(self):
        self.assertTrue(self.report["quick"])
        self.assertGreater(self.report["rows"], 1000)
        for k in ("auc_long_view", "auc_click"):
            self.assertGreater(self.report["fp32"][k], 0.6, k)  # the demo model on data of its kind

    def test_bf16_keeps_the_metrics(self):
        fp32, bf16 = self.report["fp32"], self.report["bf16"]
        for k in ("auc_long_view", "auc_click"):
            self.assertLess(abs(bf16[k] - fp32[k]), 1e-3, k)
        for k in ("gauc_long_view", "gauc_click"):
            self.assertLess(abs(bf16[k] - fp32[k]), 3e-3, k)
        self.assertLess(abs(bf16["watch_mae_log1p"] - fp32["watch_mae_log1p"]), 1e-3)

    def test_outputs_move_by_bf16_rounding_only(self):
        self.assertLess(max(self.report["max_abs_diff"]), 0.05)
        self.assertGreater(min(self.report["max_abs_diff"]), 0.0)
        self.assertLess(max(self.report["mean_abs_diff"]), 0.005)


if __name__ == "__main__":
    unittest.main()
