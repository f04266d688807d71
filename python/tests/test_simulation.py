"""The KuaiRand-grounded simulation (python/poem_eval/simulation.py, docs/simulation.md).

Properties of the simulator (no torch, no `poem` module): the same seed gives the same arrays; drift 0
keeps every user's current interest fixed; at informativeness 0 the upstream scores are a function of the
item alone, whatever the drift; the exposures' engagement rates sit near the log's; the replay of a
simulation scores many requests' mined negatives per call and gets the same bytes as one at a time.

Then the quick mode end to end (`python -m poem_eval.simulation --quick`, in a subprocess so that the
local OpenBLAS can go first on LD_LIBRARY_PATH): the pipeline trains (every run's loss falls) and the
trained models beat the item-rate floor on the simulated test requests."""
import unittest

import numpy as np

from poem_eval import simulation as S
from quick_run import quick_report


class Simulator(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.world = S.fit_world()

    def sim(self, **kw):
        kw.setdefault("n_users", 60)
        return S.simulate(self.world, S.SimConfig(**kw), offsets=(-2.0, -2.3), keep_truth=True)

    def test_world_fitted(self):
        W = self.world
        self.assertGreater(W.V.shape[0], 3000)
        np.testing.assert_allclose(W.V.sum(1), 1.0)
        np.testing.assert_allclose(W.interest.sum(1), 1.0)
        self.assertTrue((W.interest > 0).all())
        self.assertGreater(len(W.user_ids), 1000)
        m = W.marginals
        self.assertTrue(0.3 < m["heavy_click_rate"] < 0.6 and 0.2 < m["heavy_long_view_rate_rule"] < 0.5, m)

    def test_same_seed_same_arrays(self):
        a, b = self.sim(drift=0.75, informativeness=0.5, seed=3), self.sim(drift=0.75, informativeness=0.5, seed=3)
        self.assertEqual(set(a), set(b))
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        c = self.sim(drift=0.75, informativeness=0.5, seed=4)
        self.assertFalse(np.array_equal(a["users"], c["users"]) and np.array_equal(a["item"], c["item"]))

    def test_drift_zero_keeps_interest(self):
        for drift, fixed in ((0.0, True), (0.75, False)):
            s = self.sim(drift=drift, informativeness=1.0)
            first = np.searchsorted(s["user"], s["user"])  # rows are in (user, step) order
            same = np.allclose(s["interest"], s["interest"][first], atol=1e-6)
            self.assertEqual(same, fixed, f"drift {drift}")
        # With drift 0 the interest is the fitted long-term interest itself.
        s = self.sim(drift=0.0, informativeness=1.0)
        np.testing.assert_allclose(s["interest"], self.world.interest[s["users"][s["user"]]], rtol=1e-4, atol=1e-7)

    def test_uninformative_upstream_ignores_current_interest(self):
        # Retrieval reads only the long-term interest, so the candidates match across drifts; at
        # informativeness 0 so do the upstream scores, and each item has one score everywhere.
        a, b = self.sim(drift=0.0, informativeness=0.0), self.sim(drift=1.5, informativeness=0.0)
        np.testing.assert_array_equal(a["item"], b["item"])
        for k in ("p_click", "p_lv", "watch"):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        items, scores = b["item"].reshape(-1), b["p_lv"].reshape(-1)
        first = np.full(self.world.V.shape[0], np.nan, np.float32)
        first[items[::-1]] = scores[::-1]
        np.testing.assert_array_equal(first[items], scores)
        self.assertFalse(np.array_equal(a["click"], b["click"]))  # the users' feedback does follow the drift
        # An informative upstream's scores move with the drift.
        c, d = self.sim(drift=0.0, informativeness=1.0), self.sim(drift=1.5, informativeness=1.0)
        self.assertFalse(np.array_equal(c["p_lv"], d["p_lv"]))

    def test_engagement_rates_match_the_log(self):
        cfg = S.SimConfig(drift=0.75, informativeness=0.5, n_users=200, seed=1)
        s = S.simulate(self.world, cfg, S.calibrate(self.world, cfg, n_users=100))
        e = s["exposed"]
        self.assertTrue((e.sum(1) == cfg.exposed).all())
        t = self.world.targets
        self.assertAlmostEqual(float(s["click"][e].mean()), t["click"], delta=0.02)
        self.assertAlmostEqual(float(s["lv"][e].mean()), t["long_view"], delta=0.02)
        self.assertAlmostEqual(float(s["like"][e].mean()), t["like"], delta=0.006)
        # Long view follows the engagement rule (play >= min(duration, 10 s)); nothing without exposure.
        dur = self.world.duration[s["item"]]
        rule = s["play"] >= np.minimum(dur, S.LONG_VIEW_SECONDS) - 1e-4
        np.testing.assert_array_equal(s["lv"][e], rule[e])
        self.assertFalse((s["click"] | s["lv"] | (s["play"] > 0))[~e].any())

    def test_negatives_are_scored_like_candidates(self):
        # score_items gives an item the scores the upstream gave it as a candidate of the same request.
        cfg = S.SimConfig(drift=0.75, informativeness=1.0, n_users=40)
        inp = S.to_replay_input(self.world, cfg, self.sim(drift=0.75, informativeness=1.0, n_users=40))
        rq = inp.requests
        key = np.stack([rq["user"].astype(np.int64), rq["time"]], 1)
        unique_at = np.unique(key, axis=0, return_counts=True)
        once = {tuple(k) for k, c in zip(*unique_at) if c == 1}  # a user's only request in that second
        checked = 0
        for r in range(0, inp.n_requests, 7):
            if (int(rq["user"][r]), int(rq["time"][r])) not in once:
                continue
            sl = slice(rq["cand_offsets"][r], rq["cand_offsets"][r + 1])
            got = inp.score_items(int(rq["user"][r]), int(rq["time"][r]), rq["cand_item"][sl][:9])
            np.testing.assert_allclose(got, rq["cand_scores"][:, sl][:, :9], rtol=2e-6)
            checked += 1
        self.assertGreater(checked, 50)

    def test_replay_scores_many_requests_negatives_per_call(self):
        # pipeline.replay interleaves users, so one score_items call scores the mined negatives of one
        # request of every user in flight. The output is the same bytes as one user at a time (one call
        # per request), in input order. This scorer is elementwise, so batching cannot move a bit.
        import dataclasses
        from unittest import mock
        from poem_eval import pipeline as P
        cfg = S.SimConfig(drift=0.75, informativeness=1.0, n_users=40)
        inp = S.to_replay_input(self.world, cfg, self.sim(drift=0.75, informativeness=1.0, n_users=40))
        calls, score = [], inp.score_items

        def counted(users, times, items):
            calls.append((np.unique(users).size, len(items)))
            return score(users, times, items)

        inp = dataclasses.replace(inp, score_items=counted)
        pc = P.PipelineConfig(level_method="fused_tiers")
        batched = P.replay(inp, pc)
        in_batches, calls[:] = list(calls), []
        with mock.patch.object(P, "USERS_IN_FLIGHT", 1):
            alone = P.replay(inp, pc)
        self.assertEqual(set(batched), set(alone))
        for k, v in batched.items():
            if k == "counts":
                self.assertEqual(v, alone[k])
            else:
                np.testing.assert_array_equal(v, alone[k], err_msg=k)
        self.assertTrue((np.diff(batched["request_id"]) > 0).all())  # input order
        # Requests with mined negatives, per user: one call each alone; batched, one call per round.
        m = np.repeat(np.arange(len(batched["request_id"])), np.diff(batched["row_offsets"]))
        with_negatives = np.unique(m[batched["row_pos"] < 0])
        per_user = np.unique(batched["user"][with_negatives], return_counts=True)[1]
        self.assertGreater(len(per_user), 20)
        self.assertEqual(len(calls), len(with_negatives))
        self.assertEqual(len(in_batches), per_user.max())
        self.assertEqual(in_batches[0][0], len(per_user))  # every user's first such request in one call
        self.assertEqual(sum(n for _, n in in_batches), sum(n for _, n in calls))

    def test_replay_input(self):
        cfg = S.SimConfig(drift=0.75, informativeness=1.0, n_users=40)
        s = self.sim(drift=0.75, informativeness=1.0, n_users=40)
        inp = S.to_replay_input(self.world, cfg, s)
        rq = inp.requests
        self.assertEqual(inp.n_requests, len(s["user"]))
        self.assertEqual(set(np.unique(rq["split"])), {0, 1, 2})
        self.assertTrue((np.diff(rq["time"]) >= 0).all())
        self.assertEqual(int(rq["cand_exposed"].sum()), int(s["exposed"].sum()))
        lab = inp.labels()
        self.assertEqual(int(lab.cand_long_view.sum()), int(s["lv"].sum()))


class QuickSweep(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.report = quick_report("poem_eval.simulation")

    def test_loss_falls(self):
        (run,) = self.report["runs"]
        self.assertEqual(set(run["loss"]), set(S.VARIANTS_RUN))
        for v, l in run["loss"].items():
            self.assertGreater(l["steps"], 100, v)
            self.assertLess(l["last"], 0.9 * l["first"], f"{v}: loss {l['first']:.3f} -> {l['last']:.3f}")

    def test_models_beat_the_floor(self):
        (run,) = self.report["runs"]
        self.assertGreater(run["counts"]["po_tokens"], run["counts"]["requests"])
        self.assertGreater(run["floor"]["n"], 3000)
        for v, m in run["models"].items():
            for k in ("auc_long_view", "gauc_long_view", "auc_click", "gauc_click"):
                self.assertGreater(m[k], run["floor"][k], f"{v} {k}")
                self.assertLess(m[k], run["oracle"][k] + 0.01, f"{v} {k}: above the true probabilities")


if __name__ == "__main__":
    unittest.main()
