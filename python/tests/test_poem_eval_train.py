"""The evaluation end to end in quick mode (python -m poem_eval.run --quick): the pipeline builds POEM's
inputs, trains POEM and the chronological baseline, and evaluates them on the test days.

Asserts that training works (each run's loss over its last 10% of steps is below its first 10%), that
the models beat chance on the held-out days, and that the inputs hold what POEM needs (graph-mined hard
negatives, pairs, partial-order tokens). Runs in a subprocess so that Debian's OpenBLAS, when
scripts/local-openblas.sh has unpacked it under build/openblas, can be put first on LD_LIBRARY_PATH."""
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPENBLAS = ROOT / "build" / "openblas" / "usr" / "lib" / "x86_64-linux-gnu" / "openblas-pthread"


class QuickEvaluation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        env = dict(os.environ)
        if (OPENBLAS / "libblas.so.3").exists():
            env["LD_LIBRARY_PATH"] = f"{OPENBLAS}:{env.get('LD_LIBRARY_PATH', '')}"
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "quick.json"
            run = subprocess.run([sys.executable, "-m", "poem_eval.run", "--quick", "--json", str(out)],
                                 env=env, capture_output=True, text=True, timeout=600)
            if run.returncode != 0:
                raise AssertionError(f"poem_eval.run --quick failed:\n{run.stdout}\n{run.stderr[-3000:]}")
            cls.report = json.loads(out.read_text())

    def test_loss_falls(self):
        loss = self.report["loss"]
        self.assertEqual(set(loss), {"poem/0", "chrono_baseline/0"})
        for run, l in loss.items():
            self.assertGreater(l["steps"], 50, run)
            self.assertLess(l["last"], 0.95 * l["first"], f"{run}: loss {l['first']:.3f} -> {l['last']:.3f}")

    def test_metrics_beat_chance(self):
        for variant, runs in self.report["results"].items():
            for m in runs:
                self.assertGreater(m["auc_long_view"], 0.55, variant)
                self.assertGreater(m["auc_click"], 0.55, variant)
                self.assertGreater(m["n"], 1000, variant)

    def test_inputs(self):
        c = self.report["inputs"]["pareto"]
        self.assertGreater(c["hard_negatives"], 0)
        self.assertGreater(c["pairs"], c["requests"])
        self.assertGreater(c["po_tokens"], 0)
        self.assertGreater(self.report["graph_edges"]["pareto"], 1000)


if __name__ == "__main__":
    unittest.main()
