"""The SIMD target from Python: every target this CPU runs gives PyTorch's outputs on the golden model
fixtures and the scalar reference's fusion; POEM_SIMD is honoured or refused at import."""
import glob
import json
import os
import subprocess
import sys
import unittest

import numpy as np

import poem
from test_bindings_model import FIXTURES, fixture_request


class SimdTarget(unittest.TestCase):
    # Each test walks the targets; the one active before (POEM_SIMD's, or the best) is restored after.
    def setUp(self):
        self.active = poem.simd_target()

    def tearDown(self):
        poem.set_simd_target(self.active)

    def test_names(self):
        targets = poem.simd_targets()
        self.assertIn(poem.simd_target(), targets)
        if poem.SIMD_DISPATCH:
            self.assertEqual(targets[-1], "scalar")
            self.assertEqual(poem.simd_target(), targets[0])
        with self.assertRaisesRegex(poem.Error, "avx9"):
            poem.set_simd_target("avx9")

    def test_every_target_matches_pytorch_on_the_fixtures(self):
        paths = sorted(glob.glob(os.path.join(FIXTURES, "*.json")))
        self.assertGreaterEqual(len(paths), 4)
        for target in poem.simd_targets():
            poem.set_simd_target(target)
            for path in paths:
                with open(path) as f:
                    fixture = json.load(f)
                model = poem.Model.load(os.path.join(FIXTURES, fixture["model"]))
                for i, case in enumerate(fixture["cases"]):
                    with self.subTest(target=target, fixture=fixture["model"], case=i):
                        y = model.predict(**fixture_request(case, fixture["config"]))
                        expected = np.asarray(case["expected"]).reshape(y.shape)
                        np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5)

    def test_every_target_fuses_like_the_scalar_reference(self):
        rng = np.random.default_rng(5)
        scores = rng.random((4, 1000)).astype(np.float32)
        scores[1, 3] = np.nan
        norms = [poem.Normalization.rank_pct, poem.Normalization.min_max, poem.Normalization.z_score,
                 poem.Normalization.log1p_min_max]
        spec = poem.FusionConfig([poem.ObjectiveConfig(poem.Direction.higher_is_better, n, 1.0) for n in norms])
        poem.set_simd_target("scalar" if poem.SIMD_DISPATCH else poem.simd_target())
        ref = poem.fuse(scores, spec)
        for target in poem.simd_targets():
            poem.set_simd_target(target)
            got = poem.fuse(scores, spec)
            np.testing.assert_array_equal(got["ranks"], ref["ranks"])
            np.testing.assert_allclose(got["fused"], ref["fused"], rtol=0, atol=1e-6)

    @unittest.skipUnless(poem.SIMD_DISPATCH, "POEM_SIMD is read only by builds with runtime dispatch")
    def test_poem_simd_at_import(self):
        env = dict(os.environ)
        for target in poem.simd_targets():
            env["POEM_SIMD"] = target
            out = subprocess.run([sys.executable, "-c", "import poem; print(poem.simd_target())"], env=env,
                                 capture_output=True, text=True, check=True)
            self.assertEqual(out.stdout.strip(), target)
        env["POEM_SIMD"] = "avx9"
        out = subprocess.run([sys.executable, "-c", "import poem"], env=env, capture_output=True, text=True)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("POEM_SIMD=avx9", out.stderr)
        self.assertIn("not a target of this build", out.stderr)


if __name__ == "__main__":
    unittest.main()
