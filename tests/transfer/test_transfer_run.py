"""Each transfer config, shrunk, trains and tests on the generated datasets
through the real mmdet/mmseg code, from a real tiny pretraining checkpoint."""
import json
import os
import subprocess
import sys

import pytest

from r2o_mm.data.sample_images import write_photo_folder
from r2o_mm.data.synthetic_scenes import write_synthetic_datasets
from r2o_mm.transfer.small import as_cli, small_transfer_options
from r2o_mm.utils.checkpoint import file_sha256

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(args, env=None, check=True):
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900,
                            env=dict(os.environ, **(env or {})))
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope='module')
def scenes(tmp_path_factory):
    return write_synthetic_datasets(str(tmp_path_factory.mktemp('scenes')), num_train=6, num_val=3,
                                    size=(96, 128))


@pytest.fixture(scope='module')
def backbone(tmp_path_factory):
    """Pretrain the tiny config for one epoch, then export its online encoder."""
    work = tmp_path_factory.mktemp('pretrain')
    photos = work / 'photos'
    write_photo_folder(str(photos), num_images=8, max_side=96)
    run([sys.executable, 'tools/train.py', 'configs/r2o_tiny_cpu.py', '--work-dir', str(work),
         '--cfg-options', f'train_dataloader.dataset.data_root={photos}', 'train_cfg.max_epochs=1'])
    out = work / 'backbone.pth'
    run([sys.executable, 'tools/export_backbone.py', str(work / 'epoch_1.pth'), str(out)])
    return out


# voc runs through tools/transfer.sh below; voc and coco_1x also in the
# rehearsal of tools/gpu_check.sh (tests/tools/test_gpu_check.py).
@pytest.mark.parametrize('task,root_key,metric', [
    ('cityscapes', 'cityscapes', 'mIoU'),
    ('coco_mocov2_1x', 'coco', 'coco/bbox_mAP'),
])
def test_transfer_task_trains_tests_and_writes_metrics(task, root_key, metric, scenes, backbone, tmp_path):
    options = small_transfer_options(task, scenes[root_key], iterations=2, image=96)
    result = run([sys.executable, 'tools/transfer_run.py', task, '--backbone', str(backbone),
                  '--work-dir', str(tmp_path), '--cfg-options', *as_cli(options)])
    assert 'backbone load check passed' in result.stdout + result.stderr
    with open(tmp_path / 'metrics.json') as handle:
        metrics = json.load(handle)
    assert metrics['finished'] is True and metrics['task'] == task
    assert metrics['world_size'] == 1 and metrics['global_batch'] == 2
    assert metrics['protocol'] and metrics['mmdet'] == '3.3.0' and metrics['mmseg'] == '1.2.2'
    # The shrunk run records how it differs from the released protocol.
    assert metrics['reference_protocol'] == task
    found = '\n'.join(metrics['protocol_deviations'])
    assert 'backbone: ResNet-18, pytorch style (protocol: ResNet-50, pytorch style)' in found
    assert 'global batch of this run: 2' in found
    value = metrics['metrics'][metric]
    assert 0.0 <= value <= 100.0
    if task.startswith('coco'):
        assert 'precise BN: statistics of' in result.stdout + result.stderr


def test_missing_dataset_folder_names_path_and_converter(backbone, tmp_path, tool_main):
    """In process (conftest.tool_main: the same main()): the run stops before any runner exists."""
    code, lines = tool_main('transfer_run.py', [
        'voc', '--backbone', str(backbone), '--work-dir', str(tmp_path), '--cfg-options',
        f'train_dataloader.dataset.datasets.0.data_root={tmp_path}/VOC2012',
        f'train_dataloader.dataset.datasets.1.data_root={tmp_path}/VOC2012',
        f'test_dataloader.dataset.data_root={tmp_path}/VOC2012'])
    assert code == 1
    assert lines[-1].startswith(f'voc: {tmp_path}/VOC2012/ImageSets/Segmentation/train.txt does not exist')
    assert 'voc_aug.py' in lines[-1]
    city = run([sys.executable, 'tools/transfer_run.py', 'cityscapes', '--backbone', str(backbone),
                '--work-dir', str(tmp_path)], check=False)
    assert 'data/cityscapes/leftImg8bit/train does not exist' in city.stderr
    assert 'cityscapes.py' in city.stderr


