#!/usr/bin/python3
"""Fixture of the full BAGEL training forward from the reference's own bagel.py (see README.md here).

Run:  git -C /work/.mirror/ByteDance-Seed+Bagel/repo archive HEAD | (mkdir -p /tmp/bagel-ref && tar -x -C /tmp/bagel-ref)
      /usr/bin/python3 Bagel.Tests/Fixtures/Bagel/make_fixtures.py /tmp/bagel-ref Bagel.Tests/Fixtures/Bagel

The reference modules (modeling/bagel/bagel.py, qwen2_navit.py, siglip_navit.py, modeling_utils.py, the Qwen2 and
SigLIP modeling files, data/data_utils.py) are imported unchanged. Only what they import from transformers /
flash_attn / tqdm (absent here), and what torch 1.13 lacks, is replaced by the stand-ins of
../reference_stubs.py (shared with the Qwen2 and Siglip scripts).
"""
import json
import os
import sys
import types

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reference_stubs import install_reference, save_safetensors  # noqa: E402

REF, OUT = sys.argv[1], sys.argv[2]
install_reference(REF)
from modeling.bagel.bagel import Bagel, BagelConfig  # noqa: E402
from modeling.bagel.qwen2_navit import Qwen2Config, Qwen2ForCausalLM  # noqa: E402
from modeling.bagel.siglip_navit import SiglipVisionConfig, SiglipVisionModel  # noqa: E402


# ---- tiny model, built as train/pretrain_unified_navit.py does ---------------------------------------------------
LLM = dict(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=2, hidden_act="silu", max_position_embeddings=32768, rms_norm_eps=1e-6,
           rope_theta=1000000.0, tie_word_embeddings=False, qk_norm=True, layer_module="Qwen2MoTDecoderLayer",
           freeze_und=False)
VIT = dict(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, num_channels=3,
           image_size=980, patch_size=14, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, attention_dropout=0.0,
           rope=False)  # 1 layer = the trainer's L + 1 + vit_select_layer(-2) for a 2-layer file
MAX_LATENT, Z, P = 4, 16, 2

llm_config = Qwen2Config(**LLM)
vit_config = SiglipVisionConfig(**VIT)
config = BagelConfig(visual_gen=True, visual_und=True, llm_config=llm_config, vit_config=vit_config,
                     vae_config=types.SimpleNamespace(downsample=8, z_channels=Z), latent_patch_size=P,
                     max_latent_size=MAX_LATENT, vit_max_num_patch_per_side=70, connector_act="gelu_pytorch_tanh",
                     interpolate_pos=False, timestep_shift=1.0)
model = Bagel(Qwen2ForCausalLM(llm_config), SiglipVisionModel(vit_config), config)
model.vit_model.vision_model.embeddings.convert_conv2d_to_linear(vit_config)

g = torch.Generator().manual_seed(20251124)
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("pos_embed"):
            continue  # the fixed sin-cos tables stay as built
        if p.dim() == 1 and "norm" in name:
            p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.15 * torch.randn(p.shape, generator=g))
weights = {k: v.clone() for k, v in model.state_dict().items()}

# ---- one pack laid out as the data pipeline does (markers are text tokens; labels already shifted) ---------------
# Sample A (VLM): [SOI, 2x2 ViT patches, EOI] full | [bos, 8, 9, 10, 11, eos] causal with CE.
# Sample B (edit): [SOI, 2x3 clean latents, EOI] full | [bos, 12, 13, eos] causal | [SOI, 2x2 noisy latents, EOI] noise.
BOS, EOS, SOI, EOI = 36, 37, 38, 39
SAMPLES = [[[6, "full"], [6, "causal"]], [[8, "full"], [4, "causal"], [6, "noise"]]]
text = {0: SOI, 5: EOI, 6: BOS, 7: 8, 8: 9, 9: 10, 10: 11, 11: EOS, 12: SOI, 19: EOI, 20: BOS, 21: 12, 22: 13,
        23: EOS, 24: SOI, 29: EOI}
L = 30
position_ids = [0] * 6 + [1, 2, 3, 4, 5, 6] + [0] * 8 + [1, 2, 3, 4] + [5] * 6
vit_indexes = [1, 2, 3, 4]
vit_positions = [0, 1, 70, 71]  # r*70 + c on a 2x2 patch grid
vae_indexes = list(range(13, 19)) + list(range(25, 29))
latent_shapes = [(2, 3), (2, 2)]
latent_positions = [r * MAX_LATENT + c for (h, w) in latent_shapes for r in range(h) for c in range(w)]
RAW_T = 0.3
timesteps = [float("-inf")] * 6 + [RAW_T] * 4
mse_indexes = list(range(25, 29))
ce_indexes = [6, 7, 8, 9, 10]
labels = [8, 9, 10, 11, EOS]

