#!/usr/bin/python3
"""Fixtures for Bagel.Models/Siglip from the reference's own SigLIP NaViT code (see README.md here).

Run:  git -C /work/.mirror/ByteDance-Seed+Bagel/repo archive HEAD | (mkdir -p /tmp/bagel-ref && tar -x -C /tmp/bagel-ref)
      /usr/bin/python3 Bagel.Tests/Fixtures/Siglip/make_fixtures.py /tmp/bagel-ref Bagel.Tests/Fixtures/Siglip

The reference modules modeling/bagel/siglip_navit.py, modeling/siglip/modeling_siglip.py,
modeling/siglip/configuration_siglip.py and data/data_utils.py are imported unchanged. Only what they import from
transformers / flash_attn (absent here), and what torch 1.13 lacks, is replaced by the stand-ins below.
"""
import json
import logging
import struct
import sys
import types

import torch
import torch.nn.functional as F
from torch import nn

REF, OUT = sys.argv[1], sys.argv[2]


def module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def package(name, path):
    m = module(name)
    m.__path__ = [path]
    return m


def decorator_factory(*args, **kwargs):
    return lambda f: f


# ---- transformers stand-ins -------------------------------------------------------------------------------------
class PretrainedConfig:
    """Stores its keyword arguments, like transformers' PretrainedConfig does for the fields used here."""

    def __init__(self, **kwargs):
        for key, value in kwargs.items():
            setattr(self, key, value)


class PreTrainedModel(nn.Module):
    """Holds the config; post_init() does nothing because this script overwrites every parameter itself."""

    def __init__(self, config, *args, **kwargs):
        super().__init__()
        self.config = config

    def post_init(self):
        pass


class ACT2FNStandIn(dict):
    """transformers' ACT2FN maps a name to a new module instance; only gelu_pytorch_tanh is on the tested path and
    is replicated exactly: transformers' PytorchGELUTanh = F.gelu(x, approximate="tanh")."""

    def __getitem__(self, name):
        if name != "gelu_pytorch_tanh":
            raise KeyError(name)
        return nn.GELU(approximate="tanh")


class ModelOutput:
    """Base of the reference's output dataclasses (never instantiated on the tested path)."""


class OutputStandIn:
    """transformers output classes (never instantiated on the tested path)."""


def unused(*args, **kwargs):
    raise AssertionError("not on the tested path")


logging.getLogger("transformers").setLevel(logging.ERROR)
module("transformers")
module("transformers.activations", ACT2FN=ACT2FNStandIn())
module("transformers.modeling_attn_mask_utils", _prepare_4d_attention_mask=unused)
module("transformers.modeling_outputs", BaseModelOutput=OutputStandIn, BaseModelOutputWithPooling=OutputStandIn,
       ImageClassifierOutput=OutputStandIn)
module("transformers.modeling_utils", PreTrainedModel=PreTrainedModel)
module("transformers.configuration_utils", PretrainedConfig=PretrainedConfig)
module("transformers.utils", ModelOutput=ModelOutput, add_start_docstrings=decorator_factory,
       add_start_docstrings_to_model_forward=decorator_factory, is_flash_attn_2_available=lambda: False,
       is_flash_attn_greater_or_equal_2_10=lambda: False, logging=types.SimpleNamespace(get_logger=logging.getLogger),
       replace_return_docstrings=decorator_factory, torch_int=int)


# ---- flash_attn stand-in: per-image masked softmax ----------------------------------------------------------------
def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal=False, **kwargs):
    """Varlen flash attention's math: for each sequence [cu[i], cu[i+1]) softmax(q kᵀ / sqrt(hd)) v over that sequence
    only (non-causal), done as one masked softmax over the pack. The reference hands in bf16 q/k/v; they are upcast
    to f32 here (flash-attn also accumulates in f32) and the result is returned in f32, so the f32 out_proj runs
    without autocast. The bf16 rounding of q/k/v that the reference applies before the call stays in the fixture."""
    assert not causal and torch.equal(cu_seqlens_q, cu_seqlens_k) and max_seqlen_q == max_seqlen_k
    q, k, v = q.float(), k.float(), v.float()
    n, heads, hd = q.shape
    image = torch.zeros(n, dtype=torch.long)
    for i in range(len(cu_seqlens_q) - 1):
        image[int(cu_seqlens_q[i]):int(cu_seqlens_q[i + 1])] = i
    allowed = image[:, None] == image[None, :]
    scores = torch.einsum("qhd,khd->hqk", q, k) / hd ** 0.5
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.einsum("hqk,khd->qhd", scores.softmax(-1), v)


module("flash_attn", flash_attn_varlen_func=flash_attn_varlen_func)

# torch 2.x piece torch 1.13 lacks; data/data_utils.py imports it at module level (unused by patchify / position ids)
module("torch.nn.attention")
module("torch.nn.attention.flex_attention", or_masks=unused, and_masks=unused)

# bare packages so that modeling/__init__.py, modeling/bagel/__init__.py and modeling/siglip/__init__.py do not run
package("modeling", f"{REF}/modeling")
package("modeling.bagel", f"{REF}/modeling/bagel")
package("modeling.siglip", f"{REF}/modeling/siglip")
package("data", f"{REF}/data")
sys.path.insert(0, REF)

from modeling.bagel.siglip_navit import SiglipVisionConfig, SiglipVisionModel  # noqa: E402
from data.data_utils import patchify, get_flattened_position_ids_extrapolate  # noqa: E402


