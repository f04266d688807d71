"""Export a PoemModel to one safetensors file (weights + config in the metadata), and load it back."""
import torch

from .fusion import fusion_tensors
from .model import CONFIG_KEY, PoemConfig, PoemModel
from .safetensors_io import read_safetensors, write_safetensors


def export(model: PoemModel, path, dtype: str = "F32", extra_metadata: dict = None, fusion=None) -> None:
    """Write every parameter under its state_dict name; the config as JSON under __metadata__, beside
    `extra_metadata` (string values: provenance, attribution). `fusion` (a fusion.LearnedFusion) adds
    the learned fusion's `fusion.*` tensors, which a serving config with method "learned" uses."""
    tensors = {k: v for k, v in model.state_dict().items()}
    if fusion is not None:
        tensors.update(fusion_tensors(fusion))
    meta = dict(extra_metadata or {})
    meta.update({CONFIG_KEY: model.config.to_json(), "format": "poem"})
    write_safetensors(path, tensors, meta, dtype=dtype)


def load(path) -> PoemModel:
    """The model stored at `path` (F16 / BF16 weights come back as their float32 values)."""
    tensors, meta = read_safetensors(path)
    model = PoemModel(PoemConfig.from_json(meta[CONFIG_KEY]))
    model.load_state_dict(tensors)
    return model


def round_to(model: PoemModel, dtype: str) -> PoemModel:
    """Round the weights in place to what an F16 / BF16 export stores (for reference outputs)."""
    t = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[dtype]
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(t).to(torch.float32))
    return model


def bf16_tower(model: PoemModel) -> PoemModel:
    """What the C++ model computes when loaded with precision bf16 (include/poem/model/detail/gemm_bf16.hpp):
    the tower's and heads' Linear weights rounded to bfloat16 (through float32, to nearest even) in
    place, and a hook that rounds each of their inputs the same way; the sums stay in the model's dtype.
    Returns the model."""
    def bf16(t):
        return t.float().bfloat16().to(t.dtype)
    linears = [m for m in model.tower if isinstance(m, torch.nn.Linear)] + [model.head]
    with torch.no_grad():
        for lin in linears:
            lin.weight.copy_(bf16(lin.weight))
            lin.register_forward_pre_hook(lambda _m, args: (bf16(args[0]),))
    return model
