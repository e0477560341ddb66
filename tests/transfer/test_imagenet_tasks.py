"""ImageNet linear and semi-supervised classification through mmpretrain, the
k-NN monitor during pretraining, the linear table and the model card, on a
generated ImageNet-layout folder (six shape classes, a tiny ResNet).

One two-process pretraining (tools/dist_train.sh, k-NN monitor on) feeds
everything: tools/transfer.sh runs the three tasks from its checkpoint, in a
folder whose data/imagenet/ is the generated set (the configs' own relative
paths, the semi-supervised lists included), and tools/collect_results.py
writes linear.md and the model card from the results."""
import json
import os
import re
import shutil
import subprocess

import pytest
import torch
from torchvision.transforms import v2

from r2o_mm.data.synthetic_scenes import CLASSIFICATION_SHAPES, write_imagenet_folder
from r2o_mm.engine.health import balanced_sample
from r2o_mm.evaluation.encoder import load_encoder
from r2o_mm.evaluation.knn import extract_features, knn_predict, labelled_folder, topk_accuracy
from r2o_mm.transfer.small import as_cli, small_transfer_options
from r2o_mm.utils.checkpoint import file_sha256
from r2o_mm.utils.dist import free_port_pair

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = 'configs/r2o_tiny_cpu.py'
TASKS = ('imagenet_linear', 'imagenet_semi_1pct', 'imagenet_semi_10pct')
KNN = dict(train_per_class=6, val_per_class=3, size=64, k=5)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """<tmp>/data/imagenet: 8 train and 4 val images per class, 1percent.txt (2 per class), 10percent.txt (4)."""
    root = tmp_path_factory.mktemp('imagenet_tasks')
    write_imagenet_folder(str(root / 'data'), train_per_class=8, val_per_class=4, size=(64, 80))
    return root


