"""Exporting the online encoder and checking it downstream (docs/method.md section 8)."""
import pickle

import pytest
import torch
import torchvision
from mmengine.registry import MODELS

import r2o_mm  # noqa: F401
from r2o_mm.models.r2o import R2O
from r2o_mm.transfer.export import ExportError, export_backbone, extract_backbone
from r2o_mm.transfer.hooks import BackboneLoadError, check_backbone_loaded


@pytest.fixture(scope='module')
def pretrain_checkpoint(tmp_path_factory):
    """A checkpoint shaped like the tiny pretraining config's (ResNet-18)."""
    torch.manual_seed(0)
    model = R2O(depth=18, projector_hidden=32, projection_dim=16, predictor_hidden=32)
    with torch.no_grad():
        for p in model.online_encoder.parameters():
            p.add_(torch.randn_like(p))  # online differs from target
    path = tmp_path_factory.mktemp('ckpt') / 'epoch_2.pth'
    torch.save({'meta': {'epoch': 2}, 'state_dict': model.state_dict()}, path)
    return path, model


def test_export_loads_strictly_into_torchvision(pretrain_checkpoint, tmp_path):
    path, model = pretrain_checkpoint
    state = export_backbone(str(path), str(tmp_path / 'backbone.pth'))
    reloaded = torch.load(tmp_path / 'backbone.pth', weights_only=True)  # tensor-only file
    resnet = torchvision.models.resnet18()
    result = resnet.load_state_dict(reloaded, strict=False)
    assert sorted(result.missing_keys) == ['fc.bias', 'fc.weight'] and not result.unexpected_keys
    # It is the *online* encoder, not the target.
    assert torch.equal(resnet.conv1.weight, model.online_encoder.conv1.weight)
    assert not torch.equal(resnet.conv1.weight, model.target_encoder.conv1.weight)
    assert set(state) == set(reloaded)


@pytest.mark.parametrize('scope,kind', [('mmdet', 'mmdet.ResNet'), ('mmseg', 'mmseg.ResNet')])
def test_export_passes_the_load_check_in_mmdet_and_mmseg(pretrain_checkpoint, tmp_path, scope, kind):
    path, _ = pretrain_checkpoint
    out = tmp_path / 'backbone_mmcv.pth'
    state = export_backbone(str(path), str(out), fmt='mmcv')
    backbone = MODELS.build(dict(type=kind, depth=18, style='pytorch',
                                 init_cfg=dict(type='Pretrained', checkpoint=str(out))))
    backbone.init_weights()
    assert check_backbone_loaded(backbone, state) == len(state)


def test_load_check_names_a_missing_layer(pretrain_checkpoint, tmp_path):
    path, _ = pretrain_checkpoint
    state = export_backbone(str(path), str(tmp_path / 'backbone.pth'))
    partial = {k: v for k, v in state.items() if not k.startswith('layer4.1.')}
    torch.save(partial, tmp_path / 'partial.pth')
    backbone = MODELS.build(dict(type='mmdet.ResNet', depth=18, style='pytorch',
                                 init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'partial.pth'))))
    backbone.init_weights()  # mmengine only warns here
    with pytest.raises(BackboneLoadError, match=r'layer4\.1\.conv1\.weight'):
        check_backbone_loaded(backbone, state)


def test_authors_training_checkpoint_layout_is_imported():
    resnet = torchvision.models.resnet18()
    sequential = torch.nn.Sequential(*list(resnet.children())[:-2])
    authors = {f'module.online_network.encoder.{k}': v for k, v in sequential.state_dict().items()}
    authors['module.online_network.projector.net.0.weight'] = torch.zeros(2, 2)
    authors['module.target_network.encoder.0.weight'] = torch.zeros(1)
    state = extract_backbone({'model': authors})
    expected = {k: v for k, v in resnet.state_dict().items() if not k.startswith('fc.')}
    assert set(state) == set(expected)
    assert all(torch.equal(state[k], expected[k]) for k in expected)


def test_torchvision_release_with_fc_is_imported():
    resnet = torchvision.models.resnet18()
    state = extract_backbone(resnet.state_dict())
    assert 'fc.weight' not in state and len(state) == len(resnet.state_dict()) - 2


def test_unmappable_input_is_refused_with_its_keys():
    state = torchvision.models.resnet18().state_dict()
    state['head.classifier.weight'] = torch.zeros(3)
    with pytest.raises(ExportError, match='head.classifier.weight'):
        extract_backbone(state)
    incomplete = {k: v for k, v in torchvision.models.resnet18().state_dict().items()
                  if not k.startswith('layer3.')}
    with pytest.raises(ExportError, match='layer3'):
        extract_backbone(incomplete)


def test_detectron2_format_renames_keys(pretrain_checkpoint, tmp_path):
    path, model = pretrain_checkpoint
    export_backbone(str(path), str(tmp_path / 'd2.pkl'), fmt='detectron2')
    with open(tmp_path / 'd2.pkl', 'rb') as handle:
        d2 = pickle.load(handle)
    assert d2['matching_heuristics'] is True
    weights = d2['model']
    assert 'stem.conv1.weight' in weights and 'stem.conv1.norm.running_mean' in weights
    assert 'res2.0.conv1.norm.weight' in weights and 'res5.1.conv2.weight' in weights
    assert 'res3.0.shortcut.weight' in weights and 'res3.0.shortcut.norm.bias' in weights
    assert (weights['res5.1.conv2.weight'] == model.online_encoder.layer4[1].conv2.weight.detach().numpy()).all()
    assert not any(k.startswith('layer') or '.bn' in k for k in weights)
