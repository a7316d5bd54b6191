#!/usr/bin/python3
"""Generates the image fixtures from the reference's own code (ByteDance-Seed/Bagel data/transforms.py and
data/data_utils.py), unchanged, imported from an exported copy of the mirror.

Usage (from the repository root):
    git -C /work/.mirror/ByteDance-Seed+Bagel/repo archive HEAD | tar -x -C /tmp/bagel-ref
    /usr/bin/python3 Bagel.Tests/Fixtures/Images/make_fixtures.py /tmp/bagel-ref ../shared/data/images

Needs torch 1.13, torchvision 0.14, Pillow 9.4, numpy (see shared/reference/running-the-reference.md).
"""
import hashlib
import importlib.util
import json
import os
import random
import sys
import types

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def load_reference(ref_root):
    # Stand-ins for imports that are never called on the paths used here.
    sys.modules.setdefault("cv2", types.ModuleType("cv2"))
    flex = types.ModuleType("torch.nn.attention.flex_attention")
    flex.or_masks = lambda *a: None
    flex.and_masks = lambda *a: None
    attention = types.ModuleType("torch.nn.attention")
    attention.flex_attention = flex
    sys.modules.setdefault("torch.nn.attention", attention)
    sys.modules.setdefault("torch.nn.attention.flex_attention", flex)

    def load(name, rel):
        spec = importlib.util.spec_from_file_location(name, os.path.join(ref_root, rel))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load("ref_transforms", "data/transforms.py"), load("ref_data_utils", "data/data_utils.py")


# The transform configurations of data/configs/example.yaml (T2I, edit VAE, edit ViT, VLM).
CONFIGS = [
    dict(name="t2i", max_image_size=1024, min_image_size=512, image_stride=16, max_pixels=14 * 14 * 9 * 1024, img_num=1),
    dict(name="edit_vae", max_image_size=1024, min_image_size=512, image_stride=16, max_pixels=14 * 14 * 9 * 1024, img_num=1),
    dict(name="edit_vit", max_image_size=518, min_image_size=224, image_stride=14, max_pixels=14 * 14 * 9 * 1024, img_num=1),
    dict(name="vlm_1", max_image_size=980, min_image_size=378, image_stride=14, max_pixels=2_007_040, img_num=1),
    dict(name="vlm_3", max_image_size=980, min_image_size=378, image_stride=14, max_pixels=2_007_040, img_num=3),
]


def input_sizes():
    sizes = [(1, 1), (750, 30), (30, 750), (2000, 1000), (1000, 2000), (1500, 1000), (980, 980), (1024, 1024),
             (512, 512), (518, 518), (224, 224), (378, 378), (1, 4000), (4000, 1), (13, 7), (15, 17), (511, 513),
             (1023, 1025), (1600, 1600), (1344, 1344), (4096, 4096), (640, 480), (480, 360), (320, 240),
             (128, 128), (100, 100), (162, 150), (200, 150), (32, 32), (2, 1), (1, 2), (8000, 6000), (1920, 1080),
             (1080, 1920), (3000, 2000), (999, 333), (336, 1008), (1372, 1372), (1418, 1418), (700, 1400)]
    rng = random.Random(20261124)
    while len(sizes) < 130:
        w = rng.choice([rng.randint(1, 64), rng.randint(65, 1200), rng.randint(1201, 5000)])
        h = rng.choice([rng.randint(1, 64), rng.randint(65, 1200), rng.randint(1201, 5000)])
        sizes.append((w, h))
    return sizes


def resize_size_fixture(ref_transforms):
    out = []
    for cfg in CONFIGS:
        transform = ref_transforms.ImageTransform(cfg["max_image_size"], cfg["min_image_size"], cfg["image_stride"],
                                                  max_pixels=cfg["max_pixels"])
        resize = transform.resize_transform
        cases = []
        for w, h in input_sizes():
            # A tensor input goes through the same size rule; a 1-channel uint8 tensor keeps it cheap.
            result = resize(torch.zeros((1, h, w), dtype=torch.uint8), img_num=cfg["img_num"])
            cases.append([w, h, int(result.shape[-1]), int(result.shape[-2])])
        out.append(dict(cfg, cases=cases))
    with open(os.path.join(HERE, "resize_sizes.json"), "w") as f:
        json.dump(dict(generator="make_fixtures.py", configs=out), f, separators=(",", ":"))


PIXEL_CONFIGS = [c for c in CONFIGS if c["name"] in ("t2i", "edit_vit")]


