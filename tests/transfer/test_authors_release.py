"""The authors' released weights in their three formats (docs/method.md section 5 and
issue 12): files built here to the exact layouts, pickled the way numpy 1.x
pickles, exported weights-only; exports equal the encoder numerically; bad
files fail in one line."""
import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import torchvision
from mmengine.registry import MODELS

import r2o_mm  # noqa: F401  (allow-list)
from r2o_mm.models.r2o import R2O
from r2o_mm.transfer.export import export_backbone, to_detectron2
from r2o_mm.utils.checkpoint import CheckpointReadError, file_sha256, read_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUMPY2, NUMPY1 = b'numpy._core.multiarray', b'numpy.core.multiarray'


def save_as_numpy1(obj, path):
    """torch.save, then name numpy's internals as numpy 1.x did
    (``numpy.core.multiarray``) in the pickle: protocol 2's GLOBAL opcodes
    are newline-terminated text, so the rename is exact."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as target:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith('data.pkl'):
                assert NUMPY2 in data
                data = data.replace(NUMPY2, NUMPY1)
            target.writestr(name, data)


def pickle_as_numpy1(obj, path):
    data = pickle.dumps(obj, protocol=2).replace(NUMPY2, NUMPY1)
    assert NUMPY1 + b'\n_reconstruct' in data
    with open(path, 'wb') as handle:
        handle.write(data)


def authors_training_checkpoint(resnet):
    """{'epoch', 'model': DDP state_dict, 'optimizer': LARS state with numpy
    float64 lrs, 'amp': apex loss-scaler dict}, as their trainer saves it."""
    encoder = torch.nn.Sequential(*list(resnet.children())[:-2]).state_dict()
    model = {f'module.online_network.encoder.{k}': v for k, v in encoder.items()}
    model.update({f'module.target_network.encoder.{k}': v + 1 for k, v in encoder.items()})
    model.update({'module.online_network.projector.net.0.weight': torch.randn(8, 512),
                  'module.online_network.projector.net.1.running_mean': torch.zeros(8),
                  'module.predictor.net.0.weight': torch.randn(8, 4)})
    optimizer = {'state': {0: {'momentum_buffer': torch.zeros(3)}},
                 'param_groups': [{'lr': np.float64(4.8), 'momentum': 0.9, 'weight_decay': 1e-6,
                                   'eta': 0.001, 'params': [0, 1]},
                                  {'lr': np.float64(0.6), 'momentum': 0.9, 'weight_decay': 0.0,
                                   'eta': 0.001, 'params': [2]}]}
    return {'epoch': 300, 'model': model, 'optimizer': optimizer,
            'amp': {'loss_scaler0': {'loss_scale': 65536.0, 'unskipped': 0}}}


@pytest.fixture(scope='module')
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18()


def expected_state(resnet):
    return {k: v for k, v in resnet.state_dict().items() if not k.startswith('fc.')}


def assert_same(state, expected):
    assert set(state) == set(expected)
    assert all(torch.equal(state[k], expected[k]) for k in expected)


def test_original_training_checkpoint_exports_weights_only(resnet, tmp_path):
    path = tmp_path / 'r2o_original.pth'
    save_as_numpy1(authors_training_checkpoint(resnet), path)
    # Exactly what stopped the export before: numpy 1.x globals under weights-only loading.
    loaded = read_checkpoint(str(path))
    assert type(loaded['optimizer']['param_groups'][0]['lr']) is np.float64
    assert_same(export_backbone(str(path), str(tmp_path / 'backbone.pth')), expected_state(resnet))


def test_torchvision_and_detectron2_formats_export(resnet, tmp_path):
    torch.save(resnet.state_dict(), tmp_path / 'r2o_torchvision.pth')
    assert_same(export_backbone(str(tmp_path / 'r2o_torchvision.pth'), str(tmp_path / 'a.pth')),
                expected_state(resnet))
    # detectron2's converter writes numpy arrays and no num_batches_tracked.
    d2 = to_detectron2(expected_state(resnet))
    d2['model'] = {k: v for k, v in d2['model'].items() if not k.endswith('num_batches_tracked')}
    d2['__author__'] = 'torchvision'
    pickle_as_numpy1(d2, tmp_path / 'r2o_detectron2.pkl')
    assert_same(export_backbone(str(tmp_path / 'r2o_detectron2.pkl'), str(tmp_path / 'b.pth')),
                expected_state(resnet))


def test_export_tool_prints_sha256(resnet, tmp_path):
    path = tmp_path / 'r2o_original.pth'
    save_as_numpy1(authors_training_checkpoint(resnet), path)
    result = subprocess.run([sys.executable, 'tools/export_backbone.py', str(path), str(tmp_path / 'out.pth')],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f'sha256 {file_sha256(str(path))}  {path}' in result.stdout


class RunsCode:
    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def bad_files(tmp_path, resnet):
    good = tmp_path / 'good.pth'
    torch.save(resnet.state_dict(), good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:4000])
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(bytes(range(256)) * 8)
    payload = RunsCode()
    payload.marker = tmp_path / 'ran'
    evil = tmp_path / 'evil.pth'
    torch.save({'model': resnet.state_dict(), 'meta': payload}, evil)
    evil_pkl = tmp_path / 'evil.pkl'
    evil_pkl.write_bytes(pickle.dumps({'model': payload}, protocol=2))
    return {'missing': (tmp_path / 'missing.pth', 'no such file'),
            'truncated': (truncated, 'truncated or corrupt'),
            'corrupt': (corrupt, 'not a readable checkpoint'),
            'code': (evil, 'refused'), 'code_pkl': (evil_pkl, 'refused')}, payload.marker


def test_bad_checkpoints_fail_in_one_line_without_running_code(resnet, tmp_path, tool_main):
    """The export tool's command once (the pickled-code file), every file through its main() in process."""
    files, marker = bad_files(tmp_path, resnet)
    for name, (path, reason) in files.items():
        with pytest.raises(CheckpointReadError) as error:
            read_checkpoint(str(path))
        message = str(error.value)
        assert message.startswith(f'{path}: ') and reason in message and '\n' not in message, name
        code, lines = tool_main('export_backbone.py', [str(path), str(tmp_path / 'o.pth')])
        assert code != 0 and 'Traceback' not in '\n'.join(lines), name
        assert lines[-1] == f'cannot export: {message}', name
        if name == 'code':
            result = subprocess.run([sys.executable, 'tools/export_backbone.py', str(path), str(tmp_path / 'o.pth')],
                                    cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert result.returncode != 0 and 'Traceback' not in result.stderr, name
            assert result.stderr.strip().splitlines()[-1] == f'cannot export: {message}', name
    assert 'posix.system' in str(pytest.raises(CheckpointReadError, read_checkpoint, str(files['code'][0])).value)
    assert not marker.exists()


def test_transfer_sh_usage_and_bad_checkpoint_stop_before_any_task(resnet, tmp_path):
    env = dict(os.environ, R2O_SKIP_SETUP='1', PYTHON=sys.executable, WORK_DIR=str(tmp_path / 'out'))
    usage = subprocess.run(['tools/transfer.sh'], cwd=ROOT, capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and usage.stderr.startswith('usage: ')
    files, _ = bad_files(tmp_path, resnet)
    for path, reason in (files['missing'], files['truncated']):
        result = subprocess.run(['tools/transfer.sh', str(path), '1', 'voc'], cwd=ROOT, capture_output=True,
                                text=True, env=env, timeout=300)
        assert result.returncode != 0 and '=== voc' not in result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0], result.stderr


def test_exports_are_numerically_the_encoder(tmp_path):
    """The exported weights in torchvision's ResNet-50, mmdet's ResNet and
    mmseg's plain ResNet at output stride 16 give the online encoder's
    features (layer4 where the architectures coincide, layer3 for mmseg)."""
    torch.manual_seed(0)
    model = R2O(depth=50, projector_hidden=16, projection_dim=8, predictor_hidden=16)
    with torch.no_grad():  # trained-looking BN statistics
        for name, buffer in model.online_encoder.named_buffers():
            if name.endswith('running_mean'):
                buffer.normal_(0, 0.1)
            elif name.endswith('running_var'):
                buffer.uniform_(0.5, 1.5)
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'epoch_1.pth')
    state = export_backbone(str(tmp_path / 'epoch_1.pth'), str(tmp_path / 'backbone.pth'))
    encoder = model.online_encoder.eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        c4, c5 = encoder.forward_c4(images), encoder(images)
        tv = torchvision.models.resnet50()
        tv.load_state_dict(state, strict=False)
        tv.eval()
        x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(images))))
        tv_c5 = tv.layer4(tv.layer3(tv.layer2(tv.layer1(x))))
        mmdet = MODELS.build(dict(type='mmdet.ResNet', depth=50, out_indices=(2, 3), style='pytorch'))
        mmseg = MODELS.build(dict(type='mmseg.ResNet', depth=50, out_indices=(2, 3), style='pytorch',
                                  strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), contract_dilation=True))
        outputs = {}
        for name, backbone in (('mmdet', mmdet), ('mmseg', mmseg)):
            backbone.load_state_dict(state, strict=True)
            backbone.eval()  # mmdet/mmseg's train() returns None
            outputs[name] = backbone(images)
    assert torch.allclose(tv_c5, c5, rtol=1e-5, atol=1e-5)
    assert torch.allclose(outputs['mmdet'][1], c5, rtol=1e-5, atol=1e-5)
    assert torch.allclose(outputs['mmdet'][0], c4, rtol=1e-5, atol=1e-5)
    assert torch.allclose(outputs['mmseg'][0], c4, rtol=1e-5, atol=1e-5)
    assert outputs['mmseg'][1].shape[-1] == 2 * c5.shape[-1]  # output stride 16: layer4 is dilated
