"""Bad input ends in one line with a non-zero exit, before any training:
runs that would train nothing or overwrite another run, values the
pre-flight must build to catch, data that does not decode, a work dir that
cannot be written, a checkpoint that does not fit the transfer protocol, a
GPU check without a GPU, a SLIC cache of nothing."""
import os
import subprocess
import sys

import pytest
import torch

from r2o_mm.data.sample_images import write_photo_folder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, 'tools', 'train.py')
DIST = os.path.join(ROOT, 'tools', 'dist_train.sh')
CONFIG = os.path.join(ROOT, 'configs', 'r2o_tiny_cpu.py')
ENV = dict(os.environ, R2O_SKIP_SETUP='1', PYTHON=sys.executable, OMP_NUM_THREADS='1')


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('photos')
    write_photo_folder(str(folder), num_images=16, max_side=96)
    return str(folder)


def fails_in_one_line(args, env=None, most=1, cwd=ROOT) -> str:
    """Runs ``args``; asserts a non-zero exit, no traceback, at most ``most``
    lines of output in all; returns the last line."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, env=env or ENV)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0, output[-3000:]
    assert 'Traceback' not in output and 'System environment' not in output, output[-3000:]
    assert 1 <= len(output.splitlines()) <= most, output[-3000:]
    return output.splitlines()[-1]


def check_only(work_dir, *options, data=None, extra=()):
    return [sys.executable, TRAIN, CONFIG, '--check-only', '--work-dir', str(work_dir), *extra, '--cfg-options',
            *([f'train_dataloader.dataset.data_root={data}'] if data else []), *options]


def train_main_of(train_main, args) -> tuple[int, list[str]]:
    """The pre-flight of ``args`` (a check_only() command) run in this process (conftest.train_main)."""
    return train_main(args[2:])


def one_line_in_process(train_main, args) -> str:
    code, lines = train_main_of(train_main, args)
    assert code != 0 and len(lines) == 1 and 'Traceback' not in ''.join(lines), lines
    return lines[0]


# ----------------------------------------------------------- silent results
def test_fewer_images_than_the_global_batch_stops_before_training(photos, tmp_path, train_main):
    line = one_line_in_process(train_main, check_only(tmp_path, 'train_dataloader.batch_size=32', data=photos))
    assert line == ('16 images and a global batch of 32 (32 per process x 1 process(es), drop_last): an epoch '
                    'would make no optimiser step and train nothing; set train_dataloader.batch_size to at most '
                    '16, or add images')
    # 8 processes of 4: ceil(16 / 8) = 2 per process, fewer than one batch.
    line = fails_in_one_line([DIST, CONFIG, '8', '--work-dir', str(tmp_path), '--cfg-options',
                              f'train_dataloader.dataset.data_root={photos}'], env=dict(ENV, PORT='29531'), most=2)
    assert line.startswith('16 images and a global batch of 32 (4 per process x 8 process(es), drop_last)')
    assert line.endswith('set train_dataloader.batch_size to at most 2, or add images')
    assert not os.listdir(tmp_path)  # nothing trained, nothing written


def test_the_step_count_follows_the_sampler():
    from r2o_mm.engine.preflight import optimiser_steps
    # DefaultSampler rounds each rank's share up: 10 images on 4 ranks are 3 each.
    assert optimiser_steps(10, 3, 4) == 1 and optimiser_steps(10, 4, 4) == 0
    assert optimiser_steps(10, 4, 4, drop_last=False) == 1 and optimiser_steps(10, 3, 4, round_up=False) == 0
    assert optimiser_steps(1281167, 32, 128) == 312 and optimiser_steps(64, 4, 2, accumulation=3) == 2


def _fake_checkpoint(path, fingerprint):
    torch.save({'meta': {'run_fingerprint': fingerprint, 'epoch': 1, 'iter': 4}, 'state_dict': {}}, path)


def test_a_work_dir_of_another_run_is_refused_unless_resume_or_overwrite(photos, tmp_path, train_main):
    _fake_checkpoint(tmp_path / 'epoch_1.pth', 'another run')
    line = one_line_in_process(train_main, check_only(tmp_path, data=photos))
    assert line == (f'work dir {tmp_path} holds checkpoints of another run (epoch_1.pth: another config, seed or '
                    'options); continue that run with --resume, start over with --overwrite, or choose another '
                    '--work-dir')
    # The same config with another seed is another run; the recorded fingerprint says so.
    from r2o_mm.engine.preflight import run_fingerprint
    from r2o_mm.utils.config import load_config
    cfg = load_config(CONFIG, {'train_dataloader.dataset.data_root': photos})
    ours = run_fingerprint(cfg)
    cfg.merge_from_dict({'randomness.seed': 1})
    assert run_fingerprint(cfg) != ours
    cfg.merge_from_dict({'randomness.seed': 0, 'work_dir': '/elsewhere', 'launcher': 'pytorch'})
    assert run_fingerprint(cfg) == ours  # where and how it is launched is not part of the run
    _fake_checkpoint(tmp_path / 'epoch_1.pth', ours)
    line = one_line_in_process(train_main, check_only(tmp_path, data=photos))
    assert line.startswith(f'work dir {tmp_path} already holds checkpoints of this run (epoch_1.pth); continue')
    (tmp_path / 'last_checkpoint').write_text('epoch_1.pth')
    code, lines = train_main_of(train_main, check_only(tmp_path, data=photos, extra=['--overwrite']))
    assert code == 0 and lines[0] == f'--overwrite: removed 1 checkpoint(s) of an earlier run from {tmp_path}'
    assert sorted(os.listdir(tmp_path)) == []


def test_the_recipe_fingerprint_leaves_out_seeds_paths_and_watching_hooks_only():
    """Runs that differ in seeds, data paths, caches, workers or the mask
    pictures share a recipe (one row of a table); any value the weights
    depend on makes another."""
    from r2o_mm.engine.preflight import recipe_fingerprint
    from r2o_mm.utils.config import load_config
    base = recipe_fingerprint(load_config(CONFIG))
    same = {'randomness.seed': 3, 'model.kmeans_seed': 3, 'train_dataloader.dataset.data_root': '/elsewhere',
            'train_dataloader.dataset.pipeline.2.cache_dir': '/cache', 'train_dataloader.num_workers': 4,
            'custom_hooks.3.interval': 100, 'default_hooks.logger.interval': 7, 'work_dir': '/w'}
    for key, value in same.items():
        assert recipe_fingerprint(load_config(CONFIG, {key: value})) == base, key
    other = {'model.kmeans_iters': 10, 'train_cfg.max_epochs': 3, 'train_dataloader.batch_size': 8,
             'custom_hooks.1.lr_per_256': 4.8, 'custom_hooks.0.start': 16, 'optim_wrapper.optimizer.momentum': 0.8,
             'train_dataloader.dataset.pipeline.1.size': 96}
    for key, value in other.items():
        assert recipe_fingerprint(load_config(CONFIG, {key: value})) != base, key


# Values that once passed the pre-flight and crashed after "config OK", or failed without naming the key:
# each is one line naming the key, the value and what is expected, before anything is built or trained.
BAD_VALUES = {
    'model.kmeans_iters=1e2': 'config error in model.kmeans_iters: an integer > 0, got 100.0',
    'model.kmeans_iters=abc': "config error in model.kmeans_iters: an integer > 0, got 'abc'",
    'model.kmeans_iters=0': 'config error in model.kmeans_iters: an integer > 0, got 0',
    'randomness.seed=abc': "config error in randomness.seed: an integer in [0, 2**32) or None, got 'abc'",
    'randomness.seed=-1': 'config error in randomness.seed: an integer in [0, 2**32) or None, got -1',
    'optim_wrapper.optimizer.lr=abc': "config error in optim_wrapper.optimizer.lr: a number >= 0, got 'abc'",
    'optim_wrapper.optimizer.momentum=nan': 'config error in optim_wrapper.optimizer.momentum: a number >= 0, '
                                            'got nan',
    'model.depth=19': 'config error in model.depth: one of 18, 34, 50, 101, 152, got 19',
    'model.num_clusters=8.5': 'config error in model.num_clusters: an integer > 0, got 8.5',
    'model.kmeans_tol=-1': 'config error in model.kmeans_tol: a number >= 0, got -1',
    'custom_hooks.0.start=abc': "config error in custom_hooks.0.start: an integer > 0, got 'abc'",
    'custom_hooks.1.lr_per_256=0': 'config error in custom_hooks.1.lr_per_256: a number > 0, got 0',
    'custom_hooks.1.warmup_epochs=-1': 'config error in custom_hooks.1.warmup_epochs: a number >= 0, got -1',
    'custom_hooks.2.base_tau=1.5': 'config error in custom_hooks.2.base_tau: a number in [0, 1], got 1.5',
    'train_dataloader.dataset.pipeline.1.size=6.5': 'config error in train_dataloader.dataset.pipeline.1.size: '
                                                     'an integer > 0, got 6.5',
    'train_dataloader.dataset.pipeline.2.n_segments=0': 'config error in '
                                                        'train_dataloader.dataset.pipeline.2.n_segments: '
                                                        'an integer > 0, got 0',
    'train_dataloader.dataset.pipeline.1.grayscale_prob=2': 'config error in '
                                                            'train_dataloader.dataset.pipeline.1.grayscale_prob: '
                                                            'a number in [0, 1], got 2',
    'default_hooks.logger.interval=0': 'config error in default_hooks.logger.interval: an integer > 0, got 0',
    'default_hooks.mask_quality.interval=x': "config error in default_hooks.mask_quality.interval: an integer > 0, "
                                             "got 'x'",
    'log_processor.window_size=ten': "config error in log_processor.window_size: an integer, got 'ten'",
}


@pytest.mark.parametrize('option', sorted(BAD_VALUES))
def test_a_bad_value_is_one_line_naming_key_value_and_expectation(option, photos, tmp_path, train_main):
    code, lines = train_main_of(train_main, check_only(tmp_path, option, data=photos))
    assert (code, lines) == (1, [BAD_VALUES[option]])
    assert not os.listdir(tmp_path)


def test_a_bad_value_stops_a_real_run_before_training(photos, tmp_path):
    """The command as a user types it: exit 1, the one line, nothing written."""
    line = fails_in_one_line([sys.executable, TRAIN, CONFIG, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                              f'train_dataloader.dataset.data_root={photos}', 'model.kmeans_iters=1e2'])
    assert line == BAD_VALUES['model.kmeans_iters=1e2'] and not os.path.exists(tmp_path / 'w')


def test_a_top_level_variable_the_sections_do_not_follow_names_the_key(photos, tmp_path, train_main):
    line = one_line_in_process(train_main, check_only(tmp_path, 'max_epochs=1', data=photos))
    assert line == ('--cfg-options max_epochs=1: the config copied max_epochs into train_cfg.max_epochs when it was '
                    'read, so the run would not follow it; set train_cfg.max_epochs=1 instead')
    from r2o_mm.utils.config import load_config, unfollowed_options
    options = {'input_size': 96}
    cfg = load_config(CONFIG, options)
    # Followed through train_pipeline into the data loader's pipeline, and into the k-NN monitor's and mask
    # quality's sizes.
    [line] = unfollowed_options(CONFIG, cfg, options)
    assert ('into default_hooks.knn_monitor.size, default_hooks.mask_quality.size, '
            'train_dataloader.dataset.pipeline.1.size, train_dataloader.dataset.pipeline.2.size when') in line
    both = {'max_epochs': 1, 'train_cfg.max_epochs': 1}
    assert unfollowed_options(CONFIG, load_config(CONFIG, both), both) == []  # set where it is read: fine
    assert unfollowed_options(CONFIG, load_config(CONFIG, {'max_epochs': 2}), {'max_epochs': 2}) == []


# ------------------------------------------------ what the pre-flight builds
@pytest.mark.parametrize('option, expected', [
    ('train_cfg.max_epoch=1', "config error in train_cfg: ResumableEpochBasedTrainLoop has no setting 'max_epoch'; "
                              'did you mean train_cfg.max_epochs?'),
    ('train_dataloader.batch_size=four', "config error in train_dataloader.batch_size: a positive integer, got "
                                         "'four'"),
    ('train_dataloader.batch_size=0', 'config error in train_dataloader.batch_size: a positive integer, got 0'),
    ('model.depth', '--cfg-options model.depth: expected KEY=VALUE (e.g. model.depth=...)'),
])
def test_values_the_run_would_break_on_are_one_line(option, expected, photos, tmp_path, train_main):
    assert one_line_in_process(train_main, check_only(tmp_path, option, data=photos)) == expected


@pytest.mark.parametrize('option, message', [
    ('model.kmeans_empty_clusters=nan', 'config error in model: model.kmeans_empty_clusters must be'),
    ('optim_wrapper.optimizer.exclusion=foo', "config error in optim_wrapper: optim_wrapper.optimizer.exclusion "
                                              "must be one of ('released', 'ndim'), got 'foo'"),
    ('model.compact_absent_rows=no', "config error in model.compact_absent_rows: True or False, got 'no'"),
    ('custom_hooks.0.kind=exponential', 'config error in custom_hooks (ClusterScheduleHook): K schedule kind'),
    ('custom_hooks.1.couple_to_clusters=1', 'config error in custom_hooks.1.couple_to_clusters: True or False, '
                                            'got 1'),
    ('train_dataloader.dataset.pipeline.1.always_flip=yes', 'config error in '
                                                            'train_dataloader.dataset.pipeline.1.always_flip: '
                                                            "True or False, got 'yes'"),
])
def test_a_bad_switch_value_names_its_key(option, message, photos, tmp_path, train_main):
    """The pre-flight every launcher runs (tools/dist_train.sh's own path: tests/tools/test_train.py)."""
    assert message in one_line_in_process(train_main, check_only(tmp_path, option, data=photos))


# ------------------------------------------------------------ the data itself
def test_files_that_do_not_decode_are_one_line(tmp_path):
    data = tmp_path / 'not_images'
    data.mkdir()
    for index in range(6):
        (data / f'{index}.jpg').write_text('these bytes are no JPEG')
    line = fails_in_one_line(check_only(tmp_path / 'work', data=data))  # the whole command, as a user runs it
    assert line.startswith(f'dataset error: 0 of 6 sampled images under {data} decode (6 listed); first '
                           f'unreadable: {data}/0.jpg (UnidentifiedImageError: ')


def test_a_few_bad_files_are_named_and_the_run_goes_on(photos, tmp_path, train_main):
    data = tmp_path / 'mixed'
    write_photo_folder(str(data), num_images=8, max_side=64)
    (data / 'photo_000.jpg').write_bytes(b'truncated')
    code, lines = train_main_of(train_main, check_only(tmp_path / 'work', data=data))
    assert code == 0 and len(lines) == 2, lines
    assert lines[0].startswith(f'1 of 8 sampled images do not decode (first: {data}/photo_000.jpg: ')
    assert '8 images listed in' in lines[1] and '7 of 8 sampled decode; 2 optimiser steps per epoch' in lines[1]


def test_an_empty_folder_is_one_line_at_the_pre_flight(tmp_path, train_main):
    (tmp_path / 'empty').mkdir()
    code, lines = train_main_of(train_main, check_only(tmp_path / 'work', data=tmp_path / 'empty'))
    assert code != 0
    assert lines == [f'dataset error: no images found under {tmp_path}/empty. Expected layout:',
                     '  <data_root>/**/<image>.{jpg,png,...}   or a list file with one relative path per line']


def test_a_read_only_work_dir_is_one_line(photos, tmp_path, mount_tmpfs):
    work = tmp_path / 'read_only'
    work.mkdir()
    mount_tmpfs(work, 'ro,size=1m')
    line = fails_in_one_line(check_only(work / 'run', data=photos))
    assert line == f'work dir {work}/run cannot be written: Read-only file system (choose another --work-dir)'


def test_free_space_is_stated_against_the_checkpoint_size():
    from r2o_mm.engine.preflight import PreflightError, check_work_dir
    import shutil
    free = shutil.disk_usage(ROOT).free
    assert check_work_dir(os.path.join(ROOT, 'tests'), free // 10) == []
    [line] = check_work_dir(os.path.join(ROOT, 'tests'), free // 2)
    assert line.endswith('fewer than 3 fit (last.pth is replaced through a temporary copy)')
    with pytest.raises(PreflightError, match='not even one fits'):
        check_work_dir(os.path.join(ROOT, 'tests'), free * 2)


def test_the_checkpoint_size_estimate_matches_a_saved_checkpoint(tmp_path):
    """Model state plus one LARS momentum buffer per trainable parameter, as
    saved (the message hub and meta are small)."""
    from mmengine.optim import build_optim_wrapper
    from r2o_mm.engine.preflight import checkpoint_bytes
    from r2o_mm.models import R2O
    from r2o_mm.utils.config import load_config
    cfg = load_config(CONFIG)
    from mmengine.registry import MODELS
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert isinstance(model, R2O)
    for group in wrapper.optimizer.param_groups:  # the momentum buffers a step creates
        for p in group['params']:
            wrapper.optimizer.state[p]['momentum_buffer'] = torch.zeros_like(p)
    torch.save({'state_dict': model.state_dict(), 'optimizer': wrapper.optimizer.state_dict()}, tmp_path / 'c.pth')
    size = os.path.getsize(tmp_path / 'c.pth')
    assert checkpoint_bytes(model, 'LARS') == pytest.approx(size, rel=0.02)


# ------------------------------------------------------------- other tools
def resnet18_file(path):
    import torchvision
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return str(path)


@pytest.fixture(scope='module')
def voc_scenes(tmp_path_factory):
    from r2o_mm.data.synthetic_scenes import write_synthetic_datasets
    return write_synthetic_datasets(str(tmp_path_factory.mktemp('scenes')), num_train=2, num_val=2, size=(64, 80),
                                    layouts=('voc',))['voc']


def voc_options(root):
    """The small VOC transfer at the protocol's ResNet-50."""
    from r2o_mm.transfer.small import as_cli, small_transfer_options
    return ' '.join(as_cli(small_transfer_options('voc', root, depth=50)))


DEPTH_HINT = ('model.backbone.depth=18 model.decode_head.in_channels=512 model.auxiliary_head.in_channels=256')


def test_transfer_of_a_checkpoint_of_another_depth_is_one_line_whose_hint_runs(voc_scenes, tmp_path):
    """Refused before any rank in one line; the options it gives, added as
    written, run the small transfer to its end."""
    checkpoint = resnet18_file(tmp_path / 'resnet18.pth')
    env = dict(ENV, WORK_DIR=str(tmp_path / 'out'), CFG_OPTIONS=voc_options(voc_scenes))
    line = fails_in_one_line([os.path.join(ROOT, 'tools', 'transfer.sh'), checkpoint, '8', 'voc'], env=env, most=2)
    assert line == (f'voc: {checkpoint} holds a ResNet-18; the voc protocol is a ResNet-50 (to run it anyway, '
                    f'recorded as a deviation, add to CFG_OPTIONS: {DEPTH_HINT})')
    assert not os.path.exists(tmp_path / 'out' / 'voc' / 'transfer.log')  # no rank started
    hint = line.split('add to CFG_OPTIONS: ')[1].rstrip(')')
    env['CFG_OPTIONS'] += ' ' + hint
    result = subprocess.run([os.path.join(ROOT, 'tools', 'transfer.sh'), checkpoint, '1', 'voc'], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    # The console of a small run: at most 40 lines (the config dump and mmseg's per-class table are in the
    # run's log file), ending with the command that collects the tables.
    console = (result.stdout + result.stderr).strip().splitlines()
    assert len(console) <= 40 and 'per class results' not in result.stdout and 'Config:' not in result.stdout
    assert result.stdout.strip().splitlines()[-1] == (f'next: .venv/bin/python tools/collect_results.py '
                                                      f'{tmp_path}/out  (tables and figures under {tmp_path}/out/results)')
    import glob
    import json
    full_log = open(glob.glob(str(tmp_path / 'out' / 'voc' / '2*' / '*.log'))[0]).read()
    assert 'per class results' in full_log and 'Config:' in full_log
    metrics = json.loads((tmp_path / 'out' / 'voc' / 'metrics.json').read_text())
    assert metrics['finished'] and 0 <= metrics['metrics']['mIoU'] <= 100
    assert any(d.startswith('backbone') or 'depth' in d for d in metrics['protocol_deviations'])


def test_a_channel_mismatch_is_caught_by_the_pre_flight_forward(voc_scenes, tmp_path):
    """The hint's first option alone (the depth, not the heads' channels):
    the model builds, and its forward on a zero image fails in one line."""
    checkpoint = resnet18_file(tmp_path / 'resnet18.pth')
    env = dict(ENV, WORK_DIR=str(tmp_path / 'out'), CFG_OPTIONS=voc_options(voc_scenes) + ' model.backbone.depth=18')
    line = fails_in_one_line([os.path.join(ROOT, 'tools', 'transfer.sh'), checkpoint, '1', 'voc'], env=env, most=2)
    assert line.startswith('voc: config error in model: RuntimeError: ') and '2048' in line and '512' in line


def test_every_problem_of_a_task_is_reported_at_once(tmp_path, capsys):
    """No VOC data and a ResNet-18: both lines, before anything runs."""
    checkpoint = resnet18_file(tmp_path / 'resnet18.pth')
    from r2o_mm.transfer.preflight import main
    with pytest.raises(SystemExit) as stop:
        main([checkpoint, '--tasks', 'voc', '--work-dir', str(tmp_path / 'out'), '--cfg-options',
              f'train_dataloader.dataset.datasets.0.data_root={tmp_path}/none',
              f'train_dataloader.dataset.datasets.1.data_root={tmp_path}/none',
              f'test_dataloader.dataset.data_root={tmp_path}/none'])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == ''
    assert stop.value.code == 2
    assert lines[0].startswith(f'exported 120 tensors of {checkpoint}')
    assert lines[1:] == [
        f'voc: DatasetLayoutError: {tmp_path}/none/ImageSets/Segmentation/train.txt does not exist. The voc '
        'transfer expects it; produce it with ' + lines[1].split('produce it with ')[1],
        f'voc: {checkpoint} holds a ResNet-18; the voc protocol is a ResNet-50 (to run it anyway, recorded as a '
        f'deviation, add to CFG_OPTIONS: {DEPTH_HINT})']
    assert (tmp_path / 'out' / 'voc' / 'FAILED').read_text().count('; ') >= 1


def test_a_text_file_saved_as_a_checkpoint_is_one_line(tmp_path, tool_main):
    """A download link saved as .pth (its first byte, 'h', is a pickle opcode): one line in the export tool
    and in tools/transfer.sh, no KeyError."""
    text = tmp_path / 'r2o_torchvision.pth'
    text.write_text('https://huggingface.co/KonstantinosKK/r2o/resolve/main/r2o_torchvision.pth\n')
    reason = (f"{text}: a text file, not a checkpoint (it starts with 'https://huggingface.co/KonstantinosKK/r2o/"
              "resolve/main/r2o_t'): a download link, web page or Git LFS pointer saved in place of the weights?")
    code, lines = tool_main('export_backbone.py', [str(text), str(tmp_path / 'o.pth')])
    assert (code, lines) == (1, [f'cannot export: {reason}'])
    env = dict(ENV, WORK_DIR=str(tmp_path / 'out'))
    line = fails_in_one_line([os.path.join(ROOT, 'tools', 'transfer.sh'), str(text), '1', 'voc'], env=env)
    assert line == f'cannot export {text}: {reason}'
    from r2o_mm.utils.checkpoint import CheckpointReadError, read_checkpoint
    pointer = tmp_path / 'lfs.pth'
    pointer.write_text('version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 1\n')
    with pytest.raises(CheckpointReadError, match="starts with 'version https://git-lfs.github.com/spec/v1'"):
        read_checkpoint(str(pointer))
    binary = tmp_path / 'h.pth'  # b'h' then bytes that are no text: still one line, not a KeyError
    binary.write_bytes(b'h\x00\xff' * 10)
    with pytest.raises(CheckpointReadError, match='not a readable checkpoint'):
        read_checkpoint(str(binary))


def test_the_depth_is_read_from_the_tensors():
    import torchvision
    from r2o_mm.transfer.preflight import resnet_depth
    for depth in (18, 34, 50, 101):
        assert resnet_depth(getattr(torchvision.models, f'resnet{depth}')().state_dict()) == depth
    assert resnet_depth({'conv1.weight': torch.zeros(1)}) is None


def test_export_to_a_missing_folder_is_one_line(tmp_path):
    checkpoint = resnet18_file(tmp_path / 'resnet18.pth')
    line = fails_in_one_line([sys.executable, 'tools/export_backbone.py', checkpoint, str(tmp_path / 'no' / 'b.pth')])
    assert line == f'cannot export: the output folder {tmp_path}/no does not exist (create it, or choose another OUT)'


def test_slic_cache_builder_of_a_config_typo_and_of_nothing(tmp_path):
    line = fails_in_one_line([sys.executable, 'tools/build_slic_cache.py', 'configs/r2o_tiny.py', '--out',
                              str(tmp_path / 'cache')])
    assert line.startswith('config file configs/r2o_tiny.py does not exist; did you mean configs/r2o_tiny_cpu.py')
    data = tmp_path / 'bad'
    data.mkdir()
    for index in range(3):
        (data / f'{index}.png').write_text('no image')
    result = subprocess.run([sys.executable, 'tools/build_slic_cache.py', CONFIG, '--out', str(tmp_path / 'cache'),
                             '--workers', '1', '--cfg-options', f'train_dataloader.dataset.data_root={data}'],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 1 and 'train with' not in result.stdout and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f'build_slic_cache: nothing cached: all 3 images of {data} failed to decode, first: 0.png: '
        + result.stderr.split('first: 0.png: ')[1].strip().split('; ')[0] + f'; {tmp_path}/cache is not usable']


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is visible: the check would run')
def test_the_gpu_check_without_a_gpu_stops_after_its_first_line(tmp_path):
    result = subprocess.run(['tools/gpu_check.sh', '--minutes', '10', '--benchmarks', str(tmp_path / 'b.md'),
                             '--out', str(tmp_path / 'out')], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(ENV))
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 3, result.stdout[-3000:]
    assert lines[1].startswith('[FAIL] environment') and 'torch sees no GPU' in lines[1]
    assert lines[2] == 'gpu_check: stopped after the environment phase (5 phase(s) not run; --keep-going runs them ' \
                       'anyway)'
    assert not (tmp_path / 'b.md').exists()


def test_the_gpu_check_never_passes_cpu_processes_for_gpus():
    import argparse
    from r2o_mm.gpu_check import Check, PhaseError, phase_distributed
    args = argparse.Namespace(quick=True, device='cuda', minutes=1, out=os.path.join(ROOT, 'work_dirs', 'x'))
    check = Check.__new__(Check)
    check.device, check.gpus, check.args = torch.device('cuda'), 0, args
    with pytest.raises(PhaseError, match='no GPU visible: tools/dist_train.sh would run on CPU processes'):
        phase_distributed(check)