def perturbed_copy(checkpoint, out):
    """The same pretraining checkpoint with one encoder weight changed."""
    import torch
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    state['state_dict']['online_encoder.conv1.weight'][0, 0, 0, 0] += 1.0
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    return out


def test_transfer_sh_exports_once_continues_after_a_failure_and_resumes(scenes, backbone, tmp_path):
    checkpoint = backbone.parent / 'epoch_1.pth'
    options = ' '.join(as_cli(small_transfer_options('voc', scenes['voc'], iterations=1, image=96)))
    env = dict(R2O_SKIP_SETUP='1', PYTHON=sys.executable, WORK_DIR=str(tmp_path), CFG_OPTIONS=options)
    # cityscapes fails its pre-flight (the VOC options point its data root at
    # the VOC folder) in one line; voc runs after it.
    result = run(['tools/transfer.sh', str(checkpoint), '1', 'cityscapes', 'voc'], env=env, check=False)
    assert result.returncode == 1
    assert 'cityscapes: FAILED in the pre-flight' in result.stdout and 'voc: ok' in result.stdout
    assert 'Traceback' not in result.stderr
    assert (tmp_path / 'backbone.pth').exists() and (tmp_path / 'cityscapes' / 'FAILED').exists()
    assert (tmp_path / 'voc' / 'transfer.log').read_text().count('backbone load check passed') == 1
    metrics = json.loads((tmp_path / 'voc' / 'metrics.json').read_text())
    assert metrics['finished'] is True
    assert metrics['checkpoint_sha256'] == file_sha256(str(checkpoint))
    again = run(['tools/transfer.sh', str(checkpoint), '1', 'voc'], env=env)
    assert 'voc: done earlier' in again.stdout
    # The checkpoint replaced in place: the earlier result is not taken for
    # this one, nothing is exported over it, and one line says what differs.
    replaced = perturbed_copy(checkpoint, tmp_path / 'replaced' / 'epoch_1.pth')
    before = (tmp_path / 'backbone.pth').read_bytes()
    conflict = run(['tools/transfer.sh', str(replaced), '1', 'voc'], env=env, check=False)
    assert conflict.returncode == 1 and conflict.stdout == ''
    assert conflict.stderr.count('\n') == 1, conflict.stderr
    assert 'voc/metrics.json exists but it was trained from checkpoint' in conflict.stderr
    assert f'not this one (sha256 {file_sha256(str(replaced))[:12]}' in conflict.stderr
    assert (tmp_path / 'backbone.pth').read_bytes() == before
    # Other options for the same checkpoint: also one line.
    changed = run(['tools/transfer.sh', str(checkpoint), '1', 'voc'],
                  env=dict(env, CFG_OPTIONS=options + ' model.auxiliary_head.loss_decode.loss_weight=0.3'),
                  check=False)
    assert changed.returncode == 1 and 'config or --cfg-options differ' in changed.stderr


