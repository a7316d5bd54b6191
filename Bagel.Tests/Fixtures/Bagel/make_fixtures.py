#!/usr/bin/python3
"""Fixture of the full BAGEL training forward from the reference's own bagel.py (see README.md here).

Run:  git -C /work/.mirror/ByteDance-Seed+Bagel/repo archive HEAD | (mkdir -p /tmp/bagel-ref && tar -x -C /tmp/bagel-ref)
      /usr/bin/python3 Bagel.Tests/Fixtures/Bagel/make_fixtures.py /tmp/bagel-ref Bagel.Tests/Fixtures/Bagel

The reference modules (modeling/bagel/bagel.py, qwen2_navit.py, siglip_navit.py, modeling_utils.py, the Qwen2 and
SigLIP modeling files, data/data_utils.py) are imported unchanged. Only what they import from transformers /
flash_attn / tqdm (absent here), and what torch 1.13 lacks, is replaced by stand-ins: the union of those of
Fixtures/Qwen2/make_fixtures.py and Fixtures/Siglip/make_fixtures.py.
"""
import contextlib
import enum
import json
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


def unused(*args, **kwargs):
    raise AssertionError("not on the tested path")


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


class ACT2FNStandIn(dict):
    """transformers' ACT2FN for the two activations on the tested path: silu (Qwen2 MLP) and gelu_pytorch_tanh
    (SigLIP MLP, connector), the latter = F.gelu(x, approximate="tanh")."""

    def __getitem__(self, name):
        if name == "silu":
            return nn.SiLU()
        if name == "gelu_pytorch_tanh":
            return nn.GELU(approximate="tanh")
        raise KeyError(name)


def compute_default_rope_parameters(config, device=None, seq_len=None, **kwargs):
    """transformers' default RoPE init: inv_freq = 1 / base^(arange(0, dim, 2) / dim), dim = head_dim."""
    base = config.rope_theta
    dim = config.hidden_size // config.num_attention_heads
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float().to(device) / dim))
    return inv_freq, 1.0


logging.setLoggerClass(_Logger)
logging.getLogger("transformers").setLevel(logging.ERROR)
module("transformers")
module("transformers.activations", ACT2FN=ACT2FNStandIn())
module("transformers.cache_utils", Cache=object, DynamicCache=object)
module("transformers.generation", GenerationMixin=object)
module("transformers.modeling_attn_mask_utils", _prepare_4d_attention_mask=unused)
module("transformers.modeling_outputs", BaseModelOutput=object, BaseModelOutputWithPast=object,
       BaseModelOutputWithPooling=object, CausalLMOutputWithPast=object, ImageClassifierOutput=object)
module("transformers.modeling_rope_utils", ROPE_INIT_FUNCTIONS={"default": compute_default_rope_parameters},
       rope_config_validation=lambda config: None)
module("transformers.modeling_utils", PreTrainedModel=PreTrainedModel)
module("transformers.configuration_utils", PretrainedConfig=PretrainedConfig)
module("transformers.utils", ModelOutput=object, add_start_docstrings=identity_decorator,
       add_start_docstrings_to_model_forward=identity_decorator, replace_return_docstrings=identity_decorator,
       is_flash_attn_2_available=lambda: False, is_flash_attn_greater_or_equal_2_10=lambda: False,
       logging=types.SimpleNamespace(get_logger=logging.getLogger), torch_int=int)
module("tqdm", tqdm=lambda it, *a, **k: it)  # inference progress bars only


# ---- flash_attn stand-in (SigLIP varlen attention): per-image masked softmax, as in Fixtures/Siglip -----------------
def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal=False, **kwargs):
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

# ---- torch 2.x pieces missing from torch 1.13 (as in Fixtures/Qwen2) ---------------------------------------------
torch.compile = lambda fn, *a, **k: fn
torch._dynamo = types.SimpleNamespace(config=types.SimpleNamespace())
_no_grad = torch.no_grad


def no_grad(func=None):
    """torch 2 also accepts a bare @torch.no_grad (bagel.py's inference methods); torch 1.13 needs the call."""
    return _no_grad() if func is None else _no_grad()(func)


torch.no_grad = no_grad


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
package("modeling.siglip", f"{REF}/modeling/siglip")
package("modeling.cache_utils", f"{REF}/modeling/cache_utils")
package("data", f"{REF}/data")
from modeling.bagel.bagel import Bagel, BagelConfig  # noqa: E402
from modeling.bagel.qwen2_navit import Qwen2Config, Qwen2ForCausalLM  # noqa: E402
from modeling.bagel.siglip_navit import SiglipVisionConfig, SiglipVisionModel  # noqa: E402


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
