"""tools/train.py on the tiny config: training, checkpoints, exact resume,
and two processes with the gloo backend (torchrun)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from r2o_mm.data.sample_images import write_photo_folder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, 'tools', 'train.py')
CONFIG = os.path.join(ROOT, 'configs', 'r2o_tiny_cpu.py')


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp('photos')
    write_photo_folder(str(folder), num_images=16, max_side=96)
    return str(folder)


def run(args, **kwargs):
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def train(work_dir, photos, *extra):
    return run([sys.executable, TRAIN, CONFIG, '--work-dir', str(work_dir), '--cfg-options',
                f'train_dataloader.dataset.data_root={photos}', *extra])


def logged_scalars(work_dir):
    """{iteration: {'lr', 'K', 'tau'}} from the run's scalars.json files."""
    rows = {}
    for directory, _, files in os.walk(work_dir):
        for name in files:
            if name == 'scalars.json':
                with open(os.path.join(directory, name)) as handle:
                    for line in handle:
                        row = json.loads(line)
                        if 'tau' in row:
                            rows[row['iter']] = {k: row[k] for k in ('lr', 'K', 'tau')}
    return rows


@pytest.fixture(scope='module')
def full_run(tmp_path_factory, photos):
    """The tiny config for 2 epochs, with mask quality on generated scenes."""
    from r2o_mm.data.synthetic_scenes import write_synthetic_datasets
    scenes = write_synthetic_datasets(str(tmp_path_factory.mktemp('scenes')), num_train=1, num_val=6,
                                      size=(64, 80), layouts=('coco',))['coco']
    work_dir = tmp_path_factory.mktemp('full')
    log = train(work_dir, photos, f'default_hooks.mask_quality.ann_file={scenes}/annotations/instances_val2017.json',
                f'default_hooks.mask_quality.image_dir={scenes}/val2017')
    return work_dir, log


def test_mask_quality_is_followed_over_epochs(full_run):
    work_dir, log = full_run
    history = json.loads((work_dir / 'mask_quality.json').read_text())
    assert [h['epoch'] for h in history] == [0, 1, 2] and [h['K'] for h in history][1:] == [6, 2]
    for record in history:  # the current K and the reference K = 8 and 4
        assert {'8', '4'} <= set(record['mBO']) and all(0 <= v <= 100 for v in record['mBO'].values())
        assert 0 < record['zero_descriptors'] < 1  # 64 px: a 4 x 4 layer3 grid, many superpixels miss it
    assert log.count('mask quality, epoch') == 3
    assert (work_dir / 'mask_quality' / 'epoch_2.png').stat().st_size > 1000


def test_the_console_shows_the_header_progress_and_a_closing_line(full_run):
    """At most 40 lines: the run's header, progress with ETA, evaluations and
    the closing line with the next command; the environment and config dump
    only in the log file, which keeps them."""
    work_dir, log = full_run
    lines = log.strip().splitlines()
    assert len(lines) <= 40, log
    header = next(line for line in lines if 'work dir' in line and 'world size' in line)
    assert header.startswith(f'r2o_tiny_cpu.py: work dir {work_dir}, world size 1 (') and 'from the start' in header
    assert any('eta: ' in line for line in lines)
    # The last line of stdout: after it come only the pre-flight's lines, which are on stderr.
    closing = [line for line in lines if line.startswith('done: ')]
    assert len(closing) == 1
    assert all(line.startswith('r2o_tiny_cpu.py: config OK') for line in lines[lines.index(closing[0]) + 1:])
    path = closing[0].split('; log ')[1].split('; ')[0]
    assert closing[0] == (f'done: checkpoints {work_dir}/epoch_*.pth and last.pth; log {path}; metrics '
                          f'pretrain_info.json, mask_quality.json in {work_dir}; next: tools/transfer.sh '
                          f'{work_dir}/epoch_2.pth 8')
    full = open(path).read()
    assert 'System environment' not in log and 'Config:' not in log
    assert 'System environment' in full and 'Config:' in full and 'Hooks will be executed' in full
    assert len(full.splitlines()) > 10 * len(lines)


def test_tiny_config_trains_and_writes_checkpoints(full_run):
    work_dir, log = full_run
    assert 'world size 1, global batch 4' in log
    assert {'epoch_1.pth', 'epoch_2.pth', 'last_checkpoint'} <= set(os.listdir(work_dir))
    checkpoint = torch.load(work_dir / 'epoch_2.pth', weights_only=True)
    assert checkpoint['meta']['iter'] == 8 and checkpoint['meta']['epoch'] == 2
    keys = checkpoint['state_dict'].keys()
    assert 'online_encoder.layer4.1.bn2.weight' in keys and 'target_encoder.conv1.weight' in keys
    scalars = logged_scalars(work_dir)
    assert sorted(scalars) == list(range(1, 9))
    assert [scalars[i]['K'] for i in (1, 4, 5, 8)] == [6, 6, 2, 2]  # K(1)=6, K(2)=2
    assert scalars[1]['lr'] == 0.0  # warm-up starts from 0
    # The Fig. 3 pictures were written by the visualisation hook.
    pictures = [f for _, _, files in os.walk(work_dir) for f in files if f.startswith('raw_superpixels')]
    assert len(pictures) == 2
    # Cost from the run's own record; TensorBoard's event file beside the JSON logs.
    info = json.loads((work_dir / 'pretrain_info.json').read_text())
    cost = info['cost']
    from r2o_mm.engine.preflight import recipe_fingerprint
    from r2o_mm.utils.config import load_config
    assert info['recipe_sha256'] == recipe_fingerprint(load_config(CONFIG)) and len(info['recipe_sha256']) == 16
    assert cost['world_size'] == 1 and cost['wall_seconds'] > 0 and cost['peak_memory_mb'] > 0
    assert cost['images_per_second'] == pytest.approx(8 * 4 / cost['wall_seconds'])
    assert any(f.startswith('events.out.tfevents') for _, _, files in os.walk(work_dir) for f in files)
    assert sorted(os.listdir(work_dir / 'mask_quality')) == ['epoch_0.png', 'epoch_1.png', 'epoch_2.png']
    # Q8 is counted every epoch; the tiny config has no released recipe to warn about.
    assert log.count('K-means hit an empty cluster in') == 2
    assert 'differs from the released recipe' not in log


