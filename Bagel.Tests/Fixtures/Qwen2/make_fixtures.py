#!/usr/bin/python3
"""Fixtures for Bagel.Models/Qwen2 from the reference's own packed Qwen2 code (see README.md here).

Run:  git -C /work/.mirror/ByteDance-Seed+Bagel/repo archive HEAD | (mkdir -p /tmp/bagel-ref && tar -x -C /tmp/bagel-ref)
      /usr/bin/python3 Bagel.Tests/Fixtures/Qwen2/make_fixtures.py /tmp/bagel-ref Bagel.Tests/Fixtures/Qwen2

The reference modules (modeling/bagel/qwen2_navit.py, modeling/qwen2/modeling_qwen2.py,
modeling/qwen2/configuration_qwen2.py, data/data_utils.py) are imported unchanged. Only what they import but the
tested path does not exercise, or what torch 1.13 lacks, is replaced by the stand-ins of ../reference_stubs.py
(shared with the Siglip and Bagel scripts).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reference_stubs import create_block_mask, install_reference, save_safetensors  # noqa: E402

REF, OUT = sys.argv[1], sys.argv[2]
install_reference(REF)
from data.data_utils import create_sparse_mask, prepare_attention_mask_per_sample  # noqa: E402
from modeling.bagel.qwen2_navit import Qwen2Config, Qwen2ForCausalLM  # noqa: E402


# ---- tiny config and a packed batch as the packer lays it out ----------------------------------------------------
CONFIG = dict(vocab_size=32, hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, hidden_act="silu", max_position_embeddings=32768, rms_norm_eps=1e-6,
              rope_theta=1000000.0, tie_word_embeddings=False, qk_norm=True)
# Each sample: (length, mode, kind) splits. kind: text (und), vit (und), vae (markers und, latents gen).
SAMPLES = [
    [(4, "causal", "text"), (6, "noise", "vae"), (2, "causal", "text")],
    [(3, "causal", "text"), (5, "full", "vae"), (5, "noise", "vae")],
    [(4, "full", "vit"), (5, "causal", "text")],
]
PAD = 3  # flex mode: the pack is padded with one trailing causal "sample" (bagel.py / dataset_base.py)

sample_lens, split_lens, attn_modes, position_ids = [], [], [], []
text_idx, vision_idx, und_idx, gen_idx = [], [], [], []
cursor = 0
for splits in SAMPLES:
    pos = 0
    sample_lens.append(sum(s[0] for s in splits))
    for length, mode, kind in splits:
        split_lens.append(length)
        attn_modes.append(mode)
        idx = list(range(cursor, cursor + length))
        if kind == "text":
            position_ids += list(range(pos, pos + length))
            pos += length
            text_idx += idx
            und_idx += idx
        else:
            position_ids += [pos] * length
            pos += 0 if mode == "noise" else 1
            text_idx += [idx[0], idx[-1]]  # the two marker tokens are text tokens
            vision_idx += idx[1:-1]
            if kind == "vae":
                und_idx += [idx[0], idx[-1]]
                gen_idx += idx[1:-1]
            else:
                und_idx += idx
        cursor += length
L = cursor
und_idx.sort()
flex_sample_lens = sample_lens + [PAD]
flex_split_lens = split_lens + [PAD]
flex_attn_modes = attn_modes + ["causal"]

torch.manual_seed(20251124)
text_ids = torch.randint(0, CONFIG["vocab_size"], (len(text_idx),))
vision_embeds = torch.randn(len(vision_idx), CONFIG["hidden_size"])
probe = torch.randn(L, CONFIG["hidden_size"])  # loss = sum(output * probe)

# The flex mask from the reference's create_sparse_mask must agree with its per-sample masks.
dense = create_block_mask(create_sparse_mask(flex_sample_lens, flex_split_lens, flex_attn_modes, "cpu"), 1, 1,
                          L + PAD, L + PAD)
start, s_idx = 0, 0
for n in sample_lens:
    k = 0
    while sum(split_lens[s_idx:s_idx + k]) < n:
        k += 1
    per = prepare_attention_mask_per_sample(split_lens[s_idx:s_idx + k], attn_modes[s_idx:s_idx + k]) == 0
    assert torch.equal(dense[start:start + n, start:start + n], per)
    start, s_idx = start + n, s_idx + k


def build(layer_module, freeze_und=False):
    config = Qwen2Config(**CONFIG, layer_module=layer_module, freeze_und=freeze_und)
    return Qwen2ForCausalLM(config)


mot = build("Qwen2MoTDecoderLayer")
g = torch.Generator().manual_seed(7)
with torch.no_grad():
    for name, p in mot.named_parameters():
        if p.dim() == 1 and "norm" in name:
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.15 * torch.randn(p.shape, generator=g))
weights = {k: v.clone() for k, v in mot.state_dict().items()}


def run(layer_module, freeze_und, grad_names):
    model = build(layer_module, freeze_und)
    own = model.state_dict()
    model.load_state_dict({k: weights[k] for k in own})  # dense / MoE: the subset of the MoT weights by name
    model.train()
    vision = vision_embeds.clone().requires_grad_(True)
    emb = model.model.embed_tokens(text_ids)
    seq = emb.new_zeros(L, CONFIG["hidden_size"])
    seq[text_idx] = emb
    seq[vision_idx] = vision
    mask = create_block_mask(create_sparse_mask(flex_sample_lens, flex_split_lens, flex_attn_modes, "cpu"), 1,
                             CONFIG["num_attention_heads"], L + PAD, L + PAD)
    extra = {}
    if layer_module != "Qwen2DecoderLayer":
        extra = dict(packed_und_token_indexes=torch.tensor(und_idx), packed_gen_token_indexes=torch.tensor(gen_idx))
    out = model(packed_sequence=seq, sample_lens=flex_sample_lens, attention_mask=mask,
                packed_position_ids=torch.tensor(position_ids), **extra)
    (out * probe).sum().backward()
    params = dict(model.named_parameters())
    result = {"output": out.detach()}
    for n in grad_names:
        grad = params[n].grad
        result["grad." + n] = grad if grad is not None else torch.zeros_like(params[n])
    result["grad.vision_embeds"] = vision.grad
    names = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    return result, names


shared = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight",
          "model.norm.weight"]
mot_grads = shared + ["model.layers.0.self_attn.q_proj_moe_gen.weight", "model.layers.1.mlp_moe_gen.down_proj.weight",
                      "model.layers.0.self_attn.k_norm_moe_gen.weight", "model.norm_moe_gen.weight"]
runs = {
    "dense": run("Qwen2DecoderLayer", False, shared),
    "moe": run("Qwen2MoEDecoderLayer", False, shared + ["model.layers.1.mlp_moe_gen.down_proj.weight",
                                                        "model.norm_moe_gen.weight"]),
    "mot": run("Qwen2MoTDecoderLayer", False, mot_grads),
    "mot_freeze_und": run("Qwen2MoTDecoderLayer", True, mot_grads),
}

save_safetensors(f"{OUT}/weights.safetensors", weights)
inputs = {"text_ids": text_ids, "text_indexes": torch.tensor(text_idx), "vision_indexes": torch.tensor(vision_idx),
          "vision_embeds": vision_embeds, "position_ids": torch.tensor(position_ids),
          "und_indexes": torch.tensor(und_idx), "gen_indexes": torch.tensor(gen_idx), "probe": probe}
save_safetensors(f"{OUT}/inputs.safetensors", inputs)
for key, (result, _) in runs.items():
    save_safetensors(f"{OUT}/expected_{key}.safetensors", result)
with open(f"{OUT}/layout.json", "w") as f:
    json.dump({"config": CONFIG, "samples": [[[n, m] for n, m, _ in s] for s in SAMPLES],
               "state_dict": {key: names for key, (_, names) in runs.items()}}, f, indent=1)
# A Hugging Face-layout folder of the MoT model as the reference's code names its tensors (model.*, lm_head.weight):
# config.json + two shards + model.safetensors.index.json, split in state-dict order.
hf = f"{OUT}/hf_mot"
os.makedirs(hf, exist_ok=True)
names = list(weights)
halves = {"model-00001-of-00002.safetensors": names[:len(names) // 2], "model-00002-of-00002.safetensors": names[len(names) // 2:]}
for file, part in halves.items():
    save_safetensors(f"{hf}/{file}", {n: weights[n] for n in part})
with open(f"{hf}/model.safetensors.index.json", "w") as f:
    json.dump({"metadata": {"total_size": sum(weights[n].numel() * 4 for n in names)},
               "weight_map": {n: file for file, part in halves.items() for n in part}}, f, indent=1, sort_keys=True)
with open(f"{hf}/config.json", "w") as f:
    json.dump({**CONFIG, "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "layer_module": "Qwen2MoTDecoderLayer"}, f, indent=1)
print("L =", L, "und", len(und_idx), "gen", len(gen_idx), "files written to", OUT)