text_indexes = sorted(text)
text_ids = torch.tensor([text[i] for i in text_indexes])
vit_tokens = torch.rand(4, 588, generator=g) * 2 - 1
padded_latent = torch.randn(2, Z, 4, 6, generator=g)  # two VAE images, padded to the largest latent (4x6)

# Record the flow noise the forward draws (torch.randn_like), so the port can replay it.
recorded = {}
randn_like = torch.randn_like


def recording_randn_like(t, *args, **kwargs):
    out = randn_like(t, *args, **kwargs)
    assert "eps" not in recorded
    recorded["eps"] = out.detach().clone()
    return out


torch.randn_like = recording_randn_like
model.train()
torch.manual_seed(5)
out = model(
    sequence_length=L, packed_text_ids=text_ids, packed_text_indexes=torch.tensor(text_indexes),
    sample_lens=[12, 18, 2], packed_position_ids=torch.tensor(position_ids),
    split_lens=[6, 6, 8, 4, 6, 2], attn_modes=["full", "causal", "full", "causal", "noise", "causal"],
    ce_loss_indexes=torch.tensor(ce_indexes), packed_label_ids=torch.tensor(labels),
    packed_vit_tokens=vit_tokens, packed_vit_token_indexes=torch.tensor(vit_indexes),
    packed_vit_position_ids=torch.tensor(vit_positions), vit_token_seqlens=torch.tensor([4]),
    padded_latent=padded_latent, patchified_vae_latent_shapes=latent_shapes,
    packed_latent_position_ids=torch.tensor(latent_positions), packed_vae_token_indexes=torch.tensor(vae_indexes),
    packed_timesteps=torch.tensor(timesteps), mse_loss_indexes=torch.tensor(mse_indexes))
torch.randn_like = randn_like
mse, ce = out["mse"], out["ce"]
# The trainer's reduction with one rank (model.md 5): token means, both weights 1.
loss = ce.sum() / len(ce_indexes) + mse.mean(dim=-1).sum() / len(mse_indexes)
loss.backward()

GRADS = ["language_model.model.embed_tokens.weight", "language_model.lm_head.weight",
         "language_model.model.layers.0.self_attn.q_proj.weight",
         "language_model.model.layers.0.self_attn.q_proj_moe_gen.weight",
         "language_model.model.layers.1.mlp.down_proj.weight", "language_model.model.layers.1.mlp_moe_gen.down_proj.weight",
         "language_model.model.norm_moe_gen.weight", "time_embedder.mlp.0.weight", "vae2llm.weight", "llm2vae.weight",
         "llm2vae.bias", "connector.fc1.weight", "vit_model.vision_model.embeddings.patch_embedding.weight",
         "vit_model.vision_model.encoder.layers.0.mlp.fc1.weight"]
params = dict(model.named_parameters())
expected = {"mse": mse.detach(), "ce": ce.detach(), "loss": loss.detach().reshape(1), "eps": recorded["eps"]}
for name in GRADS:
    expected["grad." + name] = params[name].grad

inputs = {"text_ids": text_ids, "text_indexes": torch.tensor(text_indexes), "position_ids": torch.tensor(position_ids),
          "vit_tokens": vit_tokens, "vit_indexes": torch.tensor(vit_indexes),
          "vit_positions": torch.tensor(vit_positions), "padded_latent": padded_latent,
          "latent_positions": torch.tensor(latent_positions), "vae_indexes": torch.tensor(vae_indexes),
          "timesteps": torch.tensor(timesteps), "mse_indexes": torch.tensor(mse_indexes),
          "ce_indexes": torch.tensor(ce_indexes), "labels": torch.tensor(labels)}
save_safetensors(f"{OUT}/weights.safetensors", weights)
save_safetensors(f"{OUT}/inputs.safetensors", inputs)
save_safetensors(f"{OUT}/expected.safetensors", expected)
with open(f"{OUT}/layout.json", "w") as f:
    json.dump({"llm": LLM, "vit": VIT, "max_latent_size": MAX_LATENT, "z_channels": Z, "samples": SAMPLES,
               "latent_shapes": latent_shapes, "vit_seqlens": [4], "grads": GRADS}, f, indent=1)
print("mse", tuple(mse.shape), "ce", tuple(ce.shape), "loss", float(loss), "files written to", OUT)
