"""One serving path: the C++ host against the Python replay on the shipped KuaiRand sample.

examples/replay_requests (a C++ host: poem::request_ranker built from the model file alone) and
poem_eval.sample.replay_sample (the bound poem.RequestRanker, the replay that builds training data)
replay the same requests. They must leave every user with the same history bytes and give every
candidate the same predictions; poem_ref's PyTorch model, fed the features the ranker built, must agree
with both. Checked under the model's own serving config (top_fused level selection) and under the
weighted policy (a copy of the model whose serving config selects tokens by seeded weighted sampling,
where the seed derivation decides the sequences). POEM_REPLAY_BIN and POEM_SAMPLE_DIR come from CTest;
PyTorch is installed by `make test`, so its absence is a failure, not a skip."""
import json
import os
import re
import subprocess
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch  # noqa: F401  (a missing PyTorch fails here)

import poem
from poem_eval.sample import replay_sample
from poem_ref.safetensors_io import read_safetensors, update_metadata

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = Path(os.environ.get("POEM_SAMPLE_DIR", ROOT / "data" / "kuairand_sample"))
BIN = os.environ.get("POEM_REPLAY_BIN")


def read_histories(path: Path) -> dict:
    """replay_requests --histories: (u64 user, u32 length, bytes) records."""
    blob, out, at = path.read_bytes(), {}, 0
    while at < len(blob):
        user = int.from_bytes(blob[at:at + 8], "little")
        n = int.from_bytes(blob[at + 8:at + 12], "little")
        out[user] = blob[at + 12:at + 12 + n]
        at += 12 + n
    return out


def cpp_replay(model: Path, out_dir: Path, *extra: str):
    if not BIN:
        raise AssertionError("POEM_REPLAY_BIN is not set: run this test through CTest (make test)")
    pred, hist = out_dir / "pred.csv", out_dir / "histories.bin"
    run = subprocess.run([BIN, str(SAMPLE), "--model", str(model), "--predictions", str(pred), "--histories", str(hist),
                          *extra], capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        raise AssertionError(f"replay_requests failed ({run.returncode}): {run.stderr}")
    import pandas as pd
    return run.stdout, pd.read_csv(pred), read_histories(hist)


class ReplayParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = Path(cls.tmp.name)
        model = SAMPLE / "poem_model.safetensors"
        _, meta = read_safetensors(model)
        cls.shipped_config = meta["poem_serving"]
        weighted = json.loads(cls.shipped_config)
        weighted["levels"]["policy"] = "weighted"
        weighted["seed"] = 20261129
        cls.weighted_model = d / "weighted.safetensors"
        update_metadata(model, {"poem_serving": json.dumps(weighted)}, out_path=cls.weighted_model)
        cls.runs = {}
        for name, path in (("shipped", model), ("weighted", cls.weighted_model)):
            (d / name).mkdir()
            stdout, cpp, cpp_hist = cpp_replay(path, d / name)
            sample, py_cpp, py_torch, py_hist = replay_sample(SAMPLE, model_path=path)
            cls.runs[name] = dict(stdout=stdout, cpp=cpp, cpp_hist=cpp_hist, sample=sample, py_cpp=py_cpp,
                                  py_torch=py_torch, py_hist=py_hist)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_the_model_file_carries_its_serving_config(self):
        cfg = poem.RankerConfig.from_json(self.shipped_config)
        ranker = poem.RequestRanker(poem.Model.load(SAMPLE / "poem_model.safetensors"))
        self.assertEqual(ranker.config.to_json(), cfg.to_json())
        self.assertEqual(cfg.objective_rows, 10)  # 3 normalised, 3 raw, 4 side features (item_stats.NAMES)
        self.assertEqual(cfg.score_rows, 7)

    def test_same_rows(self):
        for name, r in self.runs.items():
            with self.subTest(name):
                self.assertEqual(len(r["cpp"]), len(r["sample"]["request_id"]))
                np.testing.assert_array_equal(r["cpp"].request_id.to_numpy(), r["sample"]["request_id"])
                np.testing.assert_array_equal(r["cpp"].item_id.to_numpy(), r["sample"]["item_id"])

    def test_same_histories(self):
        for name, r in self.runs.items():
            with self.subTest(name):
                self.assertEqual(sorted(r["cpp_hist"]), sorted(r["py_hist"]))
                self.assertGreater(len(r["cpp_hist"]), 10)
                for user, b in r["cpp_hist"].items():
                    self.assertEqual(b, r["py_hist"][user], f"user {user}: the histories differ")
                    h = poem.UserHistory.deserialize(b)
                    self.assertEqual(h.user_id, user)
                    self.assertGreater(h.request_count, 0)
        # The weighted policy draws other tokens than the shipped top_fused one: the test would notice a
        # seed scheme that differs between the two replays.
        shipped, weighted = self.runs["shipped"]["cpp_hist"], self.runs["weighted"]["cpp_hist"]
        self.assertGreater(sum(shipped[u] != weighted[u] for u in shipped), len(shipped) // 2)

    def test_same_predictions(self):
        for name, r in self.runs.items():
            with self.subTest(name):
                cpp = r["cpp"][["long_view", "click", "watch_time"]].to_numpy().astype(np.float32)
                self.assertTrue(np.all(np.isfinite(cpp)))
                # The CSV holds %.9g: the same float32 bits as the bound ranker's.
                np.testing.assert_array_equal(cpp, r["py_cpp"])
                err = np.abs(cpp - r["py_torch"])
                self.assertLess(err.max(), 1e-4, f"largest difference {err.max():.3g} at row {err.argmax() // 3}")
                self.assertGreater(np.std(cpp[:, 0]), 0.1)  # the sequences matter: predictions vary
        # Another selection of tokens, other sequences, other predictions.
        self.assertFalse(np.array_equal(self.runs["shipped"]["py_cpp"], self.runs["weighted"]["py_cpp"]))

    def test_report(self):
        out = self.runs["shipped"]["stdout"]
        for what in ("p50", "p99", "AUC long view", "AUC click"):
            self.assertIn(what, out)
        auc = float(out.split("AUC long view: model")[1].split()[0])
        self.assertGreater(auc, 0.5)

    def test_bf16_precision_keeps_the_aucs(self):
        """The tower in bf16 (--precision bf16): the sample's AUCs stay within 0.001 of fp32's (docs/model.md)."""
        def aucs(out):
            return [float(re.search(rf"AUC {head}: +model ([0-9.]+)", out).group(1)) for head in ("long view", "click")]
        d = Path(self.tmp.name) / "bf16"
        d.mkdir(exist_ok=True)
        out, pred, hist = cpp_replay(SAMPLE / "poem_model.safetensors", d, "--precision", "bf16")
        self.assertIn("bf16)", out)
        fp32 = self.runs["shipped"]["cpp"]
        cols = ["long_view", "click", "watch_time"]
        diff = np.abs(pred[cols].to_numpy() - fp32[cols].to_numpy())
        self.assertGreater(diff.max(), 0)        # bf16 ran: its outputs differ...
        self.assertLess(diff.max(), 0.05)        # ...by bf16's rounding (about 0.015 at most on the sample)
        self.assertEqual(hist, self.runs["shipped"]["cpp_hist"])  # the state never reads the model
        for bf16_auc, fp32_auc in zip(aucs(out), aucs(self.runs["shipped"]["stdout"])):
            self.assertLess(abs(bf16_auc - fp32_auc), 1e-3)


if __name__ == "__main__":
    unittest.main()