def pixel_fixture(ref_transforms, ref_utils, image_dir):
    os.makedirs(os.path.join(HERE, "pixels"), exist_ok=True)
    manifest = []
    for name in sorted(os.listdir(image_dir)):
        if name.startswith("corrupt_"):
            continue
        stem = os.path.splitext(name)[0]
        with Image.open(os.path.join(image_dir, name)) as im:
            im.load()
            decoded = ref_utils.pil_img2rgb(im)
        decoded_file = f"pixels/{stem}.decoded.png"
        decoded.save(os.path.join(HERE, decoded_file), optimize=True)
        entry = dict(source=name, decoded=decoded_file, width=decoded.width, height=decoded.height,
                     decoded_sum=int(np.asarray(decoded, dtype=np.int64).sum()), outputs=[])
        for cfg in PIXEL_CONFIGS:
            transform = ref_transforms.ImageTransform(cfg["max_image_size"], cfg["min_image_size"], cfg["image_stride"],
                                                      max_pixels=cfg["max_pixels"])
            resized = transform.resize_transform(decoded, img_num=cfg["img_num"])
            tensor = transform(decoded, img_num=cfg["img_num"])
            raw = np.asarray(resized, dtype=np.uint8)
            out = dict(config=cfg["name"], width=resized.width, height=resized.height,
                       resized_sha256=hashlib.sha256(raw.tobytes()).hexdigest(),
                       tensor_sha256=hashlib.sha256(tensor.numpy().astype("<f4").tobytes()).hexdigest())
            # Small outputs are stored whole so a mismatch can be measured; big ones by hash only.
            if resized.width * resized.height <= 200_000:
                out["resized"] = f"pixels/{stem}.{cfg['name']}.png"
                resized.save(os.path.join(HERE, out["resized"]), optimize=True)
            entry["outputs"].append(out)
        manifest.append(entry)
    with open(os.path.join(HERE, "pixels.json"), "w") as f:
        json.dump(dict(generator="make_fixtures.py", configs=PIXEL_CONFIGS, images=manifest), f, indent=1)


def patch_fixture(ref_utils):
    patchify = []
    for c, h, w, p in [(3, 14, 14, 14), (3, 28, 42, 14), (3, 42, 28, 14), (2, 4, 6, 2)]:
        image = torch.arange(c * h * w, dtype=torch.float32).reshape(c, h, w)
        patches = ref_utils.patchify(image, p)
        patchify.append(dict(channels=c, height=h, width=w, patch_size=p, shape=list(patches.shape),
                             values=[int(v) for v in patches.flatten().tolist()]))
    position = []
    for h, w, p, m in [(14, 14, 14, 70), (28, 42, 14, 70), (686, 686, 14, 70), (980, 980, 14, 70),
                       (224, 518, 14, 70), (1024, 688, 16, 64), (512, 512, 16, 64), (16, 1024, 16, 64),
                       (70, 140, 14, 7), (42, 98, 14, 3)]:
        position.append(dict(height=h, width=w, patch_size=p, max_num_patches_per_side=m,
                             extrapolate=ref_utils.get_flattened_position_ids_extrapolate(h, w, p, m).tolist(),
                             interpolate=ref_utils.get_flattened_position_ids_interpolate(h, w, p, m).tolist()))
    # Interpolate buckets for every patch count 1..150 on the grids used (a square image gives the row buckets).
    buckets = {}
    for m in (3, 7, 32, 64, 70):
        rows = []
        for n in range(1, 151):
            ids = ref_utils.get_flattened_position_ids_interpolate(n, 1, 1, m).tolist()
            rows.append([i // m for i in ids])
        buckets[str(m)] = rows
    with open(os.path.join(HERE, "patches.json"), "w") as f:
        json.dump(dict(generator="make_fixtures.py", patchify=patchify, position_ids=position,
                       interpolate_buckets=buckets), f, separators=(",", ":"))


def format_fixture(ref_utils):
    """Tiny images PIL writes in the formats and modes the real test images lack, with pil_img2rgb's output."""
    os.makedirs(os.path.join(HERE, "formats"), exist_ok=True)
    w, h = 16, 8
    rgba = np.zeros((h, w, 4), dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            rgba[y, x] = (x * 16, y * 32, (x * y * 7) % 256, (x * 17 + y * 5) % 256)
    rgba[0, 0, 3] = 0
    rgba[0, 1, 3] = 255
    base = Image.fromarray(rgba, "RGBA")
    palette = base.convert("RGB").quantize(colors=32, method=Image.Quantize.MEDIANCUT)
    made = {
        "gif_palette_transparency_16x8.gif": (palette, dict(transparency=0)),
        "bmp_rgb_16x8.bmp": (base.convert("RGB"), {}),
        "png_gray_alpha_la_16x8.png": (base.convert("LA"), {}),
        "png_rgb_trns_16x8.png": (base.convert("RGB"), dict(transparency=tuple(int(v) for v in rgba[2, 3, :3]))),
        "png_gray_trns_16x8.png": (base.convert("L"), dict(transparency=int(np.asarray(base.convert("L"))[1, 2]))),
        "png_palette_trns_16x8.png": (palette, dict(transparency=0)),
        "webp_lossless_alpha_16x8.webp": (base, dict(lossless=True, exact=True)),
    }
    entries = []
    for name, (image, kwargs) in made.items():
        path = os.path.join(HERE, "formats", name)
        image.save(path, **kwargs)
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            rgb = ref_utils.pil_img2rgb(im)
        raw = np.asarray(rgb, dtype=np.uint8)
        entries.append(dict(file=f"formats/{name}", pil_mode=mode, width=rgb.width, height=rgb.height,
                            rgb_hex=raw.tobytes().hex()))
    with open(os.path.join(HERE, "formats.json"), "w") as f:
        json.dump(dict(generator="make_fixtures.py", images=entries), f, indent=1)


def main():
    ref_root = sys.argv[1] if len(sys.argv) > 1 else "/tmp/bagel-ref"
    image_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "../../../../shared/data/images")
    ref_transforms, ref_utils = load_reference(ref_root)
    resize_size_fixture(ref_transforms)
    pixel_fixture(ref_transforms, ref_utils, image_dir)
    patch_fixture(ref_utils)
    format_fixture(ref_utils)


if __name__ == "__main__":
    main()
