"""Learned fusion training (poem_ref.soft_rank, poem_ref.fusion_train): the soft ranks against brute-force
references (isotonic regression by its min-max formula, the projection onto the permutahedron by its
variational inequality over every vertex, gradients by finite differences), the soft AUC against the exact
AUC and the exact AUC against a pair count, then the training functions on synthetic problems whose answer
is known: HarmonRank beats the hand-weight start, BCE's loss falls, IPPO's front is non-dominated, Pantheon's
joint training reaches the ranking model's tower, and forward_hidden is forward.

Runs with `python3 -m pytest` or `python3 -m unittest` (PYTHONPATH=python), in about 15 s on one thread."""
import itertools
import math
import unittest

import numpy as np
import torch

from poem_ref.fusion import LearnedFusion
from poem_ref.fusion_train import (PantheonFusion, harmonrank_loss, ippo, pareto_front, train_bce,
                                   train_harmonrank, train_pantheon)
from poem_ref.model import PoemConfig, PoemModel, lively
from poem_ref.soft_rank import _isotonic_nonincreasing, exact_auc, soft_auc, soft_rank

torch.set_num_threads(1)


def exact_ranks(x):
    """1..n ascending, ties averaged (brute force: count smaller and equal values)."""
    x = np.asarray(x, dtype=np.float64)
    less = (x[None, :] < x[:, None]).sum(1)
    equal = (x[None, :] == x[:, None]).sum(1)
    return less + (equal + 1) / 2.0


