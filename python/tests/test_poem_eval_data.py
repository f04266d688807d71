"""poem_eval: requests, candidates, popularity without look-ahead, metrics and the upstream ranker.

Runs on the quick mode (a seeded user subsample of KuaiRand-Pure) in a temporary cache directory.
Run: PYTHONPATH=python /usr/bin/python3 -m unittest discover -s python/tests -p "test_poem_eval*" -v
Data: KuaiRand (Gao et al., CIKM 2022, https://kuairand.com), CC BY-SA 4.0.
"""
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
import unittest
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from poem_eval import metrics  # noqa: E402
from poem_eval.data import (SPLIT_POEM_TRAIN, SPLIT_TEST, SPLIT_UPSTREAM, EvalConfig,  # noqa: E402
                            build_eval_data, load_npz, sample_unexposed, sessionize)

DATA_DIR = Path(EvalConfig().data_dir)
HAVE_DATA = (DATA_DIR / EvalConfig().log_file).exists()


def brute_auc(y, s):
    pos = s[y == 1]
    neg = s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    gt = (pos[:, None] > neg[None, :]).sum()
    eq = (pos[:, None] == neg[None, :]).sum()
    return (gt + 0.5 * eq) / (len(pos) * len(neg))


class Metrics(unittest.TestCase):
    def test_auc_matches_pair_counting(self):
        rng = np.random.default_rng(1)
        for trial in range(30):
            n = int(rng.integers(2, 60))
            y = rng.integers(0, 2, n)
            s = rng.integers(0, 5, n).astype(np.float64) if trial % 2 else rng.random(n)
            ref = brute_auc(y, s)
            got = metrics.auc(y, s)
            if np.isnan(ref):
                self.assertTrue(np.isnan(got))
            else:
                self.assertAlmostEqual(got, ref, places=12)
        self.assertEqual(metrics.auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]), 0.5)
        self.assertEqual(metrics.auc([0, 0, 1], [0.1, 0.2, 0.3]), 1.0)
        with self.assertRaises(ValueError):
            metrics.auc([0, 1], [0.1, np.nan])

    def test_gauc_matches_per_user_loop(self):
        rng = np.random.default_rng(2)
        for trial in range(10):
            n = 300
            users = rng.integers(0, 25, n)
            y = rng.integers(0, 2, n)
            s = rng.integers(0, 6, n).astype(np.float64) if trial % 2 else rng.random(n)
            num = den = 0.0
            for u in np.unique(users):
                m = users == u
                a = brute_auc(y[m], s[m])
                if not np.isnan(a):
                    num += a * m.sum()
                    den += m.sum()
            self.assertAlmostEqual(metrics.gauc(users, y, s), num / den, places=12)
        self.assertTrue(np.isnan(metrics.gauc([1, 2], [1, 0], [0.3, 0.2])))

    def test_watch_time_error(self):
        w = metrics.watch_time_error([0.0, 9.0], [1.0, 9.0])
        self.assertAlmostEqual(w["mae_s"], 0.5)
        self.assertAlmostEqual(w["rmse_s"], np.sqrt(0.5))
        self.assertAlmostEqual(w["mae_log1p"], np.log(2) / 2)
        self.assertAlmostEqual(w["rmse_log1p"], np.log(2) / np.sqrt(2))

    def test_smoothed_item_rate(self):
        items = np.array([0, 0, 0, 1])
        y = np.array([1, 1, 0, 0])
        a = 0.5
        got = metrics.smoothed_item_rate(items, y, [0, 1, 2], m=2.0)
        np.testing.assert_allclose(got, [(2 + a * 2) / (3 + 2), (0 + a * 2) / (1 + 2), a])


