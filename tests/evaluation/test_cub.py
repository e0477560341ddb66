"""CUB protocol: oracle and constant encoders, the dataset reader, the tool."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from r2o_mm.data.datasets import DatasetLayoutError
from r2o_mm.evaluation.cub import evaluate_cub, read_cub_test_split

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_cub(root, count=4, size=96, seed=0):
    """A CUB-layout folder: red discs (foreground) on textured blue; test = odd ids."""
    rng = np.random.default_rng(seed)
    lines, split, fg_total, pixels = [], [], 0, 0
    for index in range(1, count + 1):
        rel = f'001.Bird/bird_{index}.jpg'
        ys, xs = np.mgrid[:size, :size]
        radius = rng.uniform(0.2, 0.3) * size
        cy, cx = rng.uniform(radius, size - radius, 2)
        fg = (ys - cy) ** 2 + (xs - cx) ** 2 <= radius ** 2
        image = np.zeros((size, size, 3), np.uint8)
        image[..., 2] = 150 + rng.integers(0, 40, (size, size))
        image[fg] = (220, 30, 30)
        os.makedirs(os.path.join(root, 'images', '001.Bird'), exist_ok=True)
        os.makedirs(os.path.join(root, 'segmentations', '001.Bird'), exist_ok=True)
        Image.fromarray(image).save(os.path.join(root, 'images', rel), quality=95)
        Image.fromarray((fg * 255).astype(np.uint8)).save(
            os.path.join(root, 'segmentations', rel.replace('.jpg', '.png')))
        lines.append(f'{index} {rel}')
        split.append(f'{index} {index % 2}')
    with open(os.path.join(root, 'images.txt'), 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    with open(os.path.join(root, 'train_test_split.txt'), 'w') as handle:
        handle.write('\n'.join(split) + '\n')


@pytest.fixture(scope='module')
def cub(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('CUB_200_2011'))
    write_cub(root, count=6)
    return root


def test_reader_takes_the_test_split(cub, tmp_path):
    items = read_cub_test_split(cub)
    assert [i for i, _, _ in items] == ['2', '4', '6']  # train_test_split 0 = test
    assert all(os.path.isfile(img) and os.path.isfile(mask) for _, img, mask in items)
    with pytest.raises(DatasetLayoutError, match='segmentations'):
        os.makedirs(tmp_path / 'images')
        (tmp_path / 'images.txt').write_text('')
        (tmp_path / 'train_test_split.txt').write_text('')
        read_cub_test_split(str(tmp_path))


def colour_oracle(image):
    """Features that separate the red foreground from the blue background."""
    return F.adaptive_avg_pool2d(image[:, [0, 2]], image.shape[-1] // 16)


def test_oracle_encoder_scores_near_one(cub):
    metrics, rows, _ = evaluate_cub(colour_oracle, read_cub_test_split(cub), size=224, k=5)
    assert metrics['mIoU'] > 90 and metrics['fg_IoU'] > 85
    assert len(rows) == 3


def test_constant_encoder_scores_what_the_protocol_predicts(cub):
    """One cluster per image, named background (the majority): fg IoU 0,
    bg IoU = background pixels / all pixels over the split."""
    items = read_cub_test_split(cub)
    constant = lambda image: torch.ones(1, 8, 6, 6)
    metrics, _, _ = evaluate_cub(constant, items, size=96, k=5, n_segments=60)
    background = sum((np.asarray(Image.open(m).convert('L').resize((96, 96), Image.Resampling.NEAREST))
                      < 128).sum() for _, _, m in items)
    assert metrics['fg_IoU'] == 0
    assert metrics['bg_IoU'] == pytest.approx(100 * background / (3 * 96 * 96))
    assert metrics['mIoU'] == pytest.approx(metrics['bg_IoU'] / 2)


def test_eval_cub_tool_writes_metrics_csv_and_pictures(cub, tmp_path):
    import torchvision
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / 'r18.pth')
    result = subprocess.run([sys.executable, 'tools/eval_cub.py', str(tmp_path / 'r18.pth'),
                             '--data', cub, '--size', '64', '--out', str(tmp_path / 'out')],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / 'out' / 'cub_metrics.json').read_text())
    assert metrics['benchmark'] == 'cub' and metrics['num_images'] == 3 and metrics['k'] == 5
    assert 0 <= metrics['metrics']['mIoU'] <= 100
    assert (tmp_path / 'out' / 'cub_per_image.csv').read_text().count('\n') == 4
    assert (tmp_path / 'out' / 'cub_examples.png').stat().st_size > 1000
