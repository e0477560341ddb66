"""tools/browse_dataset.py draws the real pipeline's samples, with and without masks."""
import os
import subprocess
import sys

import torch

from r2o_mm.data.sample_images import write_photo_folder
from r2o_mm.models.r2o import R2O

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_browse_dataset_writes_pictures(tmp_path):
    photos = tmp_path / 'photos'
    write_photo_folder(str(photos), num_images=3, max_side=80)
    model = R2O(depth=18, projector_hidden=256, projection_dim=64, predictor_hidden=256, num_clusters=8)
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'epoch_1.pth')
    tool = [sys.executable, 'tools/browse_dataset.py', 'configs/r2o_tiny_cpu.py', '--num', '2',
            '--cfg-options', f'train_dataloader.dataset.data_root={photos}']
    plain = subprocess.run(tool + ['--out', str(tmp_path / 'plain')], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert plain.stdout.count('wrote ') == 2
    with_masks = subprocess.run(tool + ['--out', str(tmp_path / 'masks'), '--checkpoint', str(tmp_path / 'epoch_1.pth')],
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert with_masks.returncode == 0, with_masks.stderr[-2000:]
    sizes = [os.path.getsize(tmp_path / folder / 'sample_000.png') for folder in ('plain', 'masks')]
    assert sizes[0] > 5000 and sizes[1] > sizes[0]  # two more panels with the masks
    missing = subprocess.run([sys.executable, 'tools/browse_dataset.py', 'configs/r2o_tiny_cpu.py', '--cfg-options',
                              f'train_dataloader.dataset.data_root={tmp_path}/none'], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and missing.stderr.startswith(f'dataset error: {tmp_path}/none does not exist')
