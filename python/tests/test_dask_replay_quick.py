"""The replay on Dask against the single-process replay on the evaluation's quick split (KuaiRand).

A LocalCluster of 2 worker processes replays the quick split's requests in 3 and 7 partitions (one
partition: test_dask_replay.py, on the sample); each output equals pipeline.replay()'s in one process,
byte for byte after the canonical sort. Needs the KuaiRand data (registered by CMake only where it
exists) and PyTorch for the upstream scores; the fault tests run on the shipped sample
(test_dask_replay.py)."""
import tempfile
import unittest
from pathlib import Path

from distributed import Client, LocalCluster

import test_dask_replay as base
from poem_eval import distributed as dd
from poem_eval.adapters import from_eval_data
from poem_eval.data import EvalConfig, build_eval_data
from poem_eval.pipeline import replay
from poem_eval.upstream import build_upstream_scores


class QuickSplitOnDask(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        data = build_eval_data(EvalConfig(quick=True), show_progress=False)
        cls.inp = from_eval_data(data, build_upstream_scores(data, show_progress=False).scores)
        cls.single = replay(cls.inp)
        cls.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        cls.client = Client(cls.cluster)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()

    def test_partitions_equal_single_process(self):
        self.assertGreater(len(self.single["request_id"]), 10000)
        for n in (3, 7):
            with self.subTest(partitions=n), tempfile.TemporaryDirectory() as d:
                m = dd.run(self.inp, d, n, self.client)
                base.check_manifest(self, Path(d), n)
                self.assertEqual(sum(e["requests_in"] for e in m["partitions"]), self.inp.n_requests)
                base.assert_same_output(self, dd.load(d), self.single)


if __name__ == "__main__":
    unittest.main()
