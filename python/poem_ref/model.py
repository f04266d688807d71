"""The POEM model as a PyTorch nn.Module: the reference that poem's C++ forward pass reproduces.

Inputs of one request (B requests in a batch; N candidates; Lc chronological and Lp partial-order
tokens; docs/model.md has the full description):
  cand_ids     B x N      int64  hashed item rows (`hash_ids(item_id_u64, vocab)`)
  cand_feats   B x N x (3+K)     [fused_score, rank_pct, level, K normalised objective scores]
  chrono_ids   B x Lc     int64  hashed rows
  chrono_feats B x Lc x (1+F)    [age_seconds, F float features]
  chrono_mask  B x Lc     bool   True = real token
  po_ids       B x Lp     int64  hashed rows
  po_feats     B x Lp x 4        [fused_score, rank_pct, level, age_seconds]
  po_mask      B x Lp     bool
Output: B x N x len(heads), raw head outputs (logits for long_view and click, a value for watch_time).

Levels arrive as floats in the feature tensors and are clamped to [0, n_levels - 1]; ages are clamped
at 0 before log1p. Masked tokens are ignored (their ids and features may be anything finite); a fully
masked sequence attends to nothing and contributes zeros.
"""
import json
import math
from dataclasses import asdict, dataclass, field
from typing import List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIG_KEY = "poem_config"
FORMAT_VERSION = 1


@dataclass
class PoemConfig:
    vocab: int = 100000           # rows of the hashed item-id embedding
    d: int = 32                   # embedding and attention width
    n_heads: int = 1              # attention heads (d % n_heads == 0)
    n_objectives: int = 4         # K normalised objective scores per candidate
    n_levels: int = 8             # partial-order levels (larger levels are clamped to the last)
    chrono_feats: int = 1         # F float features per chronological token, besides its age
    mlp: List[int] = field(default_factory=lambda: [256, 128, 64])
    heads: List[str] = field(default_factory=lambda: ["long_view", "click", "watch_time"])
    use_po: bool = True           # False: the chronological-only baseline (no partial-order branch)

    def validate(self):
        if self.vocab < 1 or self.d < 1 or self.n_heads < 1 or self.d % self.n_heads:
            raise ValueError("PoemConfig: need vocab >= 1, d >= 1, d % n_heads == 0")
        if self.n_levels < 2 or self.n_objectives < 0 or self.chrono_feats < 0:
            raise ValueError("PoemConfig: need n_levels >= 2, n_objectives >= 0, chrono_feats >= 0")
        if not self.mlp or min(self.mlp) < 1 or not self.heads:
            raise ValueError("PoemConfig: need a non-empty mlp of positive widths and at least one head")
        return self

    def tower_in(self) -> int:
        return self.d * (3 if self.use_po else 2) + 3 + self.n_objectives

    def to_json(self) -> str:
        return json.dumps(dict(asdict(self), version=FORMAT_VERSION, hash="splitmix64"), sort_keys=True)

    @staticmethod
    def from_json(s: str) -> "PoemConfig":
        d = json.loads(s)
        d.pop("version", None)
        d.pop("hash", None)
        return PoemConfig(**d).validate()


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def hash_ids(ids, vocab: int) -> np.ndarray:
    """Row of each 64-bit item id: SplitMix64's finaliser, then modulo `vocab` (same in C++)."""
    z = np.asarray(ids, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(vocab)).astype(np.int64)


class TargetAttention(nn.Module):
    """Scaled dot-product attention of each candidate (query) over one sequence (keys, values)."""

    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.d, self.h = d, n_heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)

    def forward(self, cand, tokens, mask):
        # cand B x N x d, tokens B x L x d, mask B x L (bool)
        B, N, d = cand.shape
        L = tokens.shape[1]
        dh = d // self.h
        q = self.q(cand).view(B, N, self.h, dh).transpose(1, 2)      # B h N dh
        k = self.k(tokens).view(B, L, self.h, dh).transpose(1, 2)    # B h L dh
        v = self.v(tokens).view(B, L, self.h, dh).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh)     # B h N L
        m = mask[:, None, None, :]
        s = s.masked_fill(~m, float("-inf"))
        any_valid = mask.any(dim=-1)[:, None, None, None]            # B 1 1 1
        s = torch.where(any_valid, s, torch.zeros_like(s))           # all masked: no NaN
        p = torch.softmax(s, dim=-1) * any_valid.to(s.dtype)
        p = p.masked_fill(~m, 0.0)
        out = torch.matmul(p, v)                                     # B h N dh
        return out.transpose(1, 2).reshape(B, N, d)