def pair_auc(scores, labels):
    """AUC by counting (positive, negative) pairs, ties 1/2; non-finite scores below every finite one."""
    s = np.where(np.isfinite(scores), scores, -np.inf)
    pos, neg = s[labels == 1], s[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    wins = 0.0
    for p in pos:
        for q in neg:
            wins += 1.0 if p > q else 0.5 if p == q else 0.0
    return wins / (len(pos) * len(neg))


class SoftRank(unittest.TestCase):
    def test_isotonic_matches_min_max_formula(self):
        # v_i = min_{j <= i} max_{k >= i} mean(y[j..k]) is the non-increasing isotonic regression
        r = np.random.default_rng(0)
        # cascades: each pooling makes a new violation one block up, past the vectorised passes, so the
        # stack finishes them
        cascades = [np.append(np.linspace(0.0, -1.0, 25), 3.0), np.append(np.linspace(0.0, -1.0, 12), [2.0, 9.0]),
                    np.concatenate((np.linspace(0.0, -2.0, 9), [1.0], np.linspace(-2.5, -3.0, 5), [4.0]))]
        for trial in range(40 + len(cascades)):
            n = int(r.integers(1, 30))
            y = r.integers(-4, 5, size=n).astype(np.float64) if trial % 2 else r.normal(size=n)
            if trial >= 40:
                y = cascades[trial - 40]
                n = len(y)
            means, counts = _isotonic_nonincreasing(y)
            v = np.repeat(means, counts)
            c = np.concatenate(([0.0], np.cumsum(y)))
            ref = np.array([min(max((c[k + 1] - c[j]) / (k + 1 - j) for k in range(i, n)) for j in range(i + 1))
                            for i in range(n)])
            np.testing.assert_allclose(v, ref, atol=1e-12)
            self.assertTrue(np.all(np.diff(v) <= 1e-12))

    def test_projection_onto_the_permutahedron(self):
        # p is the projection of z = x / eps iff p lies in the hull (majorised by (n..1)) and
        # <z - p, q - p> <= 0 for every vertex q (every permutation of 1..n)
        r = np.random.default_rng(1)
        n = 5
        w = np.arange(n, 0, -1.0)
        verts = np.array(list(itertools.permutations(range(1, n + 1))), dtype=np.float64)
        for trial in range(30):
            x = r.normal(size=n) if trial % 3 else r.integers(0, 3, size=n).astype(np.float64)
            eps = float(r.choice([0.05, 0.3, 1.0, 5.0]))
            p = soft_rank(torch.tensor(x), eps).numpy()
            z = x / eps
            ps = np.sort(p)[::-1]
            self.assertAlmostEqual(p.sum(), w.sum(), places=9)
            self.assertTrue(np.all(np.cumsum(ps) <= np.cumsum(w) + 1e-9), (x, eps, p))
            self.assertLessEqual(((verts - p) @ (z - p)).max(), 1e-9, (x, eps, p))
            # the order of x is kept, ties share their value
            self.assertTrue(np.all(np.diff(p[np.argsort(x, kind="stable")]) >= -1e-12))

    def test_gradient_matches_finite_differences(self):
        g = torch.Generator().manual_seed(2)
        for n, eps in [(1, 0.5), (2, 0.5), (9, 0.1), (16, 0.3), (16, 3.0), (40, 0.05)]:
            x = torch.randn(n, generator=g, dtype=torch.float64, requires_grad=True)
            self.assertTrue(torch.autograd.gradcheck(lambda t: soft_rank(t, eps), (x,)), (n, eps))
        x = torch.randn(3, 12, generator=g, dtype=torch.float64)           # rows ranked separately
        x[0, 3] = x[0, 5]                                                  # a tie: pooled, still smooth
        self.assertTrue(torch.autograd.gradcheck(lambda t: soft_rank(t, 0.2), (x.requires_grad_(),)))
        y = (torch.rand(12, 2, generator=g) < 0.5).double()
        y[0], y[1] = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
        s = torch.randn(12, generator=g, dtype=torch.float64, requires_grad=True)
        self.assertTrue(torch.autograd.gradcheck(lambda t: soft_auc(t, y, 0.2), (s,)))

    def test_exact_ranks_as_strength_goes_to_zero(self):
        r = np.random.default_rng(3)
        x = r.normal(size=200)
        gap = np.diff(np.sort(x)).min()
        exact = exact_ranks(x)
        for eps in [gap, gap / 10, gap / 1000]:
            np.testing.assert_allclose(soft_rank(torch.tensor(x), eps).numpy(), exact, atol=1e-6)
        # above the gap the ranks soften, and far above it they all tend to the mean rank
        self.assertGreater(np.abs(soft_rank(torch.tensor(x), 100 * gap).numpy() - exact).max(), 1e-3)
        far = soft_rank(torch.tensor(x), 1e6).numpy()
        np.testing.assert_allclose(far, np.full(200, 100.5), atol=1e-3)
        # ties get their average rank, at any strength small enough
        t = np.array([3.0, 1.0, 3.0, 2.0, 3.0, 1.0])
        np.testing.assert_allclose(soft_rank(torch.tensor(t), 1e-3).numpy(), exact_ranks(t), atol=1e-9)
        # float32 in, float32 out, same ranks
        x32 = torch.tensor(x, dtype=torch.float32)
        out = soft_rank(x32, np.diff(np.sort(x32.double().numpy())).min() / 10)
        self.assertEqual(out.dtype, torch.float32)
        np.testing.assert_allclose(out.numpy(), exact, atol=1e-4)
        # rows of a matrix are ranked separately
        m = torch.tensor(r.normal(size=(4, 30)))
        rows = soft_rank(m, 0.05)
        for i in range(4):
            self.assertTrue(torch.equal(rows[i], soft_rank(m[i], 0.05)))

    def test_monotone_invariance(self):
        r = np.random.default_rng(4)
        s = np.round(r.normal(size=300), 1)                                # many ties
        y = (r.random(300) < 0.4).astype(np.float64)
        base = exact_auc(s, y)
        for f in (np.exp, lambda v: 3 * v + 1, lambda v: v ** 3, np.arctan):
            self.assertAlmostEqual(exact_auc(f(s), y), base, places=12)
        ranks = soft_rank(torch.tensor(s), 1e-6).numpy()
        np.testing.assert_allclose(soft_rank(torch.tensor(np.exp(s)), 1e-6).numpy(), ranks, atol=1e-6)
        np.testing.assert_allclose(soft_rank(torch.tensor(s), 1e-6).numpy(), exact_ranks(s), atol=1e-6)

    def test_refuses_bad_input(self):
        with self.assertRaises(ValueError):
            soft_rank(torch.tensor([1.0, float("nan")]), 1.0)
        for bad in (0.0, -1.0, math.inf, math.nan):
            with self.assertRaises(ValueError):
                soft_rank(torch.tensor([1.0, 2.0]), bad)
        with self.assertRaises(TypeError):
            soft_rank(torch.tensor([1, 2]), 1.0)
        with self.assertRaises(ValueError):
            soft_auc(torch.tensor([1.0, 2.0]), [0, 2], 1.0)
        with self.assertRaises(ValueError):
            exact_auc([1.0, 2.0, 3.0], [0, 1])


class Auc(unittest.TestCase):
    def test_exact_auc_against_pair_count(self):
        r = np.random.default_rng(5)
        for trial in range(30):
            n = int(r.integers(2, 60))
            s = r.integers(0, 6, size=n).astype(np.float64) if trial % 2 else r.normal(size=n)
            if trial % 5 == 0:
                s[r.integers(n)] = np.nan
                s[r.integers(n)] = np.inf
            y = (r.random(n) < 0.5).astype(np.float64)
            ref = pair_auc(s, y)
            got = exact_auc(s, y)
            if math.isnan(ref):
                self.assertTrue(math.isnan(got))
            else:
                self.assertAlmostEqual(got, ref, places=12)
        # [n, K] labels: one AUC per column
        y2 = np.stack([y, 1 - y], 1)
        np.testing.assert_allclose(exact_auc(s, y2), [exact_auc(s, y), exact_auc(s, 1 - y)])

    def test_soft_auc_tends_to_exact_auc(self):
        r = np.random.default_rng(6)
        s = r.normal(size=500)
        y = (r.random((500, 3)) < [0.1, 0.5, 0.8]).astype(np.float64)
        gap = np.diff(np.sort(s)).min()
        exact = exact_auc(s, y)
        np.testing.assert_allclose(soft_auc(torch.tensor(s), y, gap / 2).numpy(), exact, atol=1e-9)
        prev = None
        for eps in [gap * 10, 0.01, 0.1, 1.0, 100.0]:                      # in [0, 1], toward 1/2
            v = soft_auc(torch.tensor(s), y, eps).numpy()
            self.assertTrue(np.all((v >= 0) & (v <= 1)))
            dist = np.abs(v - 0.5)
            if prev is not None:
                self.assertTrue(np.all(dist <= prev + 1e-12))
            prev = dist
        self.assertLess(prev.max(), 0.01)
        # with ties, the soft AUC at a small strength counts a tie 1/2, as the exact one does
        t = np.round(s, 1)
        np.testing.assert_allclose(soft_auc(torch.tensor(t), y, 1e-6).numpy(), exact_auc(t, y), atol=1e-9)

    def test_one_class_adds_nothing(self):
        s = torch.randn(50, dtype=torch.float64, requires_grad=True)
        y = np.zeros((50, 2))
        y[:20, 1] = 1
        v = soft_auc(s, y, 0.5)
        self.assertEqual(float(v[0]), 0.0)
        self.assertTrue(torch.isfinite(v).all())
        v[0].backward()
        self.assertTrue(torch.equal(s.grad, torch.zeros(50, dtype=torch.float64)))
        self.assertTrue(math.isnan(exact_auc(s.detach(), y[:, 0])))


def synthetic(n, seed):
    """Two objectives whose labels both follow one peaked (non-monotone) rule of x: the oracle fused
    score is g, and the hand formula (a weighted sum of x) ranks worse than chance."""
    r = np.random.default_rng(seed)
    x = r.random((n, 2)).astype(np.float32)
    g = -3 * np.abs(x[:, 0] - 0.6) - 2 * np.abs(x[:, 1] - 0.3)
    p = 1 / (1 + np.exp(-np.stack([3 * g + 1, 4 * g + 0.5], 1)))
    return x, (r.random((n, 2)) < p).astype(np.float32), g


def fused_auc(model, x, y):
    with torch.no_grad():
        return exact_auc(model.logit(torch.as_tensor(x)), y)


class Training(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.xt, cls.yt, _ = synthetic(8192, 1)
        cls.xv, cls.yv, cls.gv = synthetic(8192, 2)

    def test_harmonrank_beats_the_hand_weights(self):
        model = LearnedFusion.from_hand_weights([1.0, 1.0], seed=1)
        init = fused_auc(model, self.xv, self.yv)
        oracle = exact_auc(self.gv, self.yv)
        hist = train_harmonrank(model, self.xt, self.yt, [0.5, 0.5], epochs=60, lr=0.02, seed=0)
        got = fused_auc(model, self.xv, self.yv)
        self.assertTrue(np.all(got > init + 0.2), (init, got))
        self.assertTrue(np.all(got > oracle - 0.04), (oracle, got))
        self.assertLess(np.mean(hist["step_loss"][-20:]), np.mean(hist["step_loss"][:20]) - 0.2)
        # with validation the result is never worse than the start, on the validation set
        model = LearnedFusion.from_hand_weights([1.0, 1.0], seed=1)
        hist = train_harmonrank(model, self.xt, self.yt, [0.5, 0.5], epochs=3, lr=0.02, seed=0,
                                validate=lambda m: float(np.mean(fused_auc(m, self.xv, self.yv))), patience=2)
        self.assertEqual(len(hist["val"]), 4)
        self.assertAlmostEqual(float(np.mean(fused_auc(model, self.xv, self.yv))), max(hist["val"]), places=6)

    def test_bce_loss_falls_and_runs_are_deterministic(self):
        states = []
        for _ in range(2):
            model = LearnedFusion.from_hand_weights([1.0, 1.0], seed=1)
            hist = train_bce(model, self.xt, self.yt, [0.3, 0.7], epochs=8, lr=0.02, seed=5)
            self.assertLess(hist["loss"][-1], 0.8 * hist["loss"][0])
            states.append(model.state_dict())
        for name in states[0]:
            self.assertTrue(torch.equal(states[0][name], states[1][name]), name)
        with self.assertRaises(ValueError):
            train_bce(model, self.xt, self.yt, [0.5, -0.1])
        with self.assertRaises(ValueError):
            train_bce(model, self.xt[:, :1], self.yt[:, :1], [1.0])

    def test_harmonrank_loss_is_scale_invariant(self):
        logit = torch.randn(300, dtype=torch.float64)
        y = torch.as_tensor(self.yt[:300])
        p = torch.tensor([0.5, 0.5])
        a = harmonrank_loss(logit, y, p, 4.0)
        b = harmonrank_loss(7 * logit - 3, y, p, 4.0)
        self.assertAlmostEqual(float(a), float(b), places=9)


def conflict(n, seed):
    """Two objectives that pull apart: y0 follows x0, y1 follows x1 (independent)."""
    r = np.random.default_rng(seed)
    x = r.random((n, 2)).astype(np.float32)
    p = 1 / (1 + np.exp(-(6 * x - 3)))
    return x, (r.random((n, 2)) < p).astype(np.float32)


class Ippo(unittest.TestCase):
    def test_pareto_front_against_brute_force(self):
        r = np.random.default_rng(7)
        for trial in range(30):
            m, k = int(r.integers(1, 25)), int(r.integers(1, 4))
            pts = r.integers(0, 4, size=(m, k)).astype(np.float64)       # ties and duplicates
            if trial % 4 == 0:
                pts[0, 0] = np.nan
                pts[-1, -1] = np.inf
            front = pareto_front(pts)
            ref = [i for i in range(m) if np.isfinite(pts[i]).all() and not any(
                np.isfinite(pts[j]).all() and np.all(pts[j] >= pts[i]) and np.any(pts[j] > pts[i])
                for j in range(m))]
            self.assertEqual(front.tolist(), ref)
        try:
            import poem
        except ImportError:
            return
        # the compiled module's Pareto levels agree: its level 0 is this front
        pts = r.integers(0, 5, size=(40, 3)).astype(np.float32)
        levels = poem.assign_levels(pts.T.copy(), np.zeros(40, np.float32), poem.LevelConfig(directions=[poem.Direction.higher_is_better] * 3))
        self.assertEqual(np.flatnonzero(levels == 0).tolist(), pareto_front(pts).tolist())

    def test_ippo_keeps_a_non_dominated_front(self):
        xt, yt = conflict(3000, 1)
        xv, yv = conflict(3000, 2)
        calls = []

        def train_fn(prefs, init):
            calls.append(init is not None)
            m = LearnedFusion.from_hand_weights([0.5, 0.5], seed=0)
            if init is not None:
                m.load_state_dict(init)
            train_harmonrank(m, xt, yt, prefs, epochs=3, lr=0.03, batch_size=1500, seed=0)
            return m

        res = ippo(train_fn, lambda m: fused_auc(m, xv, yv), k=2, rounds=2, per_round=2, seed=3)
        self.assertEqual(len(res.entries), 3 + 2 * 2)
        self.assertEqual(calls, [False] * 3 + [True] * 4)                  # later rounds warm-start
        metrics = np.array([e.metrics for e in res.entries])
        for i in range(len(metrics)):
            dominated = any(np.all(metrics[j] >= metrics[i]) and np.any(metrics[j] > metrics[i])
                            for j in range(len(metrics)))
            self.assertEqual(i in res.front, not dominated, (i, metrics))
        for i, e in enumerate(res.entries):
            self.assertAlmostEqual(float(e.prefs.sum()), 1.0, places=12)
            self.assertTrue(np.all(e.prefs >= 0))
            if e.round > 0:
                # warm-started from the front member of the earlier rounds nearest in preference space
                earlier = [j for j in range(len(res.entries)) if res.entries[j].round < e.round]
                front_then = [earlier[j] for j in pareto_front(metrics[earlier])]
                dist = [np.abs(res.entries[j].prefs - e.prefs).sum() for j in front_then]
                self.assertEqual(e.parent, front_then[int(np.argmin(dist))])
        # the trade-off is real: the front holds members that favour each objective
        front = metrics[res.front]
        self.assertGreater(len(front), 1)
        self.assertGreater(front[:, 0].max() - front[:, 0].min(), 0.02)
        # the stored weights are the evaluated model's
        m = LearnedFusion.from_hand_weights([0.5, 0.5])
        m.load_state_dict(res.entries[res.front[0]].state)
        np.testing.assert_allclose(fused_auc(m, xv, yv), res.entries[res.front[0]].metrics)
        # same seed, same walk
        again = ippo(train_fn, lambda m: fused_auc(m, xv, yv), k=2, rounds=1, per_round=2, seed=3)
        for a, b in zip(again.entries, res.entries):
            np.testing.assert_array_equal(a.prefs, b.prefs)


def poem_batches(cfg, n_batches, seed):
    g = torch.Generator().manual_seed(seed)
    B, N, Lc, Lp, K = 3, 64, 5, 6, cfg.n_objectives
    out = []
    for _ in range(n_batches):
        cand_feats = torch.rand(B, N, 3 + K, generator=g)
        cand_feats[..., 2] = torch.randint(0, cfg.n_levels, (B, N), generator=g).float()
        inputs = (torch.randint(0, cfg.vocab, (B, N), generator=g), cand_feats,
                  torch.randint(0, cfg.vocab, (B, Lc), generator=g), torch.rand(B, Lc, 1 + cfg.chrono_feats,
                                                                               generator=g) * 100,
                  torch.rand(B, Lc, generator=g) < 0.8, torch.randint(0, cfg.vocab, (B, Lp), generator=g),
                  torch.rand(B, Lp, 4, generator=g) * 3, torch.rand(B, Lp, generator=g) < 0.8)
        labels = (torch.rand(B, N, K, generator=g) < cand_feats[..., 3:]).float()
        mask = torch.ones(B, N, dtype=torch.bool)
        mask[-1, N // 2:] = False                                         # a padded request
        out.append({"inputs": inputs, "labels": labels, "mask": mask})
    return out


class Pantheon(unittest.TestCase):
    cfg = PoemConfig(vocab=50, d=8, n_objectives=2, mlp=[16, 8], heads=["long_view", "click"])

    def test_forward_hidden_is_forward(self):
        torch.manual_seed(0)
        model = lively(PoemModel(self.cfg))
        inputs = poem_batches(self.cfg, 1, 0)[0]["inputs"]
        with torch.no_grad():
            out, hidden = model.forward_hidden(*inputs)
            self.assertTrue(torch.equal(out, model(*inputs)))
            self.assertTrue(torch.equal(model.head(hidden), out))
        self.assertEqual(tuple(hidden.shape), (3, 64, 8))

    def test_joint_training_reaches_the_tower(self):
        torch.manual_seed(0)
        model = PoemModel(self.cfg)
        fusion = PantheonFusion.from_hand_weights([1.0, 1.0], hidden_in=self.cfg.mlp[-1], seed=0)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        fusion_before = {k: v.clone() for k, v in fusion.state_dict().items()}
        batches = poem_batches(self.cfg, 4, 1)
        # the model's own loss is zero here: whatever moves the tower came through the ensemble's loss
        hist = train_pantheon(model, fusion, batches, lambda out, b: out.sum() * 0.0, [0.5, 0.5], beta=1.0,
                              epochs=2, lr=1e-2, seed=0)
        self.assertEqual(len(hist["step_loss"]), 8)
        self.assertTrue(all(math.isfinite(v) for v in hist["step_loss"]))
        after = model.state_dict()
        self.assertFalse(torch.equal(before["tower.0.weight"], after["tower.0.weight"]))
        self.assertFalse(torch.equal(before["tower.2.weight"], after["tower.2.weight"]))
        self.assertTrue(torch.equal(before["head.weight"], after["head.weight"]))
        self.assertFalse(torch.equal(fusion_before["project.weight"], fusion.state_dict()["project.weight"]))
        # with the model's own loss too, and the hand formula's start: the x part starts as LearnedFusion's
        base = LearnedFusion.from_hand_weights([1.0, 1.0], seed=0)
        f2 = PantheonFusion.from_hand_weights([1.0, 1.0], hidden_in=8, seed=0)
        x = torch.rand(10, 2)
        self.assertTrue(torch.allclose(f2.logit(x, torch.zeros(10, 8)), base.logit(x), atol=1e-6))

        def bce(out, b):
            return torch.nn.functional.binary_cross_entropy_with_logits(out[..., :2], b["labels"])
        hist = train_pantheon(model, f2, batches, bce, [0.5, 0.5], beta=0.5, epochs=1, lr=1e-2, seed=0,
                              validate=lambda m, f: 0.0)
        self.assertEqual(len(hist["val"]), 2)


if __name__ == "__main__":
    unittest.main()
