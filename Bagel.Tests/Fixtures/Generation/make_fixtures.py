#!/usr/bin/python3
"""Text-to-image sampling fixture from the reference's own inference code (see README.md here).

Run:  git -C /work/.mirror/ByteDance-Seed+Bagel/repo archive HEAD | (mkdir -p /tmp/bagel-ref && tar -x -C /tmp/bagel-ref)
      git -C /work/.mirror/arogozhnikov+einops/repo archive v0.8.1 einops | (mkdir -p /tmp/einops && tar -x -C /tmp/einops)
      /usr/bin/python3 Bagel.Tests/Fixtures/Generation/make_fixtures.py /tmp/bagel-ref /tmp/einops Bagel.Tests/Fixtures/Generation

Runs inferencer.py's InterleaveInferencer.interleave_inference([prompt]) (text-to-image: gen / cfg_text / cfg_img
contexts, NaiveCache prefill, prepare_vae_latent(_cfg), generate_image, _forward_flow, decode_image) on a tiny random
MoT BAGEL (no understanding branch) and the tiny FLUX autoencoder of ../FluxVae/ae_tiny.safetensors, in f32 on CPU.
Stand-ins beyond ../reference_stubs.py:
- flash_attn_varlen_func for the language model's inference path: per-sample softmax(q k^T / sqrt(hd)) v over the
  sample's keys (cache + query), GQA by repeating kv heads, `causal` aligned bottom-right as flash-attn >= 2.1 does.
- Tensor.to(torch.bfloat16) is the identity: the reference's 'gen' path casts to bf16 (it runs under bf16 autocast
  on GPU); the fixture keeps f32 so the port can be checked to 1e-4.
- torch.autocast (interleave_inference wraps everything in CUDA bf16 autocast): a null context, for the same reason.
- safetensors.torch (imported by autoencoder.py for its file loader, not called here).
- the tokenizer: encode() returns fixed ids (the port's test feeds the same ids).
"""
import contextlib
import json
import os
import struct
import sys
import types

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from reference_stubs import install_reference, save_safetensors  # noqa: E402

REF, EINOPS, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, EINOPS)
install_reference(REF)


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal=False, **kwargs):
    heads, kv_heads, hd = q.shape[1], k.shape[1], q.shape[2]
    outs = []
    for i in range(len(cu_seqlens_q) - 1):
        qs = q[int(cu_seqlens_q[i]):int(cu_seqlens_q[i + 1])].float()
        ks = k[int(cu_seqlens_k[i]):int(cu_seqlens_k[i + 1])].float().repeat_interleave(heads // kv_heads, dim=1)
        vs = v[int(cu_seqlens_k[i]):int(cu_seqlens_k[i + 1])].float().repeat_interleave(heads // kv_heads, dim=1)
        scores = torch.einsum("qhd,khd->hqk", qs, ks) / hd ** 0.5
        if causal:
            nq, nk = qs.shape[0], ks.shape[0]
            allowed = torch.arange(nk)[None, :] <= torch.arange(nq)[:, None] + (nk - nq)
            scores = scores.masked_fill(~allowed, float("-inf"))
        outs.append(torch.einsum("hqk,khd->qhd", scores.softmax(-1), vs))
    return torch.cat(outs, 0)


_to = torch.Tensor.to


def f32_to(self, *args, **kwargs):
    args = tuple(torch.float32 if a is torch.bfloat16 else a for a in args)
    if kwargs.get("dtype") is torch.bfloat16:
        kwargs["dtype"] = torch.float32
    return _to(self, *args, **kwargs)


torch.Tensor.to = f32_to
torch.autocast = lambda *args, **kwargs: contextlib.nullcontext()  # CUDA bf16 autocast: no CUDA here, and f32 wanted

safetensors = types.ModuleType("safetensors")
sys.modules["safetensors"] = safetensors
sys.modules["safetensors.torch"] = types.SimpleNamespace(load_file=None)  # autoencoder.py's loader, not called
import modeling.bagel.qwen2_navit as qwen2_navit  # noqa: E402
qwen2_navit.flash_attn_varlen_func = flash_attn_varlen_func
from modeling.bagel.bagel import Bagel, BagelConfig  # noqa: E402
from modeling.bagel.qwen2_navit import Qwen2Config, Qwen2ForCausalLM  # noqa: E402
from modeling.autoencoder import AutoEncoder, AutoEncoderParams  # noqa: E402
from inferencer import InterleaveInferencer  # noqa: E402


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dtype = {"F16": torch.float16, "F32": torch.float32}[info["dtype"]]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=dtype).reshape(info["shape"]).float()
    return out, json.loads(header.get("__metadata__", {}).get("config", "null"))


# ---- tiny model: generation branch only, MoT layers -------------------------------------------------------------
LLM = dict(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=2, hidden_act="silu", max_position_embeddings=32768, rms_norm_eps=1e-6,
           rope_theta=1000000.0, tie_word_embeddings=False, qk_norm=True, layer_module="Qwen2MoTDecoderLayer",
           freeze_und=False)
ae_weights, VAE = load_safetensors(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "FluxVae",
                                                "ae_tiny.safetensors"))