# ---- safetensors writer (json + struct) --------------------------------------------------------------------------
def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dtype = {torch.float32: ("F32", "f"), torch.int64: ("I64", "q")}[t.dtype]
        data = struct.pack(f"<{t.numel()}{dtype[1]}", *t.flatten().tolist())
        header[name] = {"dtype": dtype[0], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


# ---- tiny config: the "file" has 3 layers; the trainer builds L + 1 + vit_select_layer(-2) = 2 ---------------------
PATCH, GRID = 14, 4  # image_size 56 -> 4 patches per side -> 16 positions (the real model: 980 -> 70 -> 4900)
FILE_CONFIG = dict(hidden_size=16, intermediate_size=40, num_hidden_layers=3, num_attention_heads=4, num_channels=3,
                   image_size=PATCH * GRID, patch_size=PATCH, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
                   attention_dropout=0.0, model_type="siglip_vision_model")
VIT_SELECT_LAYER = -2
with open(f"{OUT}/config.json", "w") as f:
    json.dump(FILE_CONFIG, f, indent=2)
    f.write("\n")


def build(num_layers):
    config = SiglipVisionConfig(**{k: v for k, v in FILE_CONFIG.items() if k != "model_type"})
    config.num_hidden_layers = num_layers
    config.rope = False  # the trainer's override (pretrain_unified_navit.py)
    return SiglipVisionModel(config)


# The HF-form file: conv-shaped patch weight, 3 layers, plus a pooling-head tensor that BAGEL never loads.
torch.manual_seed(20251124)
hf = build(FILE_CONFIG["num_hidden_layers"])
g = torch.Generator().manual_seed(11)
with torch.no_grad():
    for name, p in hf.named_parameters():
        if "layer_norm" in name or "post_layernorm" in name:
            p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
hf_state = {k: v.clone() for k, v in hf.state_dict().items()}
hf_state["vision_model.head.probe"] = torch.randn(1, 1, FILE_CONFIG["hidden_size"], generator=g)
save_safetensors(f"{OUT}/hf_model.safetensors", hf_state)

# The trainer's path (model.md 8.1): 2-layer model, load the HF file non-strictly by name (layer 2 and the head are
# ignored), then the reference's convert_conv2d_to_linear.
model = build(FILE_CONFIG["num_hidden_layers"] + 1 + VIT_SELECT_LAYER)
result = model.load_state_dict(hf_state, strict=False)
assert result.missing_keys == [], result.missing_keys
model.vision_model.embeddings.convert_conv2d_to_linear(model.config)
model.train()

# Two images with different patch grids (rows x cols = 2x3 and 3x3), patchified and packed as the packer does.
images = [torch.rand(3, 2 * PATCH, 3 * PATCH) * 2 - 1, torch.rand(3, 3 * PATCH, 3 * PATCH) * 2 - 1]
tokens = torch.cat([patchify(img, PATCH) for img in images])
position_ids = torch.cat([get_flattened_position_ids_extrapolate(img.shape[1], img.shape[2], PATCH, GRID)
                          for img in images])
seqlens = torch.tensor([img.shape[1] // PATCH * (img.shape[2] // PATCH) for img in images])
cu_seqlens = F.pad(torch.cumsum(seqlens, dim=0), (1, 0)).to(torch.int32)  # as bagel.py forward does
max_seqlen = int(torch.max(seqlens).item())

out = model(packed_pixel_values=tokens, packed_flattened_position_ids=position_ids, cu_seqlens=cu_seqlens,
            max_seqlen=max_seqlen)
probe = torch.randn(out.shape, generator=g)
(out * probe).sum().backward()
vm = model.vision_model
grads = {"grad.patch_embedding.weight": vm.embeddings.patch_embedding.weight.grad,
         "grad.layers.1.self_attn.q_proj.weight": vm.encoder.layers[1].self_attn.q_proj.weight.grad}

save_safetensors(f"{OUT}/weights.safetensors", {"vit_model." + k: v for k, v in model.state_dict().items()})
save_safetensors(f"{OUT}/io.safetensors", {
    "packed_vit_tokens": tokens, "packed_vit_position_ids": position_ids, "vit_token_seqlens": seqlens,
    "output": out, "probe": probe, **grads})
with open(f"{OUT}/state_dict.json", "w") as f:
    json.dump({"vit_model." + k: list(v.shape) for k, v in model.state_dict().items()}, f, indent=1)
    f.write("\n")
print("tokens", list(tokens.shape), "output", list(out.shape), "params", len(model.state_dict()))

# ---- initialization: the reference's _init_weights on a tower built from a config (model.md 8.2) --------------------
# transformers' PreTrainedModel.post_init -> init_weights -> apply(_init_weights) on a fresh model; replicated here.
PreTrainedModel.post_init = lambda self: self.apply(self._init_weights)
torch.manual_seed(5)
INIT_CONFIG = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=1, num_attention_heads=4, image_size=140,
                   patch_size=14, rope=False)
fresh = SiglipVisionModel(SiglipVisionConfig(**INIT_CONFIG))
fresh.vision_model.embeddings.convert_conv2d_to_linear(fresh.config)
with open(f"{OUT}/init_stats.json", "w") as f:
    json.dump({"config": INIT_CONFIG,
               "stats": {k: {"mean": v.mean().item(), "std": v.std().item(), "max_abs": v.abs().max().item()}
                         for k, v in fresh.state_dict().items()}}, f, indent=1)
    f.write("\n")
