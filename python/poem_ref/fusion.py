"""PyTorch reference of poem's learned fusion: the two-step ensemble that turns a candidate's K
normalised objective scores into one fused score, and its safetensors form.

    x[k]  = fusion's normalised value of objective k (the objective's own normalisation, in [0, 1],
            1 = best; a non-finite score is 0), exactly what `poem.fuse(...)["normalized"]` holds
    step 1, per-objective components:   e[k, j] = relu(component.weight[k, j] * x[k] + component.bias[k, j])
    step 2, relation-aware aggregation: h[m]    = relu(aggregate.weight[m, :] . e.flatten() + aggregate.bias[m])
    logit = out.weight[0, :] . h + out.bias[0] + skip.weight[0, :] . x
    fused = sigmoid(logit)

Step 1 gives each objective its own learned calibration (a piecewise-linear function of its rank);
step 2 sees all objectives' components at once, so it can weigh one objective by how another stands
(HarmonRank's two-step, relation-aware ensemble). The linear skip path is the hand formula's
weighted rank: `LearnedFusion.from_hand_weights` starts there.

The C++ side (include/poem/fusion/learned.hpp) reads the tensors written by `export_fusion` under the
names `fusion.<parameter>`; a POEM model file may carry them too (`export.export(..., fusion=...)`).
"""
from __future__ import annotations

import json

import torch
from torch import nn

from .safetensors_io import read_safetensors, write_safetensors

PREFIX = "fusion."
METADATA_KEY = "poem_fusion"
FORMAT_VERSION = 1


class Component(nn.Module):
    """Step 1: K independent 1 -> D layers (one per objective), ReLU."""

    def __init__(self, k: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(k, d))
        self.bias = nn.Parameter(torch.empty(k, d).uniform_(-1.0, 0.0))

    def forward(self, x):  # [..., K] -> [..., K, D]
        return torch.relu(x.unsqueeze(-1) * self.weight + self.bias)


class LearnedFusion(nn.Module):
    def __init__(self, k: int, component_dim: int = 4, hidden: int = 16):
        super().__init__()
        if not (1 <= k <= 16 and 1 <= component_dim <= 64 and 1 <= hidden <= 256):
            raise ValueError(f"LearnedFusion: K={k} (1..16), component_dim={component_dim} (1..64), "
                             f"hidden={hidden} (1..256)")
        self.k, self.component_dim, self.hidden = k, component_dim, hidden
        self.component = Component(k, component_dim)
        self.aggregate = nn.Linear(k * component_dim, hidden)
        self.out = nn.Linear(hidden, 1)
        self.skip = nn.Linear(k, 1, bias=False)

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        """x: [..., K] normalised scores -> [...] logits."""
        e = self.component(x).flatten(-2)
        h = torch.relu(self.aggregate(e))
        return self.out(h).squeeze(-1) + self.skip(x).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [..., K] normalised scores -> [...] fused scores in (0, 1)."""
        return torch.sigmoid(self.logit(x))

    @classmethod
    def from_hand_weights(cls, weights, component_dim: int = 4, hidden: int = 16, scale: float = 4.0,
                          seed: int = 0) -> "LearnedFusion":
        """An ensemble that starts as the weighted-rank formula with `weights` (the skip path, scaled so
        that the sigmoid spreads), plus a small random two-step part for training to grow."""
        g = torch.Generator().manual_seed(seed)
        w = torch.as_tensor(weights, dtype=torch.float32)
        m = cls(len(w), component_dim, hidden)
        with torch.no_grad():
            m.component.weight.copy_(torch.randn(m.k, component_dim, generator=g))
            m.component.bias.copy_(torch.rand(m.k, component_dim, generator=g) * -1.0)
            m.aggregate.weight.normal_(0.0, (1.0 / (m.k * component_dim)) ** 0.5, generator=g)
            m.aggregate.bias.zero_()
            m.out.weight.normal_(0.0, 0.01, generator=g)
            m.out.bias.fill_(-scale / 2)
            m.skip.weight.copy_((scale * w / w.sum()).unsqueeze(0))
        return m

    def config_json(self) -> str:
        return json.dumps({"version": FORMAT_VERSION, "objectives": self.k, "component_dim": self.component_dim,
                           "hidden": self.hidden})


def fusion_tensors(m: LearnedFusion) -> dict:
    """The ensemble's tensors under their file names (`fusion.component.weight`, ...)."""
    return {PREFIX + name: t.detach().clone() for name, t in m.state_dict().items()}


def export_fusion(m: LearnedFusion, path, extra_metadata: dict = None) -> None:
    """One safetensors file holding the ensemble (float32), written to a temporary file and renamed."""
    meta = dict(extra_metadata or {})
    meta[METADATA_KEY] = m.config_json()
    write_safetensors(path, fusion_tensors(m), meta)


def load_fusion(path) -> LearnedFusion:
    """The ensemble stored at `path` (a fusion file or a model file carrying `fusion.*` tensors)."""
    tensors, meta = read_safetensors(path)
    if METADATA_KEY in meta:  # a standalone fusion file says its format version; poem reads version 1
        version = json.loads(meta[METADATA_KEY]).get("version")
        if version != FORMAT_VERSION:
            raise ValueError(f"{path}: {METADATA_KEY} version {version}, this reader knows {FORMAT_VERSION}")
    mine = {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)}
    if "component.weight" not in mine or "aggregate.weight" not in mine:
        raise ValueError(f"{path}: no fusion.* tensors")
    k, d = mine["component.weight"].shape
    h = mine["aggregate.weight"].shape[0]
    m = LearnedFusion(k, d, h)
    m.load_state_dict(mine)
    return m
