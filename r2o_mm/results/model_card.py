"""The model card in OpenMMLab's metafile format: ``configs/metafile.yml`` (one
collection, R2O) and the top-level ``model-index.yml`` that imports it, as
mmpretrain's ``configs/*/metafile.yml`` and ``model-index.yml`` are laid out
(Collections with Metadata and Paper; Models with Name, In Collection,
Metadata, Results of Task, Dataset and Metrics, Config, Weights).

Models: one per pretraining config of ``configs/`` (Weights: none, the runs
are yours; Results: the reproduced values that ``tools/collect_results.py
--metafile`` found) and the authors' three released weight files (Results:
the published numbers of ``results/published.csv``). The authors publish no
hashes and the files are not reachable here, so each file's ``Weights
SHA256`` is null until ``tools/export_backbone.py FILE OUT --update-card``
reads the file the first time; from then on a file that differs is refused.
:func:`build_card` writes the card from these facts, keeping the hashes
already recorded; :func:`validate_card` lists every problem of a card.
"""
from __future__ import annotations

import os
import re

import pandas as pd
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CARD = os.path.join(ROOT, 'configs', 'metafile.yml')
INDEX = os.path.join(ROOT, 'model-index.yml')
COLLECTION = 'R2O'
WEIGHTS_SOURCE = 'https://huggingface.co/KonstantinosKK/r2o'

# benchmark -> (Task, Dataset) of a Results entry
BENCHMARK_TASKS = {
    'coco_1x': ('Instance Segmentation', 'COCO'),
    'coco_2x': ('Instance Segmentation', 'COCO'),
    'coco_mocov2_1x': ('Instance Segmentation', 'COCO'),
    'voc': ('Semantic Segmentation', 'PASCAL VOC 2012'),
    'cityscapes': ('Semantic Segmentation', 'Cityscapes'),
    'cub': ('Unsupervised Foreground Segmentation', 'CUB-200-2011'),
    'knn': ('Image Classification', 'ImageNet-100'),
    'voc_probe': ('Semantic Segmentation', 'PASCAL VOC 2012'),
    'imagenet_linear': ('Image Classification', 'ImageNet-1k'),
    'imagenet_semi_1pct': ('Image Classification', 'ImageNet-1k'),
    'imagenet_semi_10pct': ('Image Classification', 'ImageNet-1k'),
}
# The metric names of the tables (r2o_mm/results/collect.py), prefixed by the benchmark
# where one dataset has several protocols.
METRIC_NAMES = {'AP box', 'AP mask', 'mIoU', 'top-1', 'top-5'}

# Pretraining configs: name -> (config, training data)
CONFIG_MODELS = {
    'r2o_resnet50_in1k_300e': ('configs/r2o_imagenet_300e.py', 'ImageNet-1k'),
    'r2o_resnet50_coco_800e': ('configs/r2o_coco.py', 'COCO train2017 (unlabelled)'),
    'r2o_resnet50_in100_200e': ('configs/r2o_imagenet100_full.py', 'ImageNet-100'),
    'r2o_resnet50_in100_200e_byol': ('configs/r2o_imagenet100_byol.py', 'ImageNet-100'),
    'r2o_resnet50_in100_200e_constant_k': ('configs/r2o_imagenet100_constant_k.py', 'ImageNet-100'),
    'r2o_resnet50_in100_200e_no_mask_prediction': ('configs/r2o_imagenet100_no_mask_prediction.py', 'ImageNet-100'),
    'r2o_resnet50_in100_200e_no_slic_prior': ('configs/r2o_imagenet100_no_slic_prior.py', 'ImageNet-100'),
    'r2o_resnet18_tiny_cpu': ('configs/r2o_tiny_cpu.py', 'a folder of small images (tests and demo)'),
}
# The authors' release (docs/transfer.md): name -> (file, format)
RELEASED = {
    'r2o_resnet50_in1k_300e_authors_training_checkpoint': (
        'r2o_original.pth', "the authors' training checkpoint (DDP state_dict with module.online_network.encoder.*, "
                            'target network, projector, predictor, LARS state)'),
    'r2o_resnet50_in1k_300e_authors_torchvision': ('r2o_torchvision.pth', 'torchvision ResNet-50 state_dict'),
    'r2o_resnet50_in1k_300e_authors_detectron2': ('r2o_detectron2.pkl', 'detectron2 weight file (.pkl)'),
}