class Sampling(unittest.TestCase):
    def test_sessionize_gap_rule(self):
        user = np.array([0, 0, 0, 0, 1, 1])
        t = np.array([0, 300_000, 600_001, 600_002, 600_003, 900_003])
        np.testing.assert_array_equal(sessionize(user, t, 300.0), [0, 0, 1, 1, 2, 2])

    def test_sample_unexposed_excludes_and_is_distinct(self):
        rng = np.random.default_rng(0)
        counts = np.zeros(100, dtype=np.int64)
        counts[:60] = np.arange(60, 0, -1)
        offsets = np.array([0, 3, 3, 8])
        exp_items = np.array([0, 1, 2, 5, 6, 7, 8, 99])
        neg = sample_unexposed(rng, counts, offsets, exp_items, 50)
        self.assertEqual(neg.shape, (3, 50))
        for r in range(3):
            row = neg[r]
            self.assertEqual(len(set(row.tolist())), 50)
            self.assertFalse(set(row.tolist()) & set(exp_items[offsets[r]:offsets[r + 1]].tolist()))
            self.assertTrue(np.all(counts[row] > 0))
        with self.assertRaises(ValueError):
            sample_unexposed(rng, counts, offsets, exp_items, 58)


class FilesAreReplacedWhole(unittest.TestCase):
    """poem_eval.files: a write that fails leaves the old file whole and no temporary behind."""

    def test_failed_write_keeps_the_old_file(self):
        import tempfile
        from poem_eval.files import replace_atomically, write_text
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "table.md"
            write_text(p, "old")
            with self.assertRaises(RuntimeError):
                with replace_atomically(p) as f:
                    f.write("half of the new")
                    raise RuntimeError("disk full")
            self.assertEqual(p.read_text(), "old")
            self.assertEqual(sorted(x.name for x in Path(d).iterdir()), ["table.md"])
            write_text(p, "new")
            self.assertEqual(p.read_text(), "new")


