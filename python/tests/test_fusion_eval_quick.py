"""The learned-fusion evaluation end to end in quick mode (python -m poem_eval.fusion_eval --quick):
the upstream ranker with like and follow heads, every fusion (hand weights, the weight search, BCE,
HarmonRank, Pantheon) judged on the test days, IPPO's front, and POEM trained on inputs replayed with
the hand weights and with HarmonRank's ensemble served by the C++ ranker (fusion method "learned").

Asserts what must hold whatever the data says: the serving path's learned fused scores equal the
PyTorch ensemble's on every replayed row (real requests, not fixtures); IPPO's front is exactly the
non-dominated set of what it evaluated; each learned ensemble's validation score is no worse than the
hand weights'
on the same values (they start there and keep their best validation epoch); every fusion ranks click and
long view better than chance; POEM trained on either fusion's inputs learns (beats chance on the test
days)."""
import math
import unittest

import numpy as np

from quick_run import quick_report


class QuickFusionEvaluation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.report = quick_report("poem_eval.fusion_eval")

    def test_served_learned_fusion_matches_pytorch(self):
        p = self.report["served_parity"]
        self.assertGreater(p["rows"], 1000)
        self.assertLess(p["max_abs_diff"], 1e-5)

    def test_ippo_front_is_the_non_dominated_set(self):
        pts = self.report["ippo"]["points"]
        self.assertGreaterEqual(len(pts), 3)
        v = np.array([p["valid_auc"] for p in pts])

        def dominated(i):
            return any((v[j] >= v[i]).all() and (v[j] > v[i]).any() for j in range(len(v)) if j != i)

        want = sorted(i for i in range(len(v)) if not dominated(i))
        self.assertEqual(sorted(self.report["ippo"]["front"]), want)

    def test_learned_ensembles_no_worse_than_their_start_on_validation(self):
        from poem_eval.fusion_eval import criterion
        sel = self.report["selection"]
        self.assertIn(["click", "auc"], sel)
        hand = criterion(self.report["valid"]["hand_values"][0], sel)
        for m in ("bce", "harmonrank"):
            for v in self.report["valid"][m]:
                self.assertGreaterEqual(criterion(v, sel), hand - 2e-3, m)

    def test_every_fusion_beats_chance_on_click_and_long_view(self):
        for m, runs in self.report["test"].items():
            self.assertTrue(runs, m)
            for r in runs:
                for o in ("click", "long_view"):
                    self.assertTrue(math.isfinite(r[o]["auc"]), (m, o))
                    self.assertGreater(r[o]["auc"], 0.55, (m, o))

    def test_poem_learns_on_both_fusions(self):
        for arm, runs in self.report["poem"]["results"].items():
            for m in runs:
                self.assertGreater(m["auc_long_view"], 0.55, arm)
                self.assertGreater(m["auc_click"], 0.55, arm)


if __name__ == "__main__":
    unittest.main()