class CardError(ValueError):
    """A model card that cannot be read or updated (one line)."""


def _results(rows: list[tuple[str, str, float]]) -> list[dict] | None:
    """[(benchmark, metric, value)] -> Results entries, one per benchmark."""
    grouped: dict[str, dict] = {}
    for benchmark, metric, value in rows:
        grouped.setdefault(benchmark, {})[f'{benchmark} {metric}'] = round(float(value), 2)
    entries = [dict(Task=BENCHMARK_TASKS[b][0], Dataset=BENCHMARK_TASKS[b][1], Metrics=m) for b, m in grouped.items()]
    return entries or None


def published_results(published: pd.DataFrame) -> list[dict] | None:
    """R2O's published numbers for ImageNet-1k pretraining (rows with a value)."""
    rows = published[(published.method == 'R2O') & (published.pretraining_data == 'ImageNet-1k')
                     & published.value.notna()]
    return _results([(r.benchmark, r.metric, r.value) for r in rows.itertuples()])


def _config_metadata(config: str) -> dict:
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(ROOT, config))
    recipe = cfg.get('released_recipe') or {}
    metadata = {'Epochs': int(cfg.train_cfg.max_epochs),
                'Batch Size': recipe.get('global_batch') or f'{cfg.train_dataloader.batch_size} per process',
                'Architecture': [f'ResNet-{cfg.model.depth}']}
    return metadata


def reproduced_results(tables: dict) -> dict[str, tuple[list, list]]:
    """{config path: (Results entries, notes)} from collected tables: the
    mean of every cell that ran from a recipe's last snapshot, and a line per
    cell saying over what (n, what varied, the protocol check, the machine)."""
    from .collect import pretraining_of
    found: dict[str, tuple[list, list]] = {}
    for frame in tables.values():
        for _, row in frame.iterrows():
            if str(row['reproduced']) in ('not run', 'conflict', 'failed') or not row['checkpoint']:
                continue
            info = pretraining_of(str(row['checkpoint']).split('; ')[0]) or {}
            if not info.get('config'):
                continue
            if str(row.get('snapshot', '')).startswith('epoch') and \
                    str(row['snapshot']) != f"epoch {info.get('epochs')}":
                continue  # an intermediate snapshot (epoch_100.pth of a 300-epoch run) is not the recipe's result
            config = f"configs/{os.path.basename(info['config'])}"  # pretrain_info.json names the config file
            rows, notes = found.setdefault(config, ([], []))
            mean = float(str(row['reproduced']).split(' ')[0])
            rows.append((row['benchmark'], row['metric'], mean))
            notes.append(f"{row['row']}, {row['benchmark']} {row['metric']}: {mean:.2f}, n={row['n']} "
                         f"({row['varied']}), protocol: {row['protocol check']}, machine: {row['machine']}")
    return found


def read_card(path: str = CARD) -> dict:
    try:
        with open(path) as handle:
            card = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise CardError(f'model card {path}: cannot be read ({error})') from None
    if not isinstance(card, dict) or not isinstance(card.get('Models'), list):
        raise CardError(f'model card {path}: no Models list')
    return card


def _recorded_hashes(path: str) -> dict:
    if not os.path.isfile(path):
        return {}
    return {m['Name']: (m.get('Metadata') or {}).get('Weights SHA256') for m in read_card(path)['Models']}


