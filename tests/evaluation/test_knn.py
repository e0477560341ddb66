"""k-NN: exact accuracies on synthetic features; feature extraction on a tiny ResNet."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from r2o_mm.evaluation.knn import extract_features, knn_predict, labelled_folder, topk_accuracy
from r2o_mm.models.networks import ResNetEncoder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_separated_classes_are_classified_exactly():
    gen = torch.Generator().manual_seed(0)
    directions = torch.eye(8)[:4]
    train_labels = torch.arange(4).repeat_interleave(10)
    train = F.normalize(directions[train_labels] + 0.05 * torch.randn(40, 8, generator=gen), dim=1)
    val_labels = torch.tensor([3, 0, 2, 1, 1])
    val = F.normalize(directions[val_labels] + 0.05 * torch.randn(5, 8, generator=gen), dim=1)
    scores = knn_predict(train, train_labels, val, num_classes=4, k=5)
    assert scores.argmax(1).tolist() == val_labels.tolist()
    assert topk_accuracy(scores, val_labels) == {'top1': 100.0}  # top5 needs 5 classes


def test_temperature_weighting_by_hand():
    train = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8]])
    labels = torch.tensor([0, 1, 1])
    query = torch.tensor([[1.0, 0.0]])
    # T=1: class 0 gets e^1 = 2.718, class 1 gets e^0.8 + e^0.6 = 4.048 -> class 1.
    scores = knn_predict(train, labels, query, num_classes=2, k=3, temperature=1.0)
    assert torch.allclose(scores, torch.tensor([[np.e, np.exp(0.8) + np.exp(0.6)]], dtype=torch.float32))
    # T=0.07: the nearest neighbour dominates -> class 0.
    assert knn_predict(train, labels, query, 2, k=3, temperature=0.07).argmax().item() == 0


def test_topk_accuracy_counts():
    scores = torch.tensor([[0.1, 0.5, 0.2, 0.0, 0.0, 0.3],
                           [0.9, 0.0, 0.0, 0.0, 0.0, 0.1],
                           [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]])
    labels = torch.tensor([1, 5, 0])
    # row 0 top1; row 1 rank 2; row 2 rank 6 (outside top5).
    assert topk_accuracy(scores, labels) == {'top1': pytest.approx(100 / 3), 'top5': pytest.approx(200 / 3)}


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('knn')
    rng = np.random.default_rng(0)
    for split, count in (('train', 4), ('val', 2)):
        for cls, colour in (('red', (200, 30, 30)), ('blue', (30, 30, 200))):
            os.makedirs(root / split / cls)
            for i in range(count):
                image = np.clip(np.array(colour) + rng.integers(-20, 20, (40, 50, 3)), 0, 255)
                Image.fromarray(image.astype(np.uint8)).save(root / split / cls / f'{i}.png')
    return root


def test_feature_extraction_on_a_tiny_resnet(folders):
    samples, classes = labelled_folder(str(folders / 'train'))
    assert classes == ['blue', 'red'] and len(samples) == 8
    features, labels = extract_features(ResNetEncoder(18).eval(), samples, batch_size=3, workers=0)
    assert features.shape == (8, 512) and labels.tolist() == [0] * 4 + [1] * 4
    assert torch.allclose(features.norm(dim=1), torch.ones(8), atol=1e-5)


def test_eval_knn_tool(folders, tmp_path):
    import torchvision
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / 'r18.pth')
    classes = tmp_path / 'classes.txt'
    classes.write_text('red\nblue\n')
    result = subprocess.run([sys.executable, 'tools/eval_knn.py', str(tmp_path / 'r18.pth'),
                             '--train', str(folders / 'train'), '--val', str(folders / 'val'),
                             '--classes', str(classes), '--k', '3', '--workers', '0',
                             '--out', str(tmp_path / 'out')],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / 'out' / 'knn_metrics.json').read_text())
    assert metrics['num_train'] == 8 and metrics['num_val'] == 4
    # Solid colours are trivially separable even for random features.
    assert metrics['metrics']['top1'] == 100.0
