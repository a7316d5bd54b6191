"""Runs the reference's own FLUX autoencoder (modeling/autoencoder.py) and BAGEL generation-path code
(modeling/bagel/modeling_utils.py, the visual-generation branch of modeling/bagel/bagel.py Bagel.forward) on tiny
configurations and writes what they produce, so Bagel.NET's ports are checked against the reference, not against
themselves. See README.md for what each file holds.

Run (needs torch and numpy; /usr/bin/python3 here has torch 1.13.1):
    git -C /work/.mirror/ByteDance-Seed+Bagel/repo archive HEAD | tar -x -C /tmp/bagel-ref
    git -C /work/.mirror/arogozhnikov+einops/repo archive v0.8.1 einops | tar -x -C /tmp/einops-0.8.1
    /usr/bin/python3 make_fixtures.py /tmp/bagel-ref /tmp/einops-0.8.1 .

Stand-ins (torch 1.13 and missing packages), none on a computed path except where noted:
- F.scaled_dot_product_attention (torch >= 2.0) is forwarded to the math formula softmax(q k^T / sqrt(d)) v;
  the autoencoder's attention block calls it with no mask.
- transformers: PretrainedConfig / PreTrainedModel become a plain object / nn.Module; ACT2FN maps
  "gelu_pytorch_tanh" to F.gelu(approximate="tanh"), which is what transformers' PytorchGELUTanh computes.
- bagel.py's bare `@torch.no_grad` decorators (torch >= 2.0 form) are accepted during its import only; they sit on
  inference methods that are not called.
- flex_attention, tqdm, qwen2_navit.NaiveCache: imported by bagel.py, never called on this path.
- The language model handed to Bagel is an identity (it returns the packed sequence), so Bagel.forward's MSE output
  exposes vae2llm + time_embedder + latent_pos_embed + llm2vae and the flow-matching target directly.
"""
import json
import math
import struct
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REF, EINOPS, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, EINOPS)
sys.path.insert(0, REF)


def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v


F.scaled_dot_product_attention = sdpa


def module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


class PretrainedConfig:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


class PreTrainedModel(nn.Module):
    def __init__(self, config):
        super().__init__()


module("safetensors")
module("safetensors.torch", load_file=None)
module("transformers")
module("transformers.configuration_utils", PretrainedConfig=PretrainedConfig)
module("transformers.modeling_utils", PreTrainedModel=PreTrainedModel)
module("transformers.activations", ACT2FN={"gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")})
module("torch.nn.attention")
module("torch.nn.attention.flex_attention", create_block_mask=None, or_masks=None, and_masks=None)
module("tqdm", tqdm=lambda x, **k: x)
pkg = module("modeling")
pkg.__path__ = [REF + "/modeling"]
bagel_pkg = module("modeling.bagel")
bagel_pkg.__path__ = [REF + "/modeling/bagel"]
module("modeling.bagel.qwen2_navit", NaiveCache=object)

from modeling.autoencoder import AutoEncoder, AutoEncoderParams  # noqa: E402
# bagel.py decorates its inference methods with a bare `@torch.no_grad` (torch >= 2.0 form); those methods are not
# called here, so during the import the bare form just returns the function.
_no_grad = torch.no_grad
torch.no_grad = lambda *f: f[0] if f and callable(f[0]) else _no_grad()
from modeling.bagel.bagel import Bagel, BagelConfig  # noqa: E402
torch.no_grad = _no_grad
from modeling.bagel.modeling_utils import MLPconnector, TimestepEmbedder, get_2d_sincos_pos_embed  # noqa: E402

# Record every torch.randn_like draw the reference makes (posterior noise, flow noise) so our code can replay them.
draws = []
_randn_like = torch.randn_like


def recording_randn_like(x, *args, **kwargs):
    r = _randn_like(x, *args, **kwargs)
    draws.append(r.detach().clone())
    return r


torch.randn_like = recording_randn_like