def build_card(published: pd.DataFrame, tables: dict | None = None, path: str = CARD) -> dict:
    """The card from the configs, the release and the published (and
    reproduced) numbers; the hashes recorded in ``path`` are kept."""
    hashes = _recorded_hashes(path)
    reproduced = reproduced_results(tables) if tables else {}
    models, recipes = [], {}
    for name, (config, data) in CONFIG_MODELS.items():
        results, notes = reproduced.get(config, ([], []))
        recipes[config] = _config_metadata(config)
        metadata = dict(recipes[config], **{'Training Data': data})
        if notes:
            metadata['Reproduced Results'] = notes
        models.append({'Name': name, 'In Collection': COLLECTION, 'Metadata': metadata,
                       'Results': _results(results), 'Config': config, 'Weights': None})
    recipe = recipes[CONFIG_MODELS['r2o_resnet50_in1k_300e'][0]]
    for name, (file, kind) in RELEASED.items():
        models.append({'Name': name, 'In Collection': COLLECTION,
                       'Metadata': dict(recipe, **{'Training Data': 'ImageNet-1k', 'Weights File': file,
                                                   'Weights Format': kind, 'Weights SHA256': hashes.get(name)}),
                       'Results': published_results(published),
                       'Config': CONFIG_MODELS['r2o_resnet50_in1k_300e'][0], 'Weights': WEIGHTS_SOURCE})
    collection = {
        'Name': COLLECTION,
        'Metadata': {'Training Data': ['ImageNet-1k', 'ImageNet-100', 'COCO'],
                     'Training Techniques': ['LARS', 'BYOL', 'SLIC superpixels', 'K-means region masks'],
                     'Training Resources': '128 GPUs, global batch 4096 (the released 300-epoch recipe)',
                     'Architecture': ['ResNet']},
        'Paper': {'Title': 'Refine and Represent: Region-to-Object Representation Learning',
                  'URL': 'https://arxiv.org/abs/2208.11821'},
        'README': '../README.md',  # relative to the card, as OpenMMLab's modelindex resolves it
    }
    return {'Collections': [collection], 'Models': models}


def write_card(card: dict, path: str = CARD, index: str | None = INDEX):
    with open(path, 'w') as handle:
        yaml.safe_dump(card, handle, sort_keys=False, allow_unicode=True, width=110)
    if index:
        relative = os.path.relpath(os.path.abspath(path), os.path.dirname(os.path.abspath(index)))
        with open(index, 'w') as handle:
            yaml.safe_dump({'Import': [relative]}, handle, sort_keys=False)


def update_weights_hash(file: str, sha256: str, name: str | None = None, path: str = CARD,
                        record: bool = True) -> str:
    """Records ``sha256`` for the released weight file ``file`` (its model
    ``name``, or the model whose Weights File is the file's name) the first
    time; afterwards checks it. Returns what was done, in words; raises
    :class:`CardError` when the file is not the one recorded or not in the
    card. ``record=False`` only checks (before the file is exported)."""
    card = read_card(path)
    released = [m for m in card['Models'] if 'Weights File' in (m.get('Metadata') or {})]
    if name:
        matches = [m for m in released if m['Name'] == name]
    else:
        matches = [m for m in released if m['Metadata']['Weights File'] == os.path.basename(file)]
    if not matches:
        choices = ', '.join(f"{m['Name']} ({m['Metadata']['Weights File']})" for m in released)
        raise CardError(f'{path} has no released weights named {name or os.path.basename(file)!r}; '
                        f'its released weights: {choices} (--update-card NAME picks one)')
    model = matches[0]
    recorded = model['Metadata'].get('Weights SHA256')
    if recorded == sha256:
        return f"sha256 of {file} matches {model['Name']} in {path}"
    if recorded:
        raise CardError(f"{file} (sha256 {sha256}) is not the file recorded for {model['Name']} in {path} "
                        f'(sha256 {recorded}, recorded the first time it was read)')
    if not record:
        return f"{model['Name']} has no sha256 yet in {path}"
    model['Metadata']['Weights SHA256'] = sha256
    write_card(card, path, index=None)
    return f"recorded sha256 {sha256} of {file} for {model['Name']} in {path}"


