"""Small real-photograph folders from the images shipped inside scikit-image,
for tests and the demo (no download needed)."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image
from skimage import data as skdata

# Colour photographs bundled with scikit-image (no network access needed).
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'hubble_deep_field',
          'immunohistochemistry', 'retina')


def write_photo_folder(out_dir: str, num_images: int = 16, max_side: int = 160, seed: int = 0) -> list[str]:
    """Writes ``num_images`` JPEGs to ``out_dir``: the bundled photographs,
    then random crops of them, each resized so its longer side is ``max_side``.
    Returns the written paths (existing files are kept)."""
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = [getattr(skdata, name)() for name in PHOTOS]
    paths = []
    for index in range(num_images):
        path = os.path.join(out_dir, f'photo_{index:03d}.jpg')
        paths.append(path)
        if os.path.exists(path):
            continue
        photo = photos[index % len(photos)]
        if index >= len(photos):  # random crops of at least half of each side
            height, width = photo.shape[:2]
            crop_h, crop_w = rng.integers(height // 2, height + 1), rng.integers(width // 2, width + 1)
            top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
            photo = photo[top:top + crop_h, left:left + crop_w]
        image = Image.fromarray(photo)
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
        image.save(path, quality=92)
    return paths