@unittest.skipUnless(HAVE_DATA, f"KuaiRand-Pure not found under {DATA_DIR}")
class QuickData(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="poem_eval_test_")
        cls.cfg = EvalConfig(quick=True, cache_dir=cls.tmp)
        t0 = time.time()
        cls.data = build_eval_data(cls.cfg, show_progress=False)
        cls.build_s = time.time() - t0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_gap_rule_bruteforce_on_sample(self):
        d = self.data
        rng = np.random.default_rng(5)
        users = rng.choice(len(d.user_ids), size=min(400, len(d.user_ids)), replace=False)
        for u in users:
            sl = d.user_log(u)
            t = d.log_time_s[sl]
            reqs = d.log_request[sl]
            self.assertTrue(np.all(np.diff(t) >= 0))
            self.assertTrue(np.all(d.log_user[sl] == u))
            groups, cur = [], [0]
            for i in range(1, len(t)):
                if t[i] - t[i - 1] <= 300.0 + 1e-9:
                    cur.append(i)
                else:
                    groups.append(cur)
                    cur = [i]
            groups.append(cur)
            self.assertEqual(len(set(reqs.tolist())), len(groups))
            for g in groups:
                r = reqs[g[0]]
                self.assertTrue(np.all(reqs[g] == r))
                self.assertEqual(d.req_user[r], u)
                self.assertAlmostEqual(d.req_time_s[r], t[g[0]], places=3)
                self.assertAlmostEqual(d.req_end_time_s[r], t[g[-1]], places=3)
                exposed = d.cand_item[d.candidates(r)][d.cand_exposed[d.candidates(r)] == 1]
                self.assertEqual(set(exposed.tolist()), set(d.log_item[sl][g].tolist()))

    def test_requests_in_time_order_and_split_by_first_day(self):
        d = self.data
        self.assertTrue(np.all(np.diff(d.req_time_s) >= 0))
        order = np.lexsort((d.log_time_s, d.log_request))
        req_sorted = d.log_request[order]
        first = order[np.r_[True, req_sorted[1:] != req_sorted[:-1]]]
        np.testing.assert_array_equal(d.log_request[first], np.arange(d.n_requests))   # none empty
        np.testing.assert_array_equal(d.req_date, d.log_date[first])                  # day of first
        self.assertTrue(np.all(d.req_split[np.isin(d.req_date, self.cfg.upstream_days)] == SPLIT_UPSTREAM))
        self.assertTrue(np.all(d.req_split[np.isin(d.req_date, self.cfg.poem_train_days)] == SPLIT_POEM_TRAIN))
        self.assertTrue(np.all(d.req_split[np.isin(d.req_date, self.cfg.test_days)] == SPLIT_TEST))

    def test_candidate_counts_and_labels(self):
        d = self.data
        n = np.diff(d.req_offsets)
        np.testing.assert_array_equal(n, d.req_n_exposed + self.cfg.n_neg)
        self.assertEqual(int(d.cand_exposed.sum()), int(d.req_n_exposed.sum()))
        unexp = d.cand_exposed == 0
        for lab in ("click", "long_view", "like", "follow"):
            self.assertEqual(int(getattr(d, "cand_" + lab)[unexp].sum()), 0)
        self.assertEqual(float(d.cand_play_time_s[unexp].sum()), 0.0)
        self.assertEqual(float(d.cand_duration_s[unexp].sum()), 0.0)
        rng = np.random.default_rng(6)
        for r in rng.choice(d.n_requests, size=500, replace=False):
            sl = d.candidates(r)
            e = d.cand_exposed[sl]
            k = d.req_n_exposed[r]
            self.assertTrue(np.all(e[:k] == 1) and np.all(e[k:] == 0))   # exposed first
            items = d.cand_item[sl]
            self.assertEqual(len(set(items.tolist())), len(items))        # distinct candidates
        # exposures not dropped: every collapsed exposure is a log row and maps to an exposed candidate
        rep = d.meta["log_report"]
        self.assertEqual(len(d.log_item), rep["exposures"])
        self.assertEqual(rep["exposures"] - rep["repeated_item_in_request_extra_exposures"],
                         int(d.cand_exposed.sum()))
        self.assertEqual(rep["quick_rows_kept"] - rep["same_key_extra_rows"], rep["exposures"])

    def test_no_lookahead_in_popularity(self):
        d = self.data
        pop_days = self.cfg.pop_days
        self.assertLess(max(pop_days), min(self.cfg.poem_train_days))
        ref = np.bincount(d.log_item[np.isin(d.log_date, pop_days)], minlength=len(d.item_pop_counts))
        np.testing.assert_array_equal(d.item_pop_counts, ref)
        self.assertTrue(np.all(d.item_pop_counts[d.cand_item[d.cand_exposed == 0]] > 0))
        with self.assertRaises(ValueError):
            EvalConfig(popularity_days=(20220427, 20220428))

    def test_future_rows_do_not_change_the_past(self):
        # Rebuild from a copy of the (quick users') log whose POEM and test days are scrambled: the
        # popularity counts and every upstream-day request's candidates must not change.
        import pandas as pd
        d = self.data
        src = pd.read_csv(DATA_DIR / self.cfg.log_file)
        src = src[src.user_id.isin(d.user_ids)]
        with tempfile.TemporaryDirectory() as tmp:
            a_dir, b_dir = Path(tmp, "a"), Path(tmp, "b")
            for p in (a_dir, b_dir):
                p.mkdir()
                os.symlink(DATA_DIR / self.cfg.features_file, p / self.cfg.features_file)
            src.to_csv(a_dir / self.cfg.log_file, index=False)
            late = src.date.to_numpy() > min(self.cfg.poem_train_days)   # clear of date-spanning requests
            scr = src.copy()
            rng = np.random.default_rng(9)
            scr.loc[late, "video_id"] = rng.permutation(scr.loc[late, "video_id"].to_numpy())
            scr.loc[late, "is_click"] = 1 - scr.loc[late, "is_click"].to_numpy()
            scr.to_csv(b_dir / self.cfg.log_file, index=False)
            da = build_eval_data(EvalConfig(data_dir=str(a_dir), cache_dir=tmp), show_progress=False)
            db = build_eval_data(EvalConfig(data_dir=str(b_dir), cache_dir=str(Path(tmp, "cb"))),
                                 show_progress=False)
        np.testing.assert_array_equal(da.item_pop_counts, db.item_pop_counts)
        ua = da.requests_of_split(SPLIT_UPSTREAM)
        ub = db.requests_of_split(SPLIT_UPSTREAM)
        np.testing.assert_array_equal(ua, ub)
        end = int(da.req_offsets[ua[-1] + 1])
        np.testing.assert_array_equal(da.cand_item[:end], db.cand_item[:end])
        # and the same-seed rebuild of the unscrambled subsample reproduces the quick data
        np.testing.assert_array_equal(da.req_offsets, d.req_offsets)
        np.testing.assert_array_equal(da.cand_item, d.cand_item)

    def test_determinism_by_seed(self):
        with tempfile.TemporaryDirectory() as tmp:
            again = build_eval_data(EvalConfig(quick=True, cache_dir=tmp), force=True, show_progress=False)
            for k, v in self.data.arrays.items():
                np.testing.assert_array_equal(v, again.arrays[k], err_msg=k)
            other = build_eval_data(EvalConfig(quick=True, cache_dir=tmp, seed=1), show_progress=False)
        self.assertNotEqual(other.meta["config_hash"], self.data.meta["config_hash"])
        self.assertFalse(np.array_equal(other.cand_item, self.data.cand_item))

    def test_cache_file_and_metadata(self):
        p = self.cfg.cache_path()
        self.assertTrue(p.exists())
        self.assertIn(self.cfg.config_hash(), p.name)
        self.assertNotEqual(EvalConfig(quick=True, n_neg=10).config_hash(), self.cfg.config_hash())
        _, meta = load_npz(p)
        self.assertIn("KuaiRand", meta["attribution"])
        self.assertEqual(meta["license"], "CC-BY-SA-4.0")

    def test_floor_beats_chance(self):
        fl = metrics.floor_report(self.data)
        self.assertLess(max(fl["train_days"]), min(fl["eval_days"]))
        self.assertGreater(fl["metrics"]["auc_long_view"], 0.55)
        self.assertGreater(fl["metrics"]["auc_click"], 0.55)

    def test_upstream_quick(self):
        from poem_eval import upstream
        from poem_eval.data import DEFAULT_CACHE_DIR
        # The suite's cache (POEM_EVAL_CACHE), where the evaluation's quick runs find the same upstream
        # model: trained here once (or loaded), then trained again below on this test's own copy.
        t0 = time.time()
        shared = build_eval_data(EvalConfig(quick=True), show_progress=False)
        self.assertEqual(shared.meta["config_hash"], self.data.meta["config_hash"])
        ups = upstream.build_upstream_scores(shared, show_progress=False)
        up_s = time.time() - t0
        # Time is reported, not asserted: a shared machine's load would make it flaky (speed lives in
        # benchmarks); about 30 s on a quiet 2-core machine.
        print(f"quick data + upstream: {self.build_s + up_s:.1f} s", file=sys.stderr)
        s = ups.scores
        self.assertEqual(s.shape, (3, self.data.n_candidates))
        self.assertTrue(np.all(np.isfinite(s)))
        self.assertTrue(np.all((s[:2] >= 0) & (s[:2] <= 1)) and np.all(s[2] >= 0))
        ev = ups.report["eval"]["poem_train"]
        self.assertGreater(ev["auc_click"], 0.55)
        self.assertGreater(ev["auc_long_view"], 0.55)
        np.testing.assert_array_equal(ups.req_in_sample, self.data.req_split == SPLIT_UPSTREAM)
        self.assertEqual(ups.request_scores(self.data, 3).shape, (3, int(np.diff(self.data.req_offsets)[3])))
        # deterministic: a second training, on this test's own build of the data, gives the same scores
        again = upstream.train_and_score(self.data, upstream.UpstreamConfig(), show_progress=False)
        np.testing.assert_array_equal(again.scores, s)
        # the command line summary runs on the cached arrays
        buf = io.StringIO()
        from poem_eval import data as data_mod
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
            data_mod.main(["--summary", "--quick", "--cache-dir", DEFAULT_CACHE_DIR])
        self.assertIn("floor on test days", buf.getvalue())
        self.assertIn("upstream ranker", buf.getvalue())


if __name__ == "__main__":
    unittest.main()
