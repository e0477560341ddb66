"""The pieces of the ImageNet tasks without a training run: the dataset on
ImageNet's folder layout and SimCLR's lists, the frozen-backbone check, the
k-NN monitor's sharding, the pre-flight's line for a missing ImageNet."""
import logging
import os
import types

import pytest
import torch
import torchvision

from r2o_mm.data.datasets import DatasetLayoutError
from r2o_mm.data.synthetic_scenes import CLASSIFICATION_SHAPES, write_imagenet_folder
from r2o_mm.transfer.hooks import BackboneLoadError, FrozenBackboneCheckHook


@pytest.fixture(scope='module')
def imagenet(tmp_path_factory):
    return write_imagenet_folder(str(tmp_path_factory.mktemp('in')), train_per_class=5, val_per_class=2,
                                 size=(40, 48), subsets=(('1percent.txt', 2),))


def test_imagenet_folder_numbers_sorted_classes_and_reads_a_simclr_list(imagenet, tmp_path):
    from r2o_mm.transfer.classification import ImageNetFolder
    full = ImageNetFolder(imagenet, split='train')
    assert len(full) == 5 * len(CLASSIFICATION_SHAPES)
    assert full.metainfo['classes'] == tuple(sorted(CLASSIFICATION_SHAPES))
    for item in full.load_data_list():  # label = index of the class folder in sorted order
        assert sorted(CLASSIFICATION_SHAPES)[item['gt_label']] == os.path.basename(os.path.dirname(item['img_path']))
    subset = ImageNetFolder(imagenet, split='train', subset_file=os.path.join(imagenet, '1percent.txt'))
    names = [os.path.basename(item['img_path']) for item in subset.load_data_list()]
    assert names == [f'{shape}_{i:04d}.JPEG' for shape in CLASSIFICATION_SHAPES for i in range(2)]
    # <class>/<image> entries work as well; an image the list names but the folder lacks is refused.
    listing = tmp_path / 'list.txt'
    listing.write_text('disc/disc_0003.JPEG\nring_0009.JPEG\n')
    with pytest.raises(DatasetLayoutError, match=r'1 images of .*list.txt are not under .*train, e.g. ring/ring_0009'):
        ImageNetFolder(imagenet, split='train', subset_file=str(listing))
    listing.write_text('disc/disc_0003.JPEG\n')
    assert [item['gt_label'] for item in ImageNetFolder(imagenet, 'train', str(listing)).load_data_list()] == [
        sorted(CLASSIFICATION_SHAPES).index('disc')]


def test_imagenet_folder_refuses_a_missing_folder_and_mismatched_val_classes(imagenet, tmp_path):
    from r2o_mm.transfer.classification import ImageNetFolder
    with pytest.raises(DatasetLayoutError, match=r'nowhere/train does not exist. Expected layout: <data_root>/train'):
        ImageNetFolder(str(tmp_path / 'nowhere'), split='train')
    root = tmp_path / 'copy'
    for split in ('train', 'val'):
        (root / split / 'a').mkdir(parents=True)
    (root / 'train' / 'b').mkdir()
    with pytest.raises(DatasetLayoutError, match='are not those of'):
        ImageNetFolder(str(root), split='val')


def _runner(model, tmp_path):
    return types.SimpleNamespace(model=model, logger=logging.getLogger('test'), work_dir=str(tmp_path))


def test_frozen_backbone_check_passes_unchanged_and_names_what_moved(tmp_path, caplog):
    model = torch.nn.Module()
    model.backbone = torchvision.models.resnet18()
    model.backbone.fc = torch.nn.Identity()
    export = tmp_path / 'backbone.pth'
    torch.save(model.backbone.state_dict(), export)
    hook = FrozenBackboneCheckHook(checkpoint=str(export))
    with caplog.at_level(logging.INFO):
        hook.after_train(_runner(model, tmp_path))
    assert f'all {len(model.backbone.state_dict())} tensors' in caplog.text
    model.backbone.train()(torch.randn(2, 3, 32, 32))  # BN in train mode: running statistics move
    with pytest.raises(BackboneLoadError, match=r'changed during training: .*bn1.running_mean'):
        hook.after_train(_runner(model, tmp_path))


def test_knn_monitor_shards_gather_back_to_the_one_process_features(monkeypatch, imagenet):
    from r2o_mm.engine import health
    from r2o_mm.evaluation.knn import labelled_folder
    from r2o_mm.models.networks import ResNetEncoder
    torch.manual_seed(0)
    encoder = ResNetEncoder(18).eval()
    samples = labelled_folder(os.path.join(imagenet, 'val'))[0]
    hook = health.KnnMonitorHook(None, None, size=32, batch=5)
    alone = hook._gathered(encoder, samples, 'cpu')
    shares = []
    for rank in (0, 1, 2):  # three ranks, 12 images: 4 each, interleaved
        monkeypatch.setattr(health, 'get_rank', lambda rank=rank: rank)
        monkeypatch.setattr(health, 'get_world_size', lambda: 3)
        shares.append(hook._embed(encoder, samples, 'cpu'))
    assert [share[0] for share in shares] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    monkeypatch.setattr(health, 'all_gather_object', lambda share: list(reversed(shares)))  # any arrival order
    features, labels = hook._gathered(encoder, samples, 'cpu')
    assert torch.equal(labels, alone[1]) and labels.tolist() == [label for _, label in samples]
    assert torch.allclose(features, alone[0], atol=1e-5)


def test_knn_monitor_without_folders_says_how_to_turn_it_on(caplog):
    from r2o_mm.engine.health import KnnMonitorHook
    hook = KnnMonitorHook('data/no/train', 'data/no/val')
    runner = types.SimpleNamespace(logger=logging.getLogger('test'), epoch=0)
    with caplog.at_level(logging.INFO):
        hook.before_train(runner)
    assert 'KnnMonitorHook is off: labelled folder data/no/train not found' in caplog.text
    assert hook.train is None


def test_preflight_names_the_missing_imagenet_folder_and_how_to_make_it(tmp_path, monkeypatch):
    from r2o_mm.transfer.preflight import preflight
    checkpoint = tmp_path / 'resnet.pth'
    torch.save(torchvision.models.resnet18().state_dict(), checkpoint)
    monkeypatch.chdir(tmp_path)  # data/imagenet/ does not exist here
    lines = []
    status, _ = preflight(str(checkpoint), ['imagenet_linear', 'imagenet_semi_1pct'], 1, say=lines.append)
    assert status == 2
    assert any(line.startswith('imagenet_linear: DatasetLayoutError: data/imagenet/train does not exist')
               and 'ILSVRC2012_img_train.tar' in line for line in lines), lines
    assert any(line.startswith('imagenet_semi_1pct:') for line in lines)
