"""The replay on Dask against the single-process replay, on the shipped KuaiRand sample.

On a LocalCluster of 2 worker processes: 1, 3 and 7 partitions give, after the canonical sort, the same
bytes as pipeline.replay() in one process; a worker killed (SIGKILL) in the middle of a partition has
its partition rerun, with no request lost or duplicated; a partition that keeps failing is left out of
the manifest, which says the job is incomplete. And the input schema refuses bad columns by name.
test_dask_replay_quick.py runs the comparison on the evaluation's quick split. Dask comes from
Debian's python3-dask and python3-distributed (installed by `make test`): its absence is a failure."""
import json
import os
import signal
import sys
import tempfile
import unittest
from pathlib import Path

import cloudpickle
import numpy as np
from distributed import Client, LocalCluster

from poem_eval import distributed as dd
from poem_eval.adapters import from_sample
from poem_eval.pipeline import replay
from poem_eval.schema import OUTPUT, ReplayInput, canonical, partition_of

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = Path(os.environ.get("POEM_SAMPLE_DIR", ROOT / "data" / "kuairand_sample"))

# The fault-injecting tasks below run on the workers, which cannot import this test module by name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def killed_once(in_path, out_path):
    """Partition 1's first attempt dies by SIGKILL halfway through writing its output; then it works."""
    marker = Path(out_path).parent / "killed.marker"
    if Path(in_path).name == "part-00001.npz" and not marker.exists():
        marker.write_text(str(os.getpid()))
        with open(f"{out_path}.tmp{os.getpid()}", "wb") as f:
            f.write(b"PK half a file")
            f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return dd.replay_partition(in_path, out_path)


def always_fails(in_path, out_path):
    if Path(in_path).name == "part-00001.npz":
        raise OSError("disk full (injected)")
    return dd.replay_partition(in_path, out_path)


def assert_same_output(test, got: dict, want: dict):
    got, want = canonical(got), canonical(want)
    for k, (dtype, _) in OUTPUT.items():
        test.assertEqual(got[k].dtype, dtype, k)
        test.assertEqual(got[k].shape, want[k].shape, k)
        test.assertEqual(got[k].tobytes(), want[k].tobytes(), f"{k} differs")


def check_manifest(test, out_dir: Path, n_partitions: int, complete: bool = True) -> dict:
    m = json.loads((out_dir / "manifest.json").read_text())
    test.assertEqual(m["complete"], complete)
    test.assertEqual(m["n_partitions"], n_partitions)
    parts = [e["partition"] for e in m["partitions"]]
    test.assertEqual(parts, sorted(set(parts)))
    for e in m["partitions"]:
        test.assertEqual(e["file"], f"part-{e['partition']:05d}.npz")
    test.assertEqual(list(out_dir.glob("*.tmp*")), [], "a temporary file was left behind")
    return m


class DaskReplay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.inp = from_sample(SAMPLE)
        cls.single = replay(cls.inp)
        cls.cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        cls.client = Client(cls.cluster)
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()
        cls.tmp.cleanup()

    def out_dir(self, name) -> Path:
        return Path(self.tmp.name) / name

    def test_partitions_equal_single_process(self):
        self.assertGreater(len(self.single["request_id"]), 300)
        for n in (1, 3, 7):
            with self.subTest(partitions=n):
                d = self.out_dir(f"p{n}")
                m = dd.run(self.inp, d, n, self.client)
                check_manifest(self, d, n)
                self.assertEqual(len(m["partitions"]), n)
                self.assertEqual(sum(e["requests_in"] for e in m["partitions"]), self.inp.n_requests)
                assert_same_output(self, dd.load(d), self.single)

    def test_a_user_stays_in_one_partition(self):
        users = self.inp.requests["user"]
        p = partition_of(users, 7)
        for u in np.unique(users):
            self.assertEqual(len(np.unique(p[users == u])), 1)
        self.assertGreater(len(np.unique(p)), 3)  # and the users spread

    def test_killed_worker_loses_and_duplicates_nothing(self):
        d = self.out_dir("killed")
        m = dd.run(self.inp, d, 3, self.client, task=killed_once)
        self.assertTrue((d / "killed.marker").exists(), "the fault was not injected")
        check_manifest(self, d, 3)
        self.assertEqual(sorted(e["partition"] for e in m["partitions"]), [0, 1, 2])
        out = dd.load(d)
        ids = out["request_id"]
        self.assertEqual(len(ids), len(np.unique(ids)), "a request was written twice")
        self.assertEqual(sorted(ids), sorted(self.single["request_id"]), "a request was lost")
        assert_same_output(self, out, self.single)

    def test_failed_partition_is_not_in_the_manifest(self):
        d = self.out_dir("failed")
        with self.assertRaisesRegex(RuntimeError, "partition 1 failed"):
            dd.run(self.inp, d, 3, self.client, task=always_fails, retries=1)
        m = check_manifest(self, d, 3, complete=False)
        self.assertEqual([e["partition"] for e in m["partitions"]], [0, 2])
        with self.assertRaisesRegex(ValueError, "2 of 3 partitions"):
            dd.load(d)
        partial = dd.load(d, allow_partial=True)  # what is listed is whole (sha256 checked)
        self.assertEqual(len(partial["request_id"]), sum(e["requests"] for e in m["partitions"]))


