#!/usr/bin/python3
"""Image-editing and VLM-answering fixtures from the reference's own inference code (see README.md here).

Run (after the archive steps of make_fixtures.py):
      /usr/bin/python3 Bagel.Tests/Fixtures/Generation/make_edit_vlm_fixtures.py /tmp/bagel-ref /tmp/einops Bagel.Tests/Fixtures/Generation

Runs inferencer.py's InterleaveInferencer.interleave_inference on a tiny random BAGEL with both branches (MoT LLM,
a 1-layer SigLIP, the tiny FLUX autoencoder of ../FluxVae/ae_tiny.safetensors), in f32 on CPU:
- editing: [image, instruction] -> image (update_context_image with vae and vit into the conditional context,
  cfg contexts as the inferencer builds them, the reference's ImageTransform resizes with small sizes);
- answering: [image, question] with understanding_output=True (ViT only, gen_text greedy).
The stand-ins are make_fixtures.py's (flash-attn varlen, bf16 casts and autocast neutralised), plus: a stand-in
tokenizer (fixed ids; decode renders bos/eos as <|im_start|>/<|im_end|>), an empty cv2 module (imported by
data/transforms.py, not called), and recording wrappers around torch.randn_like (the VAE posterior noise),
_forward_flow, decode_image, lm_head and generate_text.
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
sys.modules.setdefault("cv2", types.ModuleType("cv2"))  # data/transforms.py imports it; not called
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
from modeling.bagel.siglip_navit import SiglipVisionConfig, SiglipVisionModel  # noqa: E402
from data.transforms import ImageTransform  # noqa: E402
from PIL import Image  # noqa: E402


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



# ---- tiny model: both branches, MoT layers ------------------------------------------------------------------------
LLM = dict(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=2, hidden_act="silu", max_position_embeddings=32768, rms_norm_eps=1e-6,
           rope_theta=1000000.0, tie_word_embeddings=False, qk_norm=True, layer_module="Qwen2MoTDecoderLayer",
           freeze_und=False)
VIT = dict(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, num_channels=3,
           image_size=980, patch_size=14, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, attention_dropout=0.0,
           rope=False)
ae_weights, VAE = load_safetensors(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "FluxVae",
                                                "ae_tiny.safetensors"))
ae = AutoEncoder(AutoEncoderParams(**VAE)).eval()
ae.load_state_dict(ae_weights)
MAX_LATENT, P = 4, 2
llm_config = Qwen2Config(**LLM)
vit_config = SiglipVisionConfig(**VIT)
config = BagelConfig(visual_gen=True, visual_und=True, llm_config=llm_config, vit_config=vit_config,
                     vae_config=types.SimpleNamespace(downsample=VAE["downsample"], z_channels=VAE["z_channels"]),
                     latent_patch_size=P, max_latent_size=MAX_LATENT, vit_max_num_patch_per_side=70,
                     connector_act="gelu_pytorch_tanh", interpolate_pos=False, timestep_shift=1.0)
model = Bagel(Qwen2ForCausalLM(llm_config), SiglipVisionModel(vit_config), config)
model.vit_model.vision_model.embeddings.convert_conv2d_to_linear(vit_config)
model = model.eval()

g = torch.Generator().manual_seed(20251203)
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("pos_embed"):
            continue
        if p.dim() == 1 and "norm" in name:
            p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.2 * torch.randn(p.shape, generator=g))

PROMPT_IDS = [5, 6, 7, 8]
NEW_TOKEN_IDS = dict(bos_token_id=36, eos_token_id=37, start_of_image=38, end_of_image=39)
VAE_T = dict(max_image_size=16, min_image_size=8, image_stride=4)   # latent_downsample 4, max_latent_size 4
VIT_T = dict(max_image_size=28, min_image_size=28, image_stride=14)


def decode(ids):
    names = {36: "<|im_start|>", 37: "<|im_end|>"}
    return "".join(names.get(int(i), f"t{int(i)} ") for i in ids)


tokenizer = types.SimpleNamespace(encode=lambda text: list(PROMPT_IDS), decode=decode)
vae_transform = ImageTransform(VAE_T["max_image_size"], VAE_T["min_image_size"], VAE_T["image_stride"])
vit_transform = ImageTransform(VIT_T["max_image_size"], VIT_T["min_image_size"], VIT_T["image_stride"])
inferencer = InterleaveInferencer(model, ae, tokenizer, vae_transform, vit_transform, NEW_TOKEN_IDS)

pixels = torch.randint(0, 256, (13, 21, 3), generator=g, dtype=torch.uint8)  # H x W x RGB
image = Image.fromarray(pixels.numpy(), mode="RGB")

# Recorders.
steps, raw, posterior, decoded, logits, texts, transformed = [], [], [], {}, [], [], {}
model.llm2vae.register_forward_hook(lambda mod, inp, out: raw.append(out.detach().clone()))
model.language_model.lm_head.register_forward_hook(lambda mod, inp, out: logits.append(out.detach().clone()))
forward_flow = model._forward_flow


def recording_forward_flow(**kw):
    raw.clear()
    v = forward_flow(**kw)
    idx = kw["packed_vae_token_indexes"]
    steps.append(dict(x=kw["x_t"].clone(), t=kw["timestep"][0].reshape(1).clone(), v=v.clone(),
                      raw=[r[idx] for r in raw]))
    return v


model._forward_flow = recording_forward_flow
_randn_like = torch.randn_like


def recording_randn_like(t, *args, **kwargs):
    out = _randn_like(t, *args, **kwargs)
    posterior.append(out.detach().clone())
    return out


torch.randn_like = recording_randn_like
decode_image = inferencer.decode_image


def recording_decode_image(latent, image_shape):
    decoded["latent"] = latent.clone()
    out = decode_image(latent, image_shape)
    decoded["image"] = torch.tensor(list(out.getdata()), dtype=torch.int64).reshape(image_shape[0], image_shape[1], 3)
    return out


inferencer.decode_image = recording_decode_image
generate_text = model.generate_text


def recording_generate_text(**kw):
    out = generate_text(**kw)
    texts.append(out[:, 0].clone())
    return out


model.generate_text = recording_generate_text
_vae_call, _vit_call = ImageTransform.__call__, None


def recording_call(self, img, img_num=1):
    out = _vae_call(self, img, img_num)
    transformed["vae" if self is vae_transform else "vit"] = out.clone()
    return out


ImageTransform.__call__ = recording_call

EDITS = {
    "edit_global": dict(cfg_text_scale=4.0, cfg_img_scale=2.0, cfg_interval=[0.0, 1.0], timestep_shift=1.0,
                        num_timesteps=4, cfg_renorm_min=0.0, cfg_renorm_type="global"),
    "edit_text_channel": dict(cfg_text_scale=3.0, cfg_img_scale=1.5, cfg_interval=[0.4, 1.0], timestep_shift=3.0,
                              num_timesteps=5, cfg_renorm_min=0.0, cfg_renorm_type="text_channel"),
}
expected = {"input_pixels": pixels.to(torch.int64)}
layout = {"llm": LLM, "vit": VIT, "vae": VAE, "max_latent_size": MAX_LATENT, "latent_patch_size": P,
          "prompt_ids": PROMPT_IDS, "new_token_ids": NEW_TOKEN_IDS, "vae_transform": VAE_T, "vit_transform": VIT_T,
          "edits": {}, "vlm": {}}
for s, (name, options) in enumerate(EDITS.items()):
    steps.clear(); posterior.clear(); transformed.clear()
    torch.manual_seed(200 + s)
    with torch.no_grad():
        out = inferencer(image=image, text="an instruction", **options)
    assert len(posterior) == 1, len(posterior)
    expected[f"{name}.vae_pixels"] = transformed["vae"]
    expected[f"{name}.vit_pixels"] = transformed["vit"]
    expected[f"{name}.posterior_noise"] = posterior[0]
    expected[f"{name}.noise"] = steps[0]["x"]
    for i, st in enumerate(steps):
        expected[f"{name}.{i}.x"] = st["x"]
        expected[f"{name}.{i}.t"] = st["t"]
        expected[f"{name}.{i}.v"] = st["v"]
        for label, r in zip(["cond", "cfg_text", "cfg_img"], st["raw"]):
            expected[f"{name}.{i}.{label}"] = r
    expected[f"{name}.latent"] = decoded["latent"]
    expected[f"{name}.image"] = decoded["image"]
    layout["edits"][name] = dict(options, steps=len(steps), branches=[len(st["raw"]) for st in steps],
                                 image_shape=list(decoded["image"].shape[:2]))

VLM_MAX = 6
logits.clear(); texts.clear(); transformed.clear(); posterior.clear()
with torch.no_grad():
    answer = inferencer(image=image, text="a question", understanding_output=True, do_sample=False,
                        max_think_token_n=VLM_MAX)
assert len(posterior) == 0 and "vae" not in transformed
expected["vlm.vit_pixels"] = transformed["vit"]
expected["vlm.ids"] = texts[0].to(torch.int64)
expected["vlm.logits"] = torch.cat(logits, 0)
layout["vlm"] = dict(max_length=VLM_MAX, do_sample=False, answer=answer["text"])

weights = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("pos_embed")}
save_safetensors(f"{OUT}/edit_vlm_weights.safetensors", weights)
save_safetensors(f"{OUT}/edit_vlm_expected.safetensors", expected)
with open(f"{OUT}/edit_vlm_layout.json", "w") as f:
    json.dump(layout, f, indent=1)
print("written", {k: v["branches"] for k, v in layout["edits"].items()}, layout["vlm"],
      "ids", expected["vlm.ids"].tolist())
