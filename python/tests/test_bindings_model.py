"""The poem module's Model: golden fixtures, the PyTorch reference on random models, and input checks."""
import glob
import json
import os
import tempfile
import threading
import unittest

import numpy as np

import poem

FIXTURES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "..", "..", "tests", "fixtures", "model"))

try:  # the reference comparison needs PyTorch (Debian's python3-torch, which `make test` installs)
    import torch

    from poem_ref import PoemConfig, PoemModel, hash_ids, lively
    from poem_ref.export import export, load
except ImportError as e:  # the fixture tests still run; ModelVersusReference fails
    torch = None
    TORCH_ERROR = e


def fixture_request(case, config):
    """A fixture case (flat JSON lists) as predict's keyword arguments, in the exact dtypes."""
    n, lc, lp = case["n"], case["lc"], case["lp"]
    f32 = lambda key: np.asarray(case[key], np.float32)  # noqa: E731
    return dict(
        cand_item_id=np.asarray(case["cand_ids"], np.uint64), cand_fused=f32("cand_fused"),
        cand_rank_pct=f32("cand_rank_pct"), cand_level=np.asarray(case["cand_level"], np.uint32),
        objectives=f32("cand_objectives").reshape(config["n_objectives"], n),
        chrono_item_id=np.asarray(case["chrono_ids"], np.uint64), chrono_age=f32("chrono_age"),
        chrono_features=f32("chrono_feats").reshape(lc, config["chrono_feats"]),
        chrono_mask=np.asarray(case["chrono_mask"], np.uint8),
        po_item_id=np.asarray(case["po_ids"], np.uint64), po_fused=f32("po_fused"), po_rank_pct=f32("po_rank_pct"),
        po_level=np.asarray(case["po_level"], np.uint32), po_age=f32("po_age"),
        po_mask=np.asarray(case["po_mask"], np.uint8))


def random_request(config, rng, n, lc, lp, chrono_off=False, po_off=False):
    """Random inputs with about a quarter of the tokens masked; `*_off` masks a whole sequence."""
    ids = lambda k: rng.integers(0, 2**64, size=k, dtype=np.uint64)  # noqa: E731
    f32 = lambda *shape, lo=0.0, hi=1.0: rng.uniform(lo, hi, size=shape).astype(np.float32)  # noqa: E731
    mask = lambda k, off: np.zeros(k, np.uint8) if off else (rng.random(k) < 0.75).astype(np.uint8)  # noqa: E731
    levels = lambda k: rng.integers(0, config.n_levels + 2, size=k).astype(np.uint32)  # noqa: E731
    return dict(
        cand_item_id=ids(n), cand_fused=f32(n), cand_rank_pct=f32(n), cand_level=levels(n),
        objectives=f32(config.n_objectives, n),
        chrono_item_id=ids(lc), chrono_age=f32(lc, lo=-10.0, hi=1e6),
        chrono_features=f32(lc, config.chrono_feats, lo=-1.0, hi=1.0), chrono_mask=mask(lc, chrono_off),
        po_item_id=ids(lp), po_fused=f32(lp), po_rank_pct=f32(lp), po_level=levels(lp),
        po_age=f32(lp, hi=5e5), po_mask=mask(lp, po_off))


def reference_predict(model, r):
    """PoemModel's float64 forward on one request given as predict's keyword arguments."""
    vocab = model.config.vocab
    t = lambda a: torch.as_tensor(np.asarray(a, np.float64))  # noqa: E731
    rows = lambda a: torch.as_tensor(hash_ids(a, vocab))[None]  # noqa: E731
    cand_feats = torch.cat([t(r["cand_fused"])[:, None], t(r["cand_rank_pct"])[:, None],
                            t(r["cand_level"])[:, None], t(r["objectives"]).T], dim=1)
    chrono_feats = torch.cat([t(r["chrono_age"])[:, None], t(r["chrono_features"])], dim=1)
    po_feats = torch.stack([t(r["po_fused"]), t(r["po_rank_pct"]), t(r["po_level"]), t(r["po_age"])], dim=1)
    with torch.no_grad():
        y = model(rows(r["cand_item_id"]), cand_feats[None], rows(r["chrono_item_id"]), chrono_feats[None],
                  torch.as_tensor(r["chrono_mask"].astype(bool))[None], rows(r["po_item_id"]), po_feats[None],
                  torch.as_tensor(r["po_mask"].astype(bool))[None])
    return y[0].numpy()