class PoemModel(nn.Module):
    def __init__(self, config: PoemConfig):
        super().__init__()
        self.config = config.validate()
        c = config
        self.item_emb = nn.Embedding(c.vocab, c.d)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        self.chrono_in = nn.Linear(1 + c.chrono_feats, c.d)
        self.chrono_attn = TargetAttention(c.d, c.n_heads)
        if c.use_po:
            self.level_emb = nn.Embedding(c.n_levels, c.d)
            nn.init.normal_(self.level_emb.weight, std=0.1)
            self.po_in = nn.Linear(3, c.d)
            self.po_attn = TargetAttention(c.d, c.n_heads)
        layers, width = [], c.tower_in()
        for w in c.mlp:
            layers += [nn.Linear(width, w), nn.ReLU()]
            width = w
        self.tower = nn.Sequential(*layers)
        self.head = nn.Linear(width, len(c.heads))

    def _level(self, x):
        return x.clamp(0, self.config.n_levels - 1).floor()

    def forward(self, cand_ids, cand_feats, chrono_ids, chrono_feats, chrono_mask, po_ids, po_feats, po_mask):
        return self.forward_hidden(cand_ids, cand_feats, chrono_ids, chrono_feats, chrono_mask, po_ids, po_feats,
                                   po_mask)[0]

    def forward_hidden(self, cand_ids, cand_feats, chrono_ids, chrono_feats, chrono_mask, po_ids, po_feats,
                       po_mask):
        """`forward`'s outputs and the tower's last hidden state (B x N x mlp[-1]), which the heads read:
        the representation a Pantheon-style fusion ensemble inherits (poem_ref.fusion_train)."""
        c = self.config
        e_c = self.item_emb(cand_ids)                                           # B N d
        # chronological tokens: item embedding + linear(log1p(age), features)
        ch_x = torch.cat([torch.log1p(chrono_feats[..., :1].clamp(min=0)), chrono_feats[..., 1:]], dim=-1)
        ch_tok = self.item_emb(chrono_ids) + self.chrono_in(ch_x)
        parts = [e_c, self.chrono_attn(e_c, ch_tok, chrono_mask.bool())]
        if c.use_po:
            # partial-order tokens: item + level embedding + linear(fused, rank_pct, log1p(age))
            lvl = self._level(po_feats[..., 2]).long()
            po_x = torch.stack([po_feats[..., 0], po_feats[..., 1],
                                torch.log1p(po_feats[..., 3].clamp(min=0))], dim=-1)
            po_tok = self.item_emb(po_ids) + self.level_emb(lvl) + self.po_in(po_x)
            parts.append(self.po_attn(e_c, po_tok, po_mask.bool()))
        lvl_c = self._level(cand_feats[..., 2:3]) / (c.n_levels - 1)
        parts += [cand_feats[..., 0:2], lvl_c, cand_feats[..., 3:]]
        x = torch.cat(parts, dim=-1)
        hidden = self.tower(x)
        return self.head(hidden), hidden


def lively(model: "PoemModel") -> "PoemModel":
    """Variance-preserving weights and non-zero biases, so outputs are O(1) and every term matters: for
    parity tests (PyTorch's default init shrinks activations layer by layer, which would make 1e-5 a
    weak test). In place; returns the model."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-0.2, 0.2)
            elif name.endswith("emb.weight"):
                p.normal_(0.0, 0.5)
            else:
                p.normal_(0.0, (1.0 / p.shape[1]) ** 0.5)
    return model
