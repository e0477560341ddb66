"""tools/eval_masks.py scores any encoder's masks on COCO-format objects."""
import json
import os
import subprocess
import sys

import torch

from r2o_mm.data.synthetic_scenes import write_synthetic_datasets
from r2o_mm.models.r2o import R2O

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_eval_masks_on_random_and_checkpoint(tmp_path):
    coco = write_synthetic_datasets(str(tmp_path / 'scenes'), num_train=1, num_val=4, size=(64, 80),
                                    layouts=('coco',))['coco']
    ann, images = f'{coco}/annotations/instances_val2017.json', f'{coco}/val2017'
    torch.save({'state_dict': R2O(depth=18, projector_hidden=16, projection_dim=8, predictor_hidden=16).state_dict()},
               tmp_path / 'epoch_1.pth')
    for source, out in (('random', 'random'), (str(tmp_path / 'epoch_1.pth'), 'checkpoint')):
        result = subprocess.run([sys.executable, 'tools/eval_masks.py', source, '--depth', '18', '--ann', ann,
                                 '--images', images, '--k', '4', '2', '--size', '64', '--batch', '2',
                                 '--out', str(tmp_path / out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        scores = json.loads((tmp_path / out / 'eval_masks.json').read_text())
        assert scores['images'] == 4 and set(scores['mBO']) == {'4', '2'}
        assert all(0 < v <= 100 for v in scores['mBO'].values())
        assert (tmp_path / out / 'mask_examples.png').stat().st_size > 1000
    missing = subprocess.run([sys.executable, 'tools/eval_masks.py', 'random', '--ann', str(tmp_path / 'none.json'),
                              '--images', images], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and 'none.json does not exist' in missing.stderr