_HEX64 = re.compile(r'^[0-9a-f]{64}$')


def validate_card(path: str = CARD, index: str | None = INDEX, root: str = ROOT) -> list[str]:
    """Every problem of the card, one line each ([] when it is valid);
    ``index=None`` leaves out the check of model-index.yml."""
    try:
        card = read_card(path)
    except CardError as error:
        return [str(error)]
    problems = []
    collections = {c.get('Name') for c in card.get('Collections') or []}
    for collection in card.get('Collections') or []:
        for key in ('Name', 'Metadata', 'Paper'):
            if not collection.get(key):
                problems.append(f'collection {collection.get("Name")}: no {key}')
        if not (collection.get('Paper') or {}).get('URL'):
            problems.append(f'collection {collection.get("Name")}: Paper has no URL')
        readme = collection.get('README')
        if readme and not os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(path)), readme)):
            problems.append(f'collection {collection.get("Name")}: README {readme} is not a file (relative to the card)')
    names = [m.get('Name') for m in card['Models']]
    problems += [f'model {n}: the name is used {names.count(n)} times' for n in sorted(set(names)) if names.count(n) > 1]
    for model in card['Models']:
        where = f"model {model.get('Name')}"
        for key in ('Name', 'In Collection', 'Metadata', 'Config'):
            if not model.get(key):
                problems.append(f'{where}: no {key}')
        for key in ('Results', 'Weights'):
            if key not in model:
                problems.append(f'{where}: no {key} field (null when there is none)')
        if model.get('In Collection') not in collections:
            problems.append(f"{where}: In Collection {model.get('In Collection')!r} is not a collection of the card")
        if model.get('Config') and not os.path.isfile(os.path.join(root, model['Config'])):
            problems.append(f"{where}: Config {model['Config']} does not exist")
        metadata = model.get('Metadata') or {}
        if 'Training Data' not in metadata:
            problems.append(f'{where}: Metadata has no Training Data')
        if model.get('Weights'):
            if 'Weights SHA256' not in metadata:
                problems.append(f'{where}: Weights without a Weights SHA256 field')
            elif metadata['Weights SHA256'] is not None and not _HEX64.match(str(metadata['Weights SHA256'])):
                problems.append(f"{where}: Weights SHA256 {metadata['Weights SHA256']!r} is not 64 hex digits")
        for result in model.get('Results') or []:
            for key in ('Task', 'Dataset', 'Metrics'):
                if not result.get(key):
                    problems.append(f'{where}: a result without {key}')
            for metric, value in (result.get('Metrics') or {}).items():
                benchmark, _, name = str(metric).partition(' ')
                if benchmark not in BENCHMARK_TASKS or name not in METRIC_NAMES:
                    problems.append(f'{where}: metric {metric!r} is not "<benchmark> <metric>" of the tables')
                elif BENCHMARK_TASKS[benchmark] != (result.get('Task'), result.get('Dataset')):
                    problems.append(f'{where}: metric {metric!r} filed under {result.get("Task")} / '
                                    f'{result.get("Dataset")}')
                if not isinstance(value, (int, float)):
                    problems.append(f'{where}: metric {metric!r} has the value {value!r}, not a number')
    configs = {m.get('Config') for m in card['Models']}
    for config in sorted(os.listdir(os.path.join(root, 'configs'))):
        if config.startswith('r2o_') and config.endswith('.py') and f'configs/{config}' not in configs:
            problems.append(f'configs/{config}: a pretraining config the card does not list')
    if index is None:
        return problems
    try:
        with open(index) as handle:
            imports = (yaml.safe_load(handle) or {}).get('Import') or []
    except (OSError, yaml.YAMLError) as error:
        return problems + [f'{index}: cannot be read ({error})']
    target = os.path.relpath(os.path.abspath(path), os.path.dirname(os.path.abspath(index)))
    if target not in imports:
        problems.append(f'{index}: does not import {target}')
    return problems
