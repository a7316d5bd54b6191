#!/usr/bin/python3
"""Fixtures for Bagel.Models/Siglip from the reference's own SigLIP NaViT code (see README.md here).

Run:  git -C /work/.mirror/ByteDance-Seed+Bagel/repo archive HEAD | (mkdir -p /tmp/bagel-ref && tar -x -C /tmp/bagel-ref)
      /usr/bin/python3 Bagel.Tests/Fixtures/Siglip/make_fixtures.py /tmp/bagel-ref Bagel.Tests/Fixtures/Siglip

The reference modules modeling/bagel/siglip_navit.py, modeling/siglip/modeling_siglip.py,
modeling/siglip/configuration_siglip.py and data/data_utils.py are imported unchanged. Only what they import from
transformers / flash_attn (absent here), and what torch 1.13 lacks, is replaced by the stand-ins of
../reference_stubs.py (shared with the Qwen2 and Bagel scripts).
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reference_stubs import PreTrainedModel, install_reference, save_safetensors  # noqa: E402

REF, OUT = sys.argv[1], sys.argv[2]
install_reference(REF)
from modeling.bagel.siglip_navit import SiglipVisionConfig, SiglipVisionModel  # noqa: E402
from data.data_utils import patchify, get_flattened_position_ids_extrapolate  # noqa: E402


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