@pytest.fixture(scope='module')
def pretrained(workspace):
    """One epoch of the tiny config on the generated train folder, two CPU processes, k-NN monitor every epoch."""
    work = workspace / 'pretrain'
    base = workspace / 'data' / 'imagenet'
    options = ['train_dataloader.dataset.type=ImageFolderUnlabeled', f'train_dataloader.dataset.data_root={base}',
               'train_dataloader.dataset.split=train', 'train_cfg.max_epochs=1',
               f'default_hooks.knn_monitor.train_dir={base}/train', f'default_hooks.knn_monitor.val_dir={base}/val',
               *(f'default_hooks.knn_monitor.{key}={value}' for key, value in KNN.items())]
    result = subprocess.run(['tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work), '--cfg-options', *options],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PORT=str(free_port_pair()), R2O_SKIP_SETUP='1'))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work, result.stdout + result.stderr


@pytest.fixture(scope='module')
def transferred(workspace, pretrained):
    """tools/transfer.sh CKPT 1 with the three tasks, run from the workspace (data/imagenet/ is the generated set)."""
    work, _ = pretrained
    options = small_transfer_options('imagenet_linear', 'data/imagenet', batch=8, image=56)
    result = subprocess.run([os.path.join(ROOT, 'tools', 'transfer.sh'), str(work / 'epoch_1.pth'), '1', *TASKS],
                            cwd=workspace, capture_output=True, text=True, timeout=900,
                            env=dict(os.environ, R2O_SKIP_SETUP='1', WORK_DIR=str(workspace / 'transfer'),
                                     CFG_OPTIONS=' '.join(as_cli(options))))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workspace / 'transfer', result.stdout + result.stderr


def test_knn_monitor_logs_gathers_both_ranks_and_matches_an_independent_evaluation(workspace, pretrained):
    work, log = pretrained
    history = json.loads((work / 'knn_monitor.json').read_text())
    assert [record['epoch'] for record in history] == [0, 1]
    last = history[-1]
    assert last['world_size'] == 2 and last['classes'] == len(CLASSIFICATION_SHAPES)
    assert (last['num_train'], last['num_val']) == (6 * 6, 3 * 6)
    assert last['epoch_seconds'] > 0 and last['seconds'] > 0
    assert 'k-NN monitor, epoch 1: top-1' in log and '% of the last epoch' in log
    # The same sample, embedded in one process from the checkpoint of the same weights (tools/eval_knn.py's
    # functions, a DataLoader, no sharding): the same top-1, up to one image flipped by float rounding.
    base = workspace / 'data' / 'imagenet'
    train = balanced_sample(labelled_folder(str(base / 'train'))[0], KNN['train_per_class'], seed=0)
    val = balanced_sample(labelled_folder(str(base / 'val'))[0], KNN['val_per_class'], seed=1)
    transform = v2.Compose([v2.Resize(round(64 * 8 / 7), interpolation=v2.InterpolationMode.BICUBIC,
                                      antialias=True), v2.CenterCrop(64)])
    encoder = load_encoder(str(work / 'epoch_1.pth'))
    features = {name: extract_features(encoder, samples, batch_size=16, workers=0, transform=transform)
                for name, samples in (('train', train), ('val', val))}
    scores = knn_predict(*features['train'], features['val'][0], len(CLASSIFICATION_SHAPES), k=KNN['k'])
    expected = topk_accuracy(scores, features['val'][1])['top1']
    assert abs(last['top1'] - expected) <= 100.0 / len(val) + 1e-9


def test_balanced_sample_draws_per_class_without_replacement_in_class_order():
    samples = [(f'{c}{i}', c) for c in (2, 0, 1) for i in range(5)] + [('only', 3)]
    chosen = balanced_sample(samples, 3, seed=7)
    assert [label for _, label in chosen] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert len(set(chosen)) == len(chosen) and ('only', 3) in chosen  # a class smaller than 3 gives what it has
    assert chosen == balanced_sample(samples, 3, seed=7)  # the same on every rank and in every run
    # Within a class, the drawn items keep the folder's order.
    assert [name for name, label in chosen if label == 0] == sorted(name for name, label in chosen if label == 0)


@pytest.mark.parametrize('task', TASKS)
def test_transfer_sh_runs_the_task_through_mmpretrain_and_records_its_protocol(task, pretrained, transferred):
    work, _ = pretrained
    out, log = transferred
    metrics = json.loads((out / task / 'metrics.json').read_text())
    assert metrics['finished'] is True and metrics['task'] == task and metrics['mmpretrain'] == '1.2.0'
    assert metrics['checkpoint_sha256'] == file_sha256(str(work / 'epoch_1.pth'))
    assert set(metrics['metrics']) == {'accuracy/top1', 'accuracy/top5'}
    top1, top5 = metrics['metrics']['accuracy/top1'], metrics['metrics']['accuracy/top5']
    # 24 val images: each accuracy is a whole number of them, top-5 at least top-1.
    assert 0.0 <= top1 <= top5 <= 100.0
    assert abs(top1 * 24 / 100 - round(top1 * 24 / 100)) < 1e-4
    assert metrics['reference_protocol'] == task
    found = '\n'.join(metrics['protocol_deviations'])
    assert 'backbone: ResNet-18, pytorch style (protocol: ResNet-50, pytorch style)' in found
    assert 'global batch of this run: 8 (protocol: 4096' in found
    task_log = (out / task / 'transfer.log').read_text()
    assert 'backbone load check passed' in task_log
    losses = [float(x) for x in re.findall(r'Epoch\(train\).*?  loss: ([-+0-9.e]+|nan|inf)', task_log)]
    assert losses and all(0.0 < loss < 10.0 for loss in losses), losses  # finite, about ln 6 = 1.8 at the start
    if task == 'imagenet_linear':
        assert 'frozen backbone check passed' in task_log
        assert 'BatchNorm in training' not in found  # frozen, BN in eval mode, as the protocol says
    else:
        assert 'frozen backbone check' not in task_log
        assert 'training set' not in found  # the config's own SimCLR list, data/imagenet/<n>percent.txt
    # One epoch over the task's training set (all 48 images, or the 12 and 24 of the two lists) in batches of 8:
    # the run's cost record counts batch x iterations.
    images = {'imagenet_linear': 48, 'imagenet_semi_1pct': 12, 'imagenet_semi_10pct': 24}[task]
    cost = metrics['cost']
    assert round(cost['images_per_second'] * cost['wall_seconds']) == 8 * -(-images // 8)


def test_collect_results_writes_the_linear_table_and_a_valid_model_card(pretrained, transferred, tmp_path,
                                                                        tool_main):
    from r2o_mm.results.model_card import read_card, validate_card
    work, _ = pretrained
    out, _ = transferred
    (tmp_path / 'card' / 'configs').mkdir(parents=True)
    card = tmp_path / 'card' / 'configs' / 'metafile.yml'
    shutil.copy(os.path.join(ROOT, 'configs', 'metafile.yml'), card)
    shutil.copy(os.path.join(ROOT, 'README.md'), tmp_path / 'card' / 'README.md')
    code, lines = tool_main('collect_results.py', [str(work), str(out), '--out', str(tmp_path / 'results'),
                                                   '--quiet', '--metafile', str(card)])
    assert code == 0, lines
    table = (tmp_path / 'results' / 'linear.md').read_text()
    metrics = {task: json.loads((out / task / 'metrics.json').read_text())['metrics'] for task in TASKS}
    row = next(line for line in table.splitlines() if line.startswith('| R2O (this code)'))
    cells = [cell.strip() for cell in row.strip('|').split('|')][1:]
    expected = [metrics[t][f'accuracy/top{k}'] for t in TASKS for k in (1, 5)]
    assert [float(cell.split(',')[0]) for cell in cells] == pytest.approx(expected, abs=0.005)
    assert all(', n=1 †' in cell for cell in cells)  # shrunk: the protocol deviates, marked, not compared
    assert '| BYOL (1000 ep, published) | 74.3 | 91.6 | 53.2 | 78.4 | 68.8 | 89 |' in table
    assert '| R2O (300 ep, published) | not published | – |' in table
    assert validate_card(str(card), str(tmp_path / 'card' / 'model-index.yml')) == []
    tiny = next(m for m in read_card(str(card))['Models'] if m['Config'] == CONFIG)
    linear = next(r for r in tiny['Results'] if 'imagenet_linear top-1' in r['Metrics'])
    assert linear['Metrics']['imagenet_linear top-1'] == round(metrics['imagenet_linear']['accuracy/top1'], 2)
    assert (linear['Task'], linear['Dataset']) == ('Image Classification', 'ImageNet-1k')