class ScoreItemsStaysHome(unittest.TestCase):
    def test_an_input_with_score_items_is_refused(self):
        import dataclasses
        inp = dataclasses.replace(from_sample(SAMPLE, requests_limit=40), score_items=lambda u, t, items: None)
        with tempfile.TemporaryDirectory() as d, self.assertRaisesRegex(ValueError, "score_items does not travel"):
            dd.write_partitions(inp, d, 2)


class InputSchema(unittest.TestCase):
    def setUp(self):
        s = from_sample(SAMPLE, requests_limit=40)
        self.rq = dict(s.requests)
        self.eg = {k: v for k, v in s.engagements.items()}

    def refused(self, exc, pattern):
        with self.assertRaisesRegex(exc, pattern):
            ReplayInput.from_columns(self.rq, self.eg)

    def test_the_sample_is_accepted(self):
        ReplayInput.from_columns(self.rq, self.eg)

    def test_wrong_dtype(self):
        self.rq["time"] = self.rq["time"].astype(np.float64)
        self.refused(TypeError, r"requests\.time: expected int")

    def test_wrong_shape(self):
        self.rq["cand_scores"] = self.rq["cand_scores"][:, :-1]
        self.refused(ValueError, r"requests\.cand_scores: expected \d+ entries")

    def test_missing_column(self):
        del self.eg["click"]
        self.refused(ValueError, r"engagements\.click: missing column")

    def test_time_out_of_order_within_a_user(self):
        u = self.rq["user"][0]
        mine = np.flatnonzero(self.rq["user"] == u)
        self.assertGreater(len(mine), 1)
        self.rq["time"] = self.rq["time"].copy()
        self.rq["time"][mine[0]] = self.rq["time"][mine[1]] + 1
        self.eg["time"] = self.eg["time"] + 10 ** 6  # engagements stay after their requests
        self.refused(ValueError, r"requests\.time: not in time order within user")

    def test_engagement_before_its_request(self):
        self.eg["time"] = self.eg["time"].copy()
        self.eg["time"][0] -= 10 ** 6
        self.refused(ValueError, r"engagements\.time: row 0 is before")

    def test_engagement_of_an_unknown_request(self):
        self.eg["request_id"] = self.eg["request_id"].copy()
        self.eg["request_id"][0] = 10 ** 12
        self.refused(ValueError, r"engagements\.request_id: 1000000000000 is not a request")

    def test_non_finite_score_is_replayed(self):
        self.rq["cand_scores"] = self.rq["cand_scores"].copy()
        self.rq["cand_scores"][1, 3] = np.nan  # ranked last and flagged by the ranker, never refused
        out = replay(ReplayInput.from_columns(self.rq, self.eg))
        self.assertTrue(np.isfinite(out["row_feats"]).all())

    def test_flag_not_0_or_1(self):
        self.eg["like"] = self.eg["like"].astype(np.int64) * 2
        self.refused(ValueError, r"engagements\.like: a flag must be 0 or 1")


if __name__ == "__main__":
    unittest.main()
