#!/usr/bin/env python3
"""PyTorch autograd reference for poem's margin pairwise losses (used by tests/test_loss.cpp).

usage: loss_reference.py IN.json OUT.json

IN holds {"cases": [{"scores": [...], "pairs": [[i, j, margin], ...], "form": "hinge" | "softplus"}]}.
OUT gets {"torch": VERSION, "cases": [{"loss": L, "grad": [...]}]}: the mean over pairs of
relu(m - (s_i - s_j)) or softplus(m - (s_i - s_j)) and its gradient with respect to the scores, by
autograd in float64 on the same (float32) numbers.
"""
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402


def run(case):
    s = torch.tensor(case["scores"], dtype=torch.float32).to(torch.float64).requires_grad_(True)
    pairs = case["pairs"]
    i = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    j = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    m = torch.tensor([p[2] for p in pairs], dtype=torch.float32).to(torch.float64)
    z = m - (s[i] - s[j])
    if case["form"] == "hinge":
        per_pair = torch.relu(z)
    else:
        per_pair = torch.nn.functional.softplus(z, beta=1.0, threshold=50.0)
    loss = per_pair.mean()
    loss.backward()
    return {"loss": float(loss), "grad": s.grad.tolist()}


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    out = {"torch": torch.__version__, "cases": [run(c) for c in spec["cases"]]}
    with open(sys.argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