ae = AutoEncoder(AutoEncoderParams(**VAE)).eval()
ae.load_state_dict(ae_weights)
MAX_LATENT, P = 4, 2
llm_config = Qwen2Config(**LLM)
config = BagelConfig(visual_gen=True, visual_und=False, llm_config=llm_config, vit_config=None,
                     vae_config=types.SimpleNamespace(downsample=VAE["downsample"], z_channels=VAE["z_channels"]),
                     latent_patch_size=P, max_latent_size=MAX_LATENT, interpolate_pos=False, timestep_shift=1.0)
model = Bagel(Qwen2ForCausalLM(llm_config), None, config).eval()

g = torch.Generator().manual_seed(20251202)
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("pos_embed"):
            continue
        if p.dim() == 1 and "norm" in name:
            p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.3 * torch.randn(p.shape, generator=g))

PROMPT_IDS = [5, 6, 7, 8]
NEW_TOKEN_IDS = dict(bos_token_id=36, eos_token_id=37, start_of_image=38, end_of_image=39)
IMAGE = (12, 16)  # H, W in pixels: a 3x4 grid of latent tokens (VAE x2, patch 2)
tokenizer = types.SimpleNamespace(encode=lambda text: list(PROMPT_IDS))
inferencer = InterleaveInferencer(model, ae, tokenizer, None, None, NEW_TOKEN_IDS)

# Record each sampler step: x_t in, the raw velocities (cond, cfg_text, cfg_img as llm2vae gives them, at the VAE
# rows) and the guided velocity _forward_flow returns.
steps, raw = [], []
model.llm2vae.register_forward_hook(lambda mod, inp, out: raw.append(out.detach().clone()))
forward_flow = model._forward_flow


def recording_forward_flow(**kw):
    raw.clear()
    v = forward_flow(**kw)
    idx = kw["packed_vae_token_indexes"]
    steps.append(dict(x=kw["x_t"].clone(), t=kw["timestep"][0].reshape(1).clone(), v=v.clone(),
                      raw=[r[idx] for r in raw], text=kw["cfg_text_scale"], img=kw["cfg_img_scale"]))
    return v


model._forward_flow = recording_forward_flow
decoded = {}
decode_image = inferencer.decode_image


def recording_decode_image(latent, image_shape):
    decoded["latent"] = latent.clone()
    image = decode_image(latent, image_shape)
    decoded["image"] = torch.tensor(list(image.getdata()), dtype=torch.int64).reshape(image_shape[0], image_shape[1], 3)
    return image


inferencer.decode_image = recording_decode_image

SCENARIOS = {
    "global": dict(cfg_text_scale=4.0, cfg_img_scale=1.5, cfg_interval=[0.4, 1.0], timestep_shift=1.0,
                   num_timesteps=6, cfg_renorm_min=0.0, cfg_renorm_type="global"),
    "channel": dict(cfg_text_scale=3.0, cfg_img_scale=2.0, cfg_interval=[0.0, 1.0], timestep_shift=2.0,
                    num_timesteps=5, cfg_renorm_min=0.3, cfg_renorm_type="channel"),
    "text_channel": dict(cfg_text_scale=4.0, cfg_img_scale=1.5, cfg_interval=[0.4, 1.0], timestep_shift=3.0,
                         num_timesteps=5, cfg_renorm_min=0.0, cfg_renorm_type="text_channel"),
    "text_only": dict(cfg_text_scale=2.5, cfg_img_scale=1.0, cfg_interval=[0.0, 1.0], timestep_shift=1.0,
                      num_timesteps=4, cfg_renorm_min=0.0, cfg_renorm_type="global"),
}
expected, layout = {}, {"llm": LLM, "vae": VAE, "max_latent_size": MAX_LATENT, "latent_patch_size": P,
                        "prompt_ids": PROMPT_IDS, "new_token_ids": NEW_TOKEN_IDS, "image_shape": IMAGE,
                        "scenarios": {}}
for s, (name, options) in enumerate(SCENARIOS.items()):
    steps.clear()
    torch.manual_seed(100 + s)
    with torch.no_grad():
        inferencer.interleave_inference([ "a prompt" ], image_shapes=IMAGE, **options)
    expected[f"{name}.noise"] = steps[0]["x"]
    for i, st in enumerate(steps):
        expected[f"{name}.{i}.x"] = st["x"]
        expected[f"{name}.{i}.t"] = st["t"]
        expected[f"{name}.{i}.v"] = st["v"]
        for label, r in zip(["cond", "cfg_text", "cfg_img"], st["raw"]):
            expected[f"{name}.{i}.{label}"] = r
    expected[f"{name}.latent"] = decoded["latent"]
    expected[f"{name}.image"] = decoded["image"]
    layout["scenarios"][name] = dict(options, steps=len(steps),
                                     branches=[len(st["raw"]) for st in steps])

weights = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("pos_embed")}
save_safetensors(f"{OUT}/weights.safetensors", weights)
save_safetensors(f"{OUT}/expected.safetensors", expected)
with open(f"{OUT}/layout.json", "w") as f:
    json.dump(layout, f, indent=1)
print("written", {k: layout["scenarios"][k]["branches"] for k in SCENARIOS})
