"""The C++ serving path against the Python one on the shipped KuaiRand sample (no train/serve skew).

examples/replay_requests (poem::request_ranker: fusion, levels, state, sequences, C++ forward pass)
and poem_eval.sample.replay_sample (the Replayer that built the training data, and poem_ref's PyTorch
model) replay the same requests; every candidate's every output must agree. The binary comes from
POEM_REPLAY_BIN, the sample from POEM_SAMPLE_DIR (CTest sets both)."""
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = Path(os.environ.get("POEM_SAMPLE_DIR", ROOT / "data" / "kuairand_sample"))
BIN = os.environ.get("POEM_REPLAY_BIN")

try:
    import torch  # noqa: F401
    HAVE_TORCH = True
except ImportError:  # pragma: no cover
    HAVE_TORCH = False


@unittest.skipUnless(BIN and HAVE_TORCH, "needs POEM_REPLAY_BIN and PyTorch")
class ReplayParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import pandas as pd
        from poem_eval.sample import replay_sample
        with tempfile.TemporaryDirectory() as d:
            pred = Path(d) / "pred.csv"
            run = subprocess.run([BIN, str(SAMPLE), "--predictions", str(pred)], capture_output=True, text=True,
                                 timeout=120)
            cls.stdout = run.stdout
            if run.returncode != 0:
                raise AssertionError(f"replay_requests failed ({run.returncode}): {run.stderr}")
            cls.cpp = pd.read_csv(pred)
        cls.sample, cls.py = replay_sample(SAMPLE)

    def test_same_rows(self):
        self.assertEqual(len(self.cpp), len(self.sample["request_id"]))
        np.testing.assert_array_equal(self.cpp.request_id.to_numpy(), self.sample["request_id"])
        np.testing.assert_array_equal(self.cpp.item_id.to_numpy(), self.sample["item_id"])

    def test_same_predictions(self):
        cpp = self.cpp[["long_view", "click", "watch_time"]].to_numpy()
        self.assertTrue(np.all(np.isfinite(cpp)))
        err = np.abs(cpp - self.py)
        self.assertLess(err.max(), 1e-4, f"largest difference {err.max():.3g} at row {err.argmax() // 3}")
        # the sequences matter: predictions vary within and across requests
        self.assertGreater(np.std(cpp[:, 0]), 0.1)

    def test_report(self):
        for what in ("p50", "p99", "AUC long view", "AUC click"):
            self.assertIn(what, self.stdout)
        auc = float(self.stdout.split("AUC long view: model")[1].split()[0])
        self.assertGreater(auc, 0.5)


if __name__ == "__main__":
    unittest.main()
