#!/usr/bin/python3
"""Fixtures for Bagel.Models/Qwen2 from the reference's own packed Qwen2 code (see README.md here).

Run:  git -C /work/.mirror/ByteDance-Seed+Bagel/repo archive HEAD | (mkdir -p /tmp/bagel-ref && tar -x -C /tmp/bagel-ref)
      /usr/bin/python3 Bagel.Tests/Fixtures/Qwen2/make_fixtures.py /tmp/bagel-ref Bagel.Tests/Fixtures/Qwen2

The reference modules (modeling/bagel/qwen2_navit.py, modeling/qwen2/modeling_qwen2.py,
modeling/qwen2/configuration_qwen2.py, data/data_utils.py) are imported unchanged. Only what they import but the
tested path does not exercise, or what torch 1.13 lacks, is replaced by the stand-ins below.
"""
import contextlib
import enum
import json
import os
import logging
import math
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


def identity_decorator(*args, **kwargs):
    return lambda f: f


class _Logger(logging.Logger):
    def warning_once(self, *args, **kwargs):
        pass


# ---- transformers stand-ins -------------------------------------------------------------------------------------
class PretrainedConfig:
    """Stores its keyword arguments, like transformers' PretrainedConfig does for the fields used here."""

    def __init__(self, **kwargs):
        self.tie_word_embeddings = kwargs.pop("tie_word_embeddings", True)
        self.pad_token_id = kwargs.pop("pad_token_id", None)
        for key, value in kwargs.items():
            setattr(self, key, value)


class PreTrainedModel(nn.Module):
    """Holds the config; post_init() is a no-op because this script overwrites every parameter itself."""

    def __init__(self, config, *args, **kwargs):
        super().__init__()
        self.config = config

    def post_init(self):
        pass


def compute_default_rope_parameters(config, device=None, seq_len=None, **kwargs):
    """Replicates transformers' default RoPE init (modeling_rope_utils._compute_default_rope_parameters):
    inv_freq = 1 / base^(arange(0, dim, 2) / dim), dim = head_dim, attention factor 1.0."""
    base = config.rope_theta
    dim = config.hidden_size // config.num_attention_heads
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float().to(device) / dim))
    return inv_freq, 1.0


logging.setLoggerClass(_Logger)
module("transformers")
module("transformers.activations", ACT2FN={"silu": nn.SiLU()})  # SiLU, as transformers' ACT2FN["silu"]
module("transformers.cache_utils", Cache=object, DynamicCache=object)
module("transformers.generation", GenerationMixin=object)
module("transformers.modeling_outputs", BaseModelOutputWithPast=object, CausalLMOutputWithPast=object)
module("transformers.modeling_rope_utils", ROPE_INIT_FUNCTIONS={"default": compute_default_rope_parameters},
       rope_config_validation=lambda config: None)
module("transformers.modeling_utils", PreTrainedModel=PreTrainedModel)
module("transformers.configuration_utils", PretrainedConfig=PretrainedConfig)
module("transformers.utils", ModelOutput=object, add_start_docstrings=identity_decorator,
       add_start_docstrings_to_model_forward=identity_decorator, replace_return_docstrings=identity_decorator,
       is_flash_attn_2_available=lambda: False, is_flash_attn_greater_or_equal_2_10=lambda: False,
       logging=types.SimpleNamespace(get_logger=logging.getLogger))
module("flash_attn", flash_attn_varlen_func=None)  # inference path only

# ---- torch 2.x pieces missing from torch 1.13 --------------------------------------------------------------------
torch.compile = lambda fn, *a, **k: fn
torch._dynamo = types.SimpleNamespace(config=types.SimpleNamespace())


class SDPBackend(enum.Enum):
    EFFICIENT_ATTENTION = 1


def or_masks(*mods):
    return lambda b, h, q, kv: torch.stack([m(b, h, q, kv) for m in mods]).any(0)


def and_masks(*mods):
    return lambda b, h, q, kv: torch.stack([m(b, h, q, kv) for m in mods]).all(0)


def create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device="cpu", **kwargs):
    """Evaluates the mask function on the full (q, kv) grid: a dense boolean 'block mask'."""
    q_idx = torch.arange(Q_LEN)[:, None]
    kv_idx = torch.arange(KV_LEN)[None, :]
    return mask_mod(0, 0, q_idx, kv_idx).expand(Q_LEN, KV_LEN)


def flex_attention(query, key, value, block_mask, enable_gqa=False, scale=None):
    """flex_attention math: softmax(q k^T / sqrt(d), masked) v with GQA (query head j -> kv head j // groups)."""
    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1)
    value = value.repeat_interleave(groups, dim=1)
    scores = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])
    scores = scores.masked_fill(~block_mask, float("-inf"))
    return torch.softmax(scores.float(), dim=-1).to(query.dtype) @ value


def sdpa(q, k, v, attn_mask=None):
    """torch 2's scaled_dot_product_attention math (additive float mask); only on the per-sample mask path."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if attn_mask is not None:
        scores = scores + attn_mask
    return torch.softmax(scores, dim=-1) @ v


F.scaled_dot_product_attention = sdpa
module("torch.nn.attention", SDPBackend=SDPBackend, sdpa_kernel=lambda backends: contextlib.nullcontext())
module("torch.nn.attention.flex_attention", flex_attention=flex_attention, create_block_mask=create_block_mask,
       or_masks=or_masks, and_masks=and_masks)

# ---- the reference's own modules ---------------------------------------------------------------------------------
sys.path.insert(0, REF)
package("modeling", f"{REF}/modeling")
package("modeling.bagel", f"{REF}/modeling/bagel")
package("modeling.qwen2", f"{REF}/modeling/qwen2")
package("modeling.cache_utils", f"{REF}/modeling/cache_utils")
package("data", f"{REF}/data")
from data.data_utils import create_sparse_mask, prepare_attention_mask_per_sample  # noqa: E402
from modeling.bagel.qwen2_navit import Qwen2Config, Qwen2ForCausalLM  # noqa: E402


# ---- safetensors writer (json + struct) --------------------------------------------------------------------------
def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dtype = {torch.float32: ("F32", "<f"), torch.int64: ("I64", "<q")}[t.dtype]
        data = struct.pack(f"<{t.numel()}{dtype[1][1]}", *t.flatten().tolist())
        header[name] = {"dtype": dtype[0], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


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