def test_table4_loop_keys_transfer_runs_by_checkpoint_content(scenes, backbone, tmp_path):
    """Several variants' epoch_200.pth (same file name) each get their own
    work dir and their own export; a checkpoint replaced in place gets a new one."""
    from r2o_mm.transfer.preflight import preflight
    original = backbone.parent / 'epoch_1.pth'
    variants = {'r2o_full': tmp_path / 'r2o_full' / 'epoch_200.pth',
                'r2o_no_slic': tmp_path / 'r2o_no_slic' / 'epoch_200.pth'}
    variants['r2o_full'].parent.mkdir()
    variants['r2o_full'].write_bytes(original.read_bytes())
    perturbed_copy(original, variants['r2o_no_slic'])
    options = small_transfer_options('voc', scenes['voc'], iterations=1, image=96)
    lines = []
    work_dirs = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for name, path in variants.items():
            status, plan = preflight(str(path), ['voc'], gpus=1, cfg_options=options, say=lines.append)
            assert status == 0 and plan[1] == ('RUN', 'voc'), lines
            work_dirs[name] = plan[0][1]
            sha = file_sha256(str(path))
            assert work_dirs[name] == f'work_dirs/transfer/{name}/epoch_200-{sha[:8]}'
            record = json.loads((tmp_path / work_dirs[name] / 'backbone.pth.source.json').read_text())
            assert record['source_sha256'] == sha and record['source'] == str(path)
        assert len(set(work_dirs.values())) == 2
        # Replaced in place: a new work dir, a new export.
        perturbed_copy(variants['r2o_full'], variants['r2o_full'])
        status, plan = preflight(str(variants['r2o_full']), ['voc'], gpus=1, cfg_options=options,
                                 say=lines.append)
        assert status == 0 and plan[0][1] not in work_dirs.values()
        # An export already made from this very checkpoint is kept.
        status, _ = preflight(str(variants['r2o_full']), ['voc'], gpus=1, cfg_options=options,
                              say=lines.append)
        assert status == 0 and 'is the export of' in lines[-1]
        # Problems, one line each: an unknown task, a missing dataset.
        status, _ = preflight(str(variants['r2o_full']), ['vooc'], gpus=1, say=lines.append)
        assert status == 2 and lines[-1].startswith('unknown transfer task vooc; choose from coco_1x')
        status, plan = preflight(str(variants['r2o_full']), ['cityscapes', 'voc'], gpus=1,
                                 cfg_options=None, say=lines.append)
        # Every task refused: nothing can run (status 2), one line per problem, all of a task's at once
        # (no data, and the ResNet-18 checkpoint for the ResNet-50 protocols).
        assert status == 2 and plan == []
        assert lines[-4].startswith('cityscapes: DatasetLayoutError: data/cityscapes/leftImg8bit/train does not exist')
        assert lines[-3].startswith(f"cityscapes: {variants['r2o_full']} holds a ResNet-18; the cityscapes protocol "
                                    'is a ResNet-50')
        assert lines[-2].startswith('voc: DatasetLayoutError: ')
        assert lines[-1].startswith(f"voc: {variants['r2o_full']} holds a ResNet-18; the voc protocol is a ResNet-50")
    finally:
        os.chdir(cwd)


def test_transfer_sh_on_two_nodes(scenes, backbone, tmp_path, free_port):
    """tools/transfer.sh started twice on this machine as two nodes of one
    gloo process each, into one shared WORK_DIR: both export, both train,
    rank 0 records a world size of 2 (SyncBN becomes BN on CPU, recorded)."""
    checkpoint = backbone.parent / 'epoch_1.pth'
    options = ' '.join(as_cli(small_transfer_options('voc', scenes['voc'], iterations=2, image=96)))
    env = dict(os.environ, R2O_SKIP_SETUP='1', PYTHON=sys.executable, WORK_DIR=str(tmp_path), CFG_OPTIONS=options,
               NNODES='2', MASTER_ADDR='127.0.0.1', PORT=str(free_port()), OMP_NUM_THREADS='1',
               R2O_NODE_TIMEOUT='120')
    nodes = [subprocess.Popen(['tools/transfer.sh', str(checkpoint), '1', 'voc'], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=dict(env, NODE_RANK=str(rank)))
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert all('voc: ok' in output for output in outputs)
    metrics = json.loads((tmp_path / 'voc' / 'metrics.json').read_text())
    assert metrics['world_size'] == 2 and metrics['global_batch'] == 4
    assert 'norm: BN in each CPU process (protocol: SyncBN across processes)' in metrics['protocol_deviations']
    assert (tmp_path / 'voc' / 'transfer_node1.log').exists()
    assert 'weights agree across 2 rank(s)' in (tmp_path / 'voc' / 'transfer.log').read_text()
