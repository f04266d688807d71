"""PyTorch reference of poem's model: the nn.Module, its safetensors export, and id hashing; and of the
learned fusion (fusion.py), with its training (soft_rank.py: differentiable ranks and the rank-sum AUC;
fusion_train.py: BCE, HarmonRank, the Pantheon-style joint ensemble, IPPO).

The C++ forward pass (include/poem/model/) reproduces `PoemModel.forward` on the weights written by
`export.export`; `python/tools/make_golden.py` writes the fixtures the C++ parity tests compare with.
The C++ learned fusion (include/poem/fusion/learned.hpp) reproduces `LearnedFusion`.
"""
from .model import PoemConfig, PoemModel, hash_ids, lively
from .safetensors_io import read_safetensors, write_safetensors
from .export import export, load
from .fusion import LearnedFusion, export_fusion, load_fusion

__all__ = ["PoemConfig", "PoemModel", "hash_ids", "lively", "read_safetensors", "write_safetensors", "export", "load",
           "LearnedFusion", "export_fusion", "load_fusion"]
