#!/usr/bin/python3
"""Golden fixtures for the C++ model parity tests (tests/fixtures/model/).

For each fixture model: a seeded PoemModel exported as safetensors (F32, and F16 / BF16 for the reader
tests), and a JSON file of request inputs (raw 64-bit ids, float features, masks) with the reference
outputs. The reference outputs are computed by PyTorch in float64 from the exported (float32, or
F16/BF16-rounded) weights; the float32 PyTorch forward is checked to agree with them within 4e-6.
`expected_bf16` is the same float64 forward with the tower's and heads' weights and inputs rounded to
bfloat16 (through float32, round to nearest even): what the C++ model computes when loaded with
precision bf16 (model/detail/gemm_bf16.hpp), its sums aside.

Usage: /usr/bin/python3 python/tools/make_golden.py [out_dir]   (default: tests/fixtures/model)
Deterministic: the same torch/numpy give byte-identical files.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from poem_ref import PoemConfig, PoemModel, hash_ids, lively  # noqa: E402
from poem_ref.export import bf16_tower, export, load, round_to  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "fixtures", "model"))

MODELS = {
    # name: (config, seed, dtypes exported, cases)
    "po": (PoemConfig(vocab=1000, d=32, n_heads=1, n_objectives=4, n_levels=6, chrono_feats=2,
                      mlp=[256, 128, 64]), 1,
           ["F32"],
           [dict(n=37, lc=20, lp=30), dict(n=1, lc=20, lp=30), dict(n=37, lc=13, lp=9, chrono_masked=True),
            dict(n=16, lc=5, lp=7, chrono_masked=True, po_masked=True), dict(n=37, lc=100, lp=100)]),
    "chrono": (PoemConfig(vocab=500, d=32, n_heads=2, n_objectives=3, n_levels=4, chrono_feats=0,
                          mlp=[64, 32], use_po=False), 2,
               ["F32"],
               [dict(n=37, lc=20, lp=10), dict(n=1, lc=3, lp=4), dict(n=9, lc=6, lp=5, chrono_masked=True)]),
    "small": (PoemConfig(vocab=200, d=16, n_heads=4, n_objectives=2, n_levels=3, chrono_feats=1,
                         mlp=[48, 17]), 3,
              ["F32", "F16", "BF16"],
              [dict(n=37, lc=11, lp=12), dict(n=1, lc=2, lp=3)]),
}


def make_inputs(cfg: PoemConfig, rs: np.random.RandomState, n, lc, lp, chrono_masked=False, po_masked=False):
    def ids(k):
        return rs.randint(0, 2**63 - 1, size=k, dtype=np.int64).astype(np.uint64) * np.uint64(2) + \
            rs.randint(0, 2, size=k).astype(np.uint64)

    def f32(*shape, lo=0.0, hi=1.0):
        return rs.uniform(lo, hi, size=shape).astype(np.float32)

    def mask(k, off):
        m = rs.uniform(size=k) < 0.75
        if k:
            m[0] = True
        return np.zeros(k, bool) if off else m

    return dict(
        n=n, lc=lc, lp=lp,
        cand_ids=ids(n), cand_fused=f32(n), cand_rank_pct=f32(n),
        cand_level=rs.randint(0, cfg.n_levels + 2, size=n).astype(np.uint32),
        cand_objectives=f32(cfg.n_objectives, n),          # K x N, objectives as rows
        chrono_ids=ids(lc), chrono_age=f32(lc, lo=-5.0, hi=1e6), chrono_feats=f32(lc, cfg.chrono_feats, lo=-1, hi=1),
        chrono_mask=mask(lc, chrono_masked),
        po_ids=ids(lp), po_fused=f32(lp), po_rank_pct=f32(lp),
        po_level=rs.randint(0, cfg.n_levels + 2, size=lp).astype(np.uint32),
        po_age=f32(lp, lo=0.0, hi=5e5), po_mask=mask(lp, po_masked),
    )


def to_torch(cfg: PoemConfig, x: dict, dtype):
    v = cfg.vocab
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype)  # noqa: E731
    cand_feats = torch.cat([t(x["cand_fused"])[:, None], t(x["cand_rank_pct"])[:, None],
                            t(x["cand_level"])[:, None], t(x["cand_objectives"]).T], dim=1)
    chrono_feats = torch.cat([t(x["chrono_age"])[:, None], t(x["chrono_feats"])], dim=1)
    po_feats = torch.stack([t(x["po_fused"]), t(x["po_rank_pct"]), t(x["po_level"]), t(x["po_age"])], dim=1)
    ids = lambda a: torch.as_tensor(hash_ids(a, v))[None]  # noqa: E731
    return (ids(x["cand_ids"]), cand_feats[None], ids(x["chrono_ids"]), chrono_feats[None],
            torch.as_tensor(x["chrono_mask"])[None], ids(x["po_ids"]), po_feats[None],
            torch.as_tensor(x["po_mask"])[None])


def jsonable(x: dict):
    out = {}
    for k, a in x.items():
        if isinstance(a, np.ndarray):
            if a.dtype == np.uint64:
                out[k] = [int(i) for i in a.ravel()]
            elif a.dtype == bool:
                out[k] = [int(i) for i in a.ravel()]
            elif a.dtype == np.uint32:
                out[k] = [int(i) for i in a.ravel()]
            else:
                out[k] = [float(f) for f in a.astype(np.float32).ravel()]   # exact float32 values
        else:
            out[k] = a
    return out


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    worst = 0.0
    for name, (cfg, seed, dtypes, cases) in MODELS.items():
        torch.manual_seed(seed)
        model = lively(PoemModel(cfg)).eval()
        rs = np.random.RandomState(seed)
        inputs = [make_inputs(cfg, rs, **c) for c in cases]
        for dt in dtypes:
            path = os.path.join(out_dir, f"{name}_{dt.lower()}.safetensors")
            export(model, path, dtype=dt)
            ref = round_to(load(path), dt).eval()     # exactly the weights the file holds
            ref64 = load(path).double().eval()
            ref_bf16 = bf16_tower(load(path).double().eval())
            out_cases = []
            for x in inputs:
                with torch.no_grad():
                    y64 = ref64(*to_torch(cfg, x, torch.float64))[0]
                    y32 = ref(*to_torch(cfg, x, torch.float32))[0]
                    y_bf16 = ref_bf16(*to_torch(cfg, x, torch.float64))[0]
                diff = float((y32.double() - y64).abs().max())
                worst = max(worst, diff)
                if diff > 4e-6:
                    raise SystemExit(f"{name}/{dt}: float32 and float64 PyTorch differ by {diff}")
                if not torch.isfinite(y64).all():
                    raise SystemExit(f"{name}/{dt}: non-finite reference output")
                c = jsonable(x)
                c["expected"] = [float(v) for v in y64.ravel()]
                c["expected_bf16"] = [float(v) for v in y_bf16.ravel()]
                out_cases.append(c)
            fixture = {"model": os.path.basename(path), "dtype": dt, "config": json.loads(cfg.to_json()),
                       "outputs": len(cfg.heads), "cases": out_cases}
            with open(os.path.join(out_dir, f"{name}_{dt.lower()}.json"), "w") as f:
                json.dump(fixture, f, separators=(",", ":"))
                f.write("\n")
    print(f"poem: golden model fixtures written to {out_dir} (float32 vs float64 PyTorch: max |diff| {worst:.2e})")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT)
