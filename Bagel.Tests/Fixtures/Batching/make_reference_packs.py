"""Packs three hand-made samples (T2I, VLM, edit) with the reference's own PackedDataset.pack_sequence / to_tensor
and writes the resulting batches to reference_packs.json, so Bagel.NET's PackedBatch validation is checked against
batches the reference really produces.

Run (needs torch and numpy; /usr/bin/python3 here):
    git -C /work/.mirror/ByteDance-Seed+Bagel/repo archive HEAD | tar -x -C /tmp/bagel-ref
    /usr/bin/python3 make_reference_packs.py /tmp/bagel-ref > reference_packs.json

Modules pack_sequence does not use (flex attention, which torch 1.13 lacks; the dataset registry; image transforms, which need cv2; video decoding)
are stubbed so the import succeeds. Images hold multiples of 1/8 to keep the JSON short and exact.
"""
import json
import random
import sys
import types

import numpy as np
import torch

sys.path.insert(0, sys.argv[1])
flex = types.ModuleType("torch.nn.attention.flex_attention")
flex.or_masks = flex.and_masks = lambda *a: None
sys.modules.setdefault("torch.nn.attention", types.ModuleType("torch.nn.attention"))
sys.modules["torch.nn.attention.flex_attention"] = flex
info = types.ModuleType("data.dataset_info")
info.DATASET_INFO, info.DATASET_REGISTRY = {}, {}
sys.modules["data.dataset_info"] = info
video = types.ModuleType("data.video_utils")
video.FrameSampler = object
sys.modules["data.video_utils"] = video
transforms = types.ModuleType("data.transforms")
transforms.ImageTransform = object
sys.modules["data.transforms"] = transforms

from data.dataset_base import DataConfig, PackedDataset  # noqa: E402
from data.data_utils import get_flattened_position_ids_extrapolate  # noqa: E402

MAX_LATENT = 4
MAX_TOKENS = 512


def image(h, w, gen):
    return torch.randint(-8, 9, (3, h, w), generator=gen).float() / 8


def plan(kind, cfg=0, loss=0):
    return dict(type=kind, enable_cfg=cfg, loss=loss, special_token_loss=0, special_token_label=None)


def samples(gen):
    t2i = dict(text_ids_list=[[11, 12, 13, 14, 15]], image_tensor_list=[image(32, 48, gen)],
               sequence_plan=[plan("text", cfg=1), plan("vae_image", loss=1)],
               data_indexes=dict(data_indexes=[0, 1, 7], worker_id=0, dataset_name="t2i_pretrain"))
    vlm = dict(text_ids_list=[[21, 22, 23], [31, 32, 33, 34]], image_tensor_list=[image(28, 42, gen)],
               sequence_plan=[plan("vit_image"), plan("text"), plan("text", loss=1)],
               data_indexes=dict(data_indexes=12, worker_id=1, dataset_name="vlm_sft"))
    start, final = image(16, 32, gen), image(32, 16, gen)
    edit = dict(text_ids_list=[[41, 42]], image_tensor_list=[start, image(28, 28, gen), final],
                sequence_plan=[plan("vae_image", cfg=1), plan("vit_image", cfg=1), plan("text", cfg=1), plan("vae_image", loss=1)],
                data_indexes=dict(data_indexes=[3, 5], worker_id=0, dataset_name="unified_edit"))
    return [t2i, vlm, edit]


def pack(dropout):
    gen = torch.Generator().manual_seed(0)
    ds = PackedDataset.__new__(PackedDataset)
    ds.data_config = DataConfig(grouped_datasets={}, text_cond_dropout_prob=dropout, vit_cond_dropout_prob=dropout,
                                vae_cond_dropout_prob=dropout, max_latent_size=MAX_LATENT)
    ds.use_flex, ds.max_num_tokens = True, MAX_TOKENS
    ds.get_flattened_position_ids = get_flattened_position_ids_extrapolate
    ds.bos_token_id, ds.eos_token_id, ds.start_of_image, ds.end_of_image = 151644, 151645, 151652, 151653
    status = ds.set_sequence_status()
    batch = samples(gen)
    for sample in batch:
        status = ds.pack_sequence(sample, status)
    data = ds.to_tensor(status)
    data["batch_data_indexes"] = [s["data_indexes"] for s in batch]
    return data


def plain(value):
    if isinstance(value, torch.Tensor):
        return {"dtype": str(value.dtype).replace("torch.", ""), "shape": list(value.shape),
                "values": [v if np.isfinite(v) else str(v) for v in value.flatten().tolist()]}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


random.seed(1)
np.random.seed(1)
batches = {"no_dropout": pack(0.0), "all_cfg_dropped": pack(1.0)}
print(json.dumps({"max_latent_size": MAX_LATENT, "max_num_tokens": MAX_TOKENS,
                  "batches": {name: {k: plain(v) for k, v in data.items()} for name, data in batches.items()}}))
