"""Attention masks made by the reference's own data/data_utils.py prepare_attention_mask_per_sample, for split layouts
covering every combination of causal / full / noise splits, written as JSON rows of '0'/'1' (1 = may attend).

Run (torch 1.13 is enough; /usr/bin/python3 here):
    mkdir -p /tmp/bagel-ref && git -C /work/.mirror/ByteDance-Seed+Bagel/repo archive HEAD | tar -x -C /tmp/bagel-ref
    /usr/bin/python3 make_masks.py /tmp/bagel-ref > masks.json

data_utils imports flex-attention helpers that torch 1.13 lacks; they are stubbed (the mask function does not use them).
"""
import itertools
import json
import sys
import types

import torch

sys.path.insert(0, sys.argv[1])
flex = types.ModuleType("torch.nn.attention.flex_attention")
flex.or_masks = flex.and_masks = lambda *a: None
sys.modules.setdefault("torch.nn.attention", types.ModuleType("torch.nn.attention"))
sys.modules["torch.nn.attention.flex_attention"] = flex
for name in ("cv2", "decord"):
    sys.modules[name] = types.ModuleType(name)

from data.data_utils import prepare_attention_mask_per_sample  # noqa: E402

modes = ["causal", "full", "noise"]
layouts = [([4], [m]) for m in modes]
layouts += [([3, 2], list(p)) for p in itertools.product(modes, repeat=2)]
layouts += [([2, 3, 2], list(p)) for p in itertools.product(modes, repeat=3)]
layouts.append(([5, 6, 4, 6, 3], ["causal", "full", "causal", "noise", "causal"]))  # a T2I-then-edit-like sample
out = []
for split_lens, attn_modes in layouts:
    mask = prepare_attention_mask_per_sample(split_lens, attn_modes)
    allowed = (mask == 0).int().tolist()
    out.append({"split_lens": split_lens, "attn_modes": attn_modes, "rows": ["".join(str(v) for v in row) for row in allowed]})
print(json.dumps({"masks": out}, indent=0))