def save_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    codes = {torch.float32: "F32", torch.float16: "F16", torch.float64: "F64", torch.int64: "I64"}
    for name, t in tensors.items():
        t = t.detach().contiguous()
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": codes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def half_exact_(model):
    """Rounds every parameter to a float16 value so the weights file can be F16 (half the size) while the reference
    still computes in float32 with exactly the values our loader converts back."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


torch.manual_seed(1234)

# ---------------- FLUX autoencoder, tiny configuration ----------------
VAE = dict(resolution=16, in_channels=3, downsample=2, ch=32, out_ch=3, ch_mult=[2, 1], num_res_blocks=1,
           z_channels=4, scale_factor=0.3611, shift_factor=0.1159)
ae = AutoEncoder(AutoEncoderParams(**VAE)).eval()
with torch.no_grad():
    for name, p in ae.named_parameters():
        if ".norm" in name or name.endswith("norm_out.weight") or name.endswith("norm_out.bias"):
            # GroupNorm affine defaults are 1 / 0; perturb them so a swapped weight/bias would show.
            p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn_like(p))
half_exact_(ae)
draws.clear()
save_safetensors(f"{OUT}/ae_tiny.safetensors", {k: v.half() for k, v in ae.state_dict().items()},
                 {"config": json.dumps(VAE)})

# Two images (16x16 and 16x32) zero-padded (bottom/right) into one [2, 3, 16, 32] batch, as the packer does.
images = torch.zeros(2, 3, 16, 32)
images[0, :, :16, :16] = torch.rand(3, 16, 16) * 2 - 1
images[1, :, :16, :32] = torch.rand(3, 16, 32) * 2 - 1
with torch.no_grad():
    moments = ae.encoder(images)
    draws.clear()
    z = ae.encode(images)
    posterior_noise = draws[0]
    decoded = ae.decode(z)
save_safetensors(f"{OUT}/vae_tiny_io.safetensors", {
    "padded_images": images, "moments": moments, "posterior_noise": posterior_noise, "z": z, "decoded": decoded})

# ---------------- BAGEL generation-path helpers ----------------
H, G, Z, P = 32, 4, 4, 2  # hidden size, max_latent_size, latent channels, latent_patch_size
llm_config = PretrainedConfig(hidden_size=H, layer_module="Qwen2DecoderLayer", num_attention_heads=2)
vae_config = PretrainedConfig(downsample=8, z_channels=Z)
config = BagelConfig(visual_gen=True, visual_und=False, llm_config=llm_config, vae_config=vae_config,
                     latent_patch_size=P, max_latent_size=G, timestep_shift=3.0)


class IdentityLanguageModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(8, H)

    def forward(self, packed_sequence, **kwargs):
        return packed_sequence


bagel = Bagel(IdentityLanguageModel(), None, config)
with torch.no_grad():
    # llm2vae is zero-initialized by the reference; give it values so the MSE depends on it.
    bagel.llm2vae.weight.copy_(torch.randn_like(bagel.llm2vae.weight) * 0.1)
    bagel.llm2vae.bias.copy_(torch.randn_like(bagel.llm2vae.bias) * 0.1)
draws.clear()

# Two latent images in one padded latent: grid (2, 2) clean (t = -inf) and grid (2, 3) noisy (raw t 0.37).
grids = [(2, 2), (2, 3)]
padded_latent = torch.zeros(2, Z, 4, 6)
padded_latent[0, :, :4, :4] = torch.randn(Z, 4, 4)
padded_latent[1] = torch.randn(Z, 4, 6)
text_indexes = torch.tensor([0, 5])
vae_indexes = torch.tensor([1, 2, 3, 4, 6, 7, 8, 9, 10, 11])
position_ids = torch.tensor([r * G + c for (h, w) in grids for r in range(h) for c in range(w)])
mse_indexes = torch.tensor([6, 7, 8, 9, 10, 11])


def run_bagel(raw_timesteps, mse_loss_indexes):
    draws.clear()
    captured = {}
    h1 = bagel.vae2llm.register_forward_pre_hook(lambda m, a: captured.__setitem__("x_t", a[0].clone()))
    h2 = bagel.time_embedder.register_forward_pre_hook(lambda m, a: captured.__setitem__("t", a[0].clone()))
    with torch.no_grad():
        out = bagel(sequence_length=12, packed_text_ids=torch.tensor([1, 2]), packed_text_indexes=text_indexes,
                    sample_lens=[12], packed_position_ids=torch.zeros(12, dtype=torch.long),
                    nested_attention_masks=[torch.zeros(12, 12)], padded_latent=padded_latent,
                    patchified_vae_latent_shapes=grids, packed_latent_position_ids=position_ids,
                    packed_vae_token_indexes=vae_indexes, packed_timesteps=raw_timesteps,
                    mse_loss_indexes=mse_loss_indexes)
    h1.remove()
    h2.remove()
    return captured, out["mse"], draws[0]


# All clean: t = 0 exactly, so x_t (the vae2llm input) is the reference's patchified latent x0, bit for bit.
clean, _, _ = run_bagel(torch.full((10,), float("-inf")), torch.zeros(0, dtype=torch.long))
raw_t = torch.tensor([float("-inf")] * 4 + [0.37] * 6)
noisy, mse, flow_noise = run_bagel(raw_t, mse_indexes)

sincos_small = get_2d_sincos_pos_embed(20, 3)  # float64, as built before the fp32 store
connector = MLPconnector(12, H, "gelu_pytorch_tanh")
connector_in = torch.randn(5, 12)
with torch.no_grad():
    connector_out = connector(connector_in)
embedder_t = torch.tensor([0.0, 0.25, 0.5, 0.9, 1.0])
with torch.no_grad():
    embedder_out = bagel.time_embedder(embedder_t)
    embedder_freq = TimestepEmbedder.timestep_embedding(embedder_t, 256)

tensors = {k: v for k, v in bagel.state_dict().items() if not k.startswith("language_model.")}
tensors.update({f"connector.{k}": v for k, v in connector.state_dict().items()})
tensors.update({
    "fixture.padded_latent": padded_latent, "fixture.packed_latent_position_ids": position_ids,
    "fixture.packed_timesteps": raw_t, "fixture.x0": clean["x_t"], "fixture.flow_noise": flow_noise,
    "fixture.t": noisy["t"], "fixture.x_t": noisy["x_t"], "fixture.mse": mse,
    "fixture.sincos_20x3": torch.from_numpy(sincos_small),
    "fixture.connector_in": connector_in, "fixture.connector_out": connector_out,
    "fixture.embedder_t": embedder_t, "fixture.embedder_out": embedder_out, "fixture.embedder_freq": embedder_freq,
})
save_safetensors(f"{OUT}/generation_path.safetensors", tensors, {
    "hidden_size": H, "max_latent_size": G, "latent_channels": Z, "latent_patch_size": P, "timestep_shift": 3.0,
    "grids": json.dumps(grids), "mse_loss_indexes": json.dumps(mse_indexes.tolist())})
print("wrote", OUT)