def test_resume_continues_k_tau_lr_and_counters(full_run, photos, tmp_path):
    work_dir, _ = full_run
    log = train(tmp_path, photos, '--resume', str(work_dir / 'epoch_1.pth'))
    assert 'resumed epoch: 1, iter: 4' in log
    assert log.count('MaskQualityHook is off: annotation file None not found') == 1
    resumed, full = logged_scalars(tmp_path), logged_scalars(work_dir)
    assert sorted(resumed) == [5, 6, 7, 8]
    for iteration in resumed:
        assert resumed[iteration] == pytest.approx(full[iteration], rel=1e-9)
    checkpoint = torch.load(tmp_path / 'epoch_2.pth', weights_only=True)
    assert checkpoint['meta']['iter'] == 8


# The launcher's own path; every other bad value is checked by the same pre-flight in process
# (tests/tools/test_bad_input.py::test_a_bad_switch_value_names_its_key).
@pytest.mark.parametrize('option, message', [
    ('train_dataloader.dataset.data_root=/nonexistent/photos', 'dataset error: /nonexistent/photos does not exist'),
    ('model.paint_mode=bicubic', 'config error in model: model.paint_mode must be one of'),
])
def test_dist_train_sh_fails_in_one_line_before_starting_workers(option, message, photos):
    env = dict(os.environ, R2O_SKIP_SETUP='1', PYTHON=sys.executable, PORT='29518')
    data = [] if 'data_root' in option else [f'train_dataloader.dataset.data_root={photos}']
    result = subprocess.run([os.path.join(ROOT, 'tools', 'dist_train.sh'), CONFIG, '8', '--cfg-options', option,
                             *data], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert output.count(message) == 1, output[-3000:]
    # The dataset error lists the expected layout after its first line; nothing else is printed.
    assert 'Traceback' not in output and 'torch.distributed' not in output and 'CPU processes' not in output
    assert len(output.strip().splitlines()) <= 3


def one_line_failure(args, env=None):
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, **(env or {})))
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0 and 'Traceback' not in output, output[-3000:]
    return output


def test_train_py_and_dist_train_sh_refuse_bad_paths_in_one_line(photos, tmp_path, train_main):
    """tools/train.py's cases in process (conftest.train_main: the same main()); dist_train.sh's own."""
    def one_line(argv):
        code, lines = train_main(argv)
        assert code != 0 and 'Traceback' not in '\n'.join(lines), lines
        return '\n'.join(lines)
    typo = one_line(['configs/r2o_tiny.py'])
    assert typo.startswith('config file configs/r2o_tiny.py does not exist; did you mean configs/r2o_tiny_cpu.py')
    assert len(typo.splitlines()) == 1
    # The paper's config without its data: one line (and the layout), before mmengine's environment dump.
    no_data = one_line(['configs/r2o_imagenet_300e.py'])
    assert no_data.startswith('dataset error: data/imagenet does not exist. Expected layout:')
    assert 'System environment' not in no_data and len(no_data.splitlines()) <= 3
    missing = str(tmp_path / 'epoch_100.pth')
    data = ['--cfg-options', f'train_dataloader.dataset.data_root={photos}']
    assert one_line([CONFIG, '--resume', missing, *data]) == f'--resume {missing}: no such file'
    env = dict(R2O_SKIP_SETUP='1', PYTHON=sys.executable, PORT='29519')
    resume = one_line_failure([os.path.join(ROOT, 'tools', 'dist_train.sh'), CONFIG, '2', '--resume', missing, *data],
                              env)
    assert resume == f'--resume {missing}: no such file'
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(b'PK\x03\x04' + b'0' * 100)
    assert one_line([CONFIG, '--resume', str(truncated), *data]) == \
        f'--resume {truncated}: truncated or corrupt (not a complete torch archive)'


def test_a_nan_loss_ends_training_with_one_line(photos, tmp_path):
    """The loss becomes NaN at the first step (an lr of infinity): a message, not a traceback."""
    output = one_line_failure([sys.executable, TRAIN, CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                               f'train_dataloader.dataset.data_root={photos}', 'custom_hooks.1.lr_per_256=1e38',
                               'custom_hooks.1.warmup_epochs=0'])
    last = output.splitlines()[-1]
    assert last.startswith('stopped: loss became nan at iteration') or \
        last.startswith('stopped: loss became inf at iteration'), output[-2000:]


def test_a_preemption_signal_during_the_imports_is_acted_on_at_the_first_iteration(photos, tmp_path):
    """SIGUSR1 0.3 s after the start, while the process still imports torch (seconds on any machine): the
    process does not die of it; it saves at the first iteration and exits with the preemption code."""
    import signal
    import time
    process = subprocess.Popen([sys.executable, TRAIN, CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                                f'train_dataloader.dataset.data_root={photos}'], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(0.3)
    process.send_signal(signal.SIGUSR1)
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 75, out[-3000:]
    assert 'SIGUSR1 arrived during start-up: saving after the first iteration' in out
    assert torch.load(tmp_path / 'last.pth', weights_only=True)['meta']['iter'] == 1