class ModelGolden(unittest.TestCase):
    def test_fixtures_match_pytorch_outputs(self):
        paths = sorted(glob.glob(os.path.join(FIXTURES, "*.json")))
        self.assertGreaterEqual(len(paths), 4)
        for path in paths:
            with open(path) as f:
                fixture = json.load(f)
            model = poem.Model.load(os.path.join(FIXTURES, fixture["model"]))
            self.assertEqual(model.config, {k: fixture["config"][k] for k in model.config})
            self.assertEqual(model.outputs, fixture["outputs"])
            ws = poem.Workspace()
            for i, case in enumerate(fixture["cases"]):
                with self.subTest(fixture=fixture["model"], case=i):
                    y = model.predict(**fixture_request(case, fixture["config"]), workspace=ws)
                    self.assertEqual(y.dtype, np.float32)
                    self.assertEqual(y.shape, (case["n"], fixture["outputs"]))
                    expected = np.asarray(case["expected"]).reshape(y.shape)
                    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5)

    def test_from_bytes_and_path_like(self):
        import pathlib
        path = os.path.join(FIXTURES, "small_bf16.safetensors")
        with open(path, "rb") as f:
            from_memory = poem.Model.from_bytes(f.read())
        from_path = poem.Model.load(pathlib.Path(path))
        with open(os.path.join(FIXTURES, "small_bf16.json")) as f:
            fixture = json.load(f)
        r = fixture_request(fixture["cases"][0], fixture["config"])
        np.testing.assert_array_equal(from_memory.predict(**r), from_path.predict(**r))

    def test_bf16_precision(self):
        """precision="bf16": PyTorch's forward with the tower's weights and inputs rounded to bf16 (the
        fixture's expected_bf16): nearly every output within 1e-5, none beyond 0.05 (a layer input that
        rounds to the other bf16 neighbour in fp32 than in float64 moves its candidate's outputs)."""
        with open(os.path.join(FIXTURES, "po_f32.json")) as f:
            fixture = json.load(f)
        path = os.path.join(FIXTURES, fixture["model"])
        model = poem.Model.load(path, precision="bf16")
        self.assertEqual(model.precision, "bf16")
        self.assertEqual(poem.Model.load(path).precision, "fp32")
        with open(path, "rb") as f:
            from_memory = poem.Model.from_bytes(f.read(), precision="bf16")
        self.assertEqual(from_memory.precision, "bf16")
        close = total = 0
        from_fp32 = 0.0
        for i, case in enumerate(fixture["cases"]):
            with self.subTest(case=i):
                r = fixture_request(case, fixture["config"])
                y = model.predict(**r)
                diff = np.abs(y - np.asarray(case["expected_bf16"]).reshape(y.shape))
                self.assertLess(diff.max(), 0.05)
                close, total = close + int((diff <= 1e-5).sum()), total + diff.size
                from_fp32 = max(from_fp32, float(np.abs(y - np.asarray(case["expected"]).reshape(y.shape)).max()))
                np.testing.assert_array_equal(from_memory.predict(**r), y)
        self.assertGreaterEqual(close, 0.9 * total)
        self.assertGreater(from_fp32, 1e-3)  # bf16 ran: fp32 is far from nearly all of them
        with self.assertRaisesRegex(poem.Error, 'precision "fp16" is not one of "fp32", "bf16"'):
            poem.Model.load(path, precision="fp16")
        with self.assertRaises(TypeError):
            poem.Model.load(path, precision=16)

    def test_other_dtypes_convert(self):
        """int64 ids, bool masks, float64 and Fortran-ordered features give the same result."""
        with open(os.path.join(FIXTURES, "po_f32.json")) as f:
            fixture = json.load(f)
        model = poem.Model.load(os.path.join(FIXTURES, fixture["model"]))
        r = fixture_request(fixture["cases"][0], fixture["config"])
        # int64 ids convert when none is negative: ids of 2^63 and above wrap negative in int64 and are refused
        # (they used to be reinterpreted as the uint64 they came from), so this request keeps its ids below 2^63.
        with self.assertRaisesRegex(poem.Error, "cand_item_id.*negative"):
            model.predict(**dict(r, cand_item_id=(r["cand_item_id"] | np.uint64(2**63)).astype(np.int64)))
        r = dict(r, cand_item_id=r["cand_item_id"] >> np.uint64(1))
        loose = dict(r, cand_item_id=r["cand_item_id"].astype(np.int64), cand_fused=r["cand_fused"].astype(np.float64),
                     cand_level=r["cand_level"].astype(np.int64), objectives=np.asfortranarray(r["objectives"]),
                     chrono_mask=r["chrono_mask"].astype(bool), po_mask=r["po_mask"].astype(bool))
        np.testing.assert_array_equal(model.predict(**loose), model.predict(**r))


class ModelVersusReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A missing PyTorch is a failure, not a skip: the comparison with the reference must run.
        if torch is None:
            raise AssertionError(f"PyTorch reference unavailable ({TORCH_ERROR}): install python3-torch (make deps)")

    CONFIGS = [
        dict(vocab=300, d=24, n_heads=3, n_objectives=3, n_levels=5, chrono_feats=2, mlp=[40, 19],
             heads=["long_view", "click"]),
        dict(vocab=300, d=16, n_heads=2, n_objectives=0, n_levels=3, chrono_feats=0, mlp=[32], use_po=False),
    ]

    def check_config(self, seed, **fields):
        torch.manual_seed(seed)
        config = PoemConfig(**fields)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.safetensors")
            export(lively(PoemModel(config)), path)
            reference = load(path).double().eval()  # exactly the weights the file holds
            model = poem.Model.load(path)
        rng = np.random.default_rng(seed)
        ws = poem.Workspace()
        cases = [dict(n=1, lc=9, lp=6), dict(n=7, lc=30, lp=25), dict(n=300, lc=64, lp=48),
                 dict(n=7, lc=12, lp=10, chrono_off=True), dict(n=300, lc=5, lp=40, po_off=True),
                 dict(n=7, lc=8, lp=8, chrono_off=True, po_off=True), dict(n=7, lc=0, lp=0)]
        for case in cases:
            with self.subTest(config=fields, **case):
                r = random_request(config, rng, **case)
                y = model.predict(**r, workspace=ws)
                self.assertEqual(y.shape, (case["n"], len(config.heads)))
                self.assertTrue(np.all(np.isfinite(y)))
                np.testing.assert_allclose(y, reference_predict(reference, r), rtol=0, atol=1e-5)

    def test_random_models(self):
        for seed, fields in enumerate(self.CONFIGS, start=11):
            self.check_config(seed, **fields)

    def test_masked_tokens_are_ignored(self):
        """Changing what a masked token holds changes nothing."""
        torch.manual_seed(4)
        config = PoemConfig(**self.CONFIGS[0])
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.safetensors")
            export(lively(PoemModel(config)), path)
            model = poem.Model.load(path)
        r = random_request(config, np.random.default_rng(4), n=7, lc=20, lp=20)
        other = dict(r)
        for key in ("chrono_item_id", "chrono_age", "po_item_id", "po_fused", "po_level"):
            prefix = key.split("_")[0]
            other[key] = np.where(r[prefix + "_mask"] == 0, r[key] * 3 + 1, r[key]).astype(r[key].dtype)
        np.testing.assert_array_equal(model.predict(**other), model.predict(**r))


class ModelErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(FIXTURES, "po_f32.json")) as f:
            fixture = json.load(f)
        cls.model = poem.Model.load(os.path.join(FIXTURES, fixture["model"]))
        cls.request = fixture_request(fixture["cases"][0], fixture["config"])  # N = 37, Lc = 20, Lp = 30

    def assert_names(self, argument, **changes):
        with self.assertRaisesRegex(ValueError, argument):
            self.model.predict(**dict(self.request, **changes))

    def test_shape_errors_name_the_argument(self):
        r = self.request
        self.assert_names(r"objectives: expected shape \(4, 37\)", objectives=r["objectives"][:3])
        self.assert_names("objectives: expected a 2-D array", objectives=r["objectives"].ravel())
        self.assert_names("cand_fused: expected 37 elements, got 36", cand_fused=r["cand_fused"][:-1])
        self.assert_names("cand_level: expected a 1-D array", cand_level=r["cand_level"][None])
        self.assert_names("chrono_mask: expected 20 elements, got 19", chrono_mask=r["chrono_mask"][1:])
        self.assert_names(r"chrono_features: expected shape \(20, 2\)", chrono_features=r["chrono_features"][:, :1])
        self.assert_names("po_mask: expected 30 elements, got 31", po_mask=np.append(r["po_mask"], 1))
        self.assert_names("po_age", po_age=r["po_age"][:5])

    def test_errors_are_poem_errors(self):
        with self.assertRaises(poem.Error):
            self.model.predict(**dict(self.request, cand_rank_pct=self.request["cand_rank_pct"][:2]))

    def test_missing_and_corrupt_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaisesRegex(ValueError, "cannot open"):
                poem.Model.load(os.path.join(tmp, "missing.safetensors"))
        with self.assertRaises(ValueError):
            poem.Model.from_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")  # valid, but no poem_config
        with self.assertRaises(ValueError):
            poem.Model.from_bytes(b"short")

    def test_empty_request_and_threads(self):
        r = self.request
        empty = dict(r, cand_item_id=r["cand_item_id"][:0], cand_fused=r["cand_fused"][:0],
                     cand_rank_pct=r["cand_rank_pct"][:0], cand_level=r["cand_level"][:0],
                     objectives=r["objectives"][:, :0])
        self.assertEqual(self.model.predict(**empty).shape, (0, 3))

        # One model, one workspace per thread: every thread gets the single-threaded answer.
        expected = self.model.predict(**r)
        results = [None] * 4

        def score(slot):
            ws = poem.Workspace()
            results[slot] = [self.model.predict(**r, workspace=ws) for _ in range(20)]

        threads = [threading.Thread(target=score, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for runs in results:
            for y in runs:
                np.testing.assert_array_equal(y, expected)


if __name__ == "__main__":
    unittest.main()
