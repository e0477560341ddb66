"""Dense linear probe: mIoU by hand, an oracle encoder, the tool."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from r2o_mm.data.synthetic_scenes import write_synthetic_datasets
from r2o_mm.evaluation.linear_probe import linear_probe, miou, read_voc_split

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    return write_synthetic_datasets(str(tmp_path_factory.mktemp('scenes')), num_train=8, num_val=4,
                                    size=(64, 80), layouts=('voc',))['voc']


def test_miou_by_hand():
    labels = torch.tensor([[0, 0, 1, 255]])
    prediction = torch.tensor([[0, 1, 1, 1]])
    # class 0: 1 / 2, class 1: 1 / 2 (the ignored pixel does not count), class 2: absent.
    assert miou(prediction, labels, num_classes=3) == pytest.approx(50.0)


class LabelOracle(torch.nn.Module):
    """'Features' that are the one-hot labels, pooled to the encoder's grid:
    a probe on them must score far above one on constant features."""

    def __init__(self, labels_by_image):
        super().__init__()
        self.labels, self.calls = labels_by_image, 0
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        batch = self.labels[self.calls:self.calls + len(images)]
        self.calls += len(images)
        onehot = F.one_hot(batch.clamp(max=20), 21).permute(0, 3, 1, 2).float()
        return F.adaptive_avg_pool2d(onehot, 16)


def test_probe_reads_an_oracle_encoder(voc):
    train_labels, val_labels = read_voc_split(voc, 'train', 64)[1], read_voc_split(voc, 'val', 64)[1]
    oracle = LabelOracle(torch.cat([train_labels, val_labels]))
    runs = linear_probe(oracle, voc, seeds=range(2), size=64, epochs=30)
    assert [r['seed'] for r in runs] == [0, 1]
    assert all(r['mIoU'] > 60 for r in runs), runs


def test_probe_tool_writes_seeds_and_interval(voc, tmp_path):
    import torchvision
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / 'r18.pth')
    result = subprocess.run([sys.executable, 'tools/eval_linear_probe.py', str(tmp_path / 'r18.pth'), '--data', voc,
                             '--seeds', '3', '--size', '64', '--epochs', '2', '--out', str(tmp_path / 'out')],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / 'out' / 'probe_metrics.json').read_text())
    assert metrics['benchmark'] == 'voc_probe' and [r['seed'] for r in metrics['runs']] == [0, 1, 2]
    summary = metrics['summary']
    assert summary['n'] == 3 and summary['ci_low'] <= summary['mean'] <= summary['ci_high']
    assert 'linear probe mIoU' in result.stdout
    missing = subprocess.run([sys.executable, 'tools/eval_linear_probe.py', str(tmp_path / 'r18.pth'), '--data',
                              str(tmp_path / 'nowhere')], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and 'ImageSets/Segmentation/train.txt does not exist' in missing.stderr
