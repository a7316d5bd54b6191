"""Stand-ins that let the reference's own modules import and run under /usr/bin/python3 (torch 1.13, no
transformers, flash_attn or tqdm), shared by the fixture scripts of Qwen2, Siglip and Bagel (see their READMEs).

Importing this module registers the stand-ins in sys.modules and patches the torch 2.x pieces torch 1.13 lacks;
install_reference(ref) then makes the reference checkout's `modeling` and `data` packages importable without running
their __init__ files. Only what the reference imports is replaced; its model code runs unchanged.
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


# ---- flash_attn stand-in (SigLIP varlen attention): per-image masked softmax -------------------------------------
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

# ---- torch 2.x pieces missing from torch 1.13 --------------------------------------------------------------------
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
def install_reference(ref):
    """Bare packages for the reference checkout at `ref`, so that its package __init__ files do not run."""
    sys.path.insert(0, ref)
    package("modeling", f"{ref}/modeling")
    package("modeling.bagel", f"{ref}/modeling/bagel")
    package("modeling.qwen2", f"{ref}/modeling/qwen2")
    package("modeling.siglip", f"{ref}/modeling/siglip")
    package("modeling.cache_utils", f"{ref}/modeling/cache_utils")
    package("data", f"{ref}/data")


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
