"""The model card (configs/metafile.yml, model-index.yml): generated from the
configs and results/published.csv, valid by its own rules and by OpenMMLab's
modelindex, and the weights' hashes recorded the first time a file is read."""
import copy
import os
import shutil

import pandas as pd
import pytest
import torch
import torchvision
import yaml

from r2o_mm.results.model_card import (CARD, INDEX, RELEASED, CardError, build_card, read_card,
                                       update_weights_hash, validate_card, write_card)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PUBLISHED = pd.read_csv(os.path.join(ROOT, 'results', 'published.csv'))


def test_committed_card_is_valid_and_what_the_sources_give():
    assert validate_card() == []
    # The committed card is the one build_card writes from the configs and published.csv (no result of this
    # code's runs is committed): regenerate with tools/collect_results.py --metafile after changing either.
    assert read_card() == build_card(PUBLISHED)
    released = [m for m in read_card()['Models'] if m['Weights']]
    assert sorted(m['Metadata']['Weights File'] for m in released) == sorted(f for f, _ in RELEASED.values())
    metrics = {k: v for m in released[:1] for r in m['Results'] for k, v in r['Metrics'].items()}
    assert metrics == {'coco_1x AP box': 41.7, 'coco_1x AP mask': 38.3, 'voc mIoU': 77.3, 'cityscapes mIoU': 76.6,
                       'cub mIoU': 71.6}


def test_openmmlab_modelindex_reads_the_card_without_errors():
    import modelindex
    index = modelindex.load(INDEX)
    assert {model.name for model in index.models} == {m['Name'] for m in read_card()['Models']}
    assert index.check(silent=True) == []  # every field of every collection, model and result


@pytest.mark.parametrize('change, problem', [
    (lambda c: c['Models'][0].pop('Config'), 'no Config'),
    (lambda c: c['Models'][0].update(Config='configs/nowhere.py'), 'Config configs/nowhere.py does not exist'),
    (lambda c: c['Models'][-1]['Metadata'].update({'Weights SHA256': 'abc'}), 'is not 64 hex digits'),
    (lambda c: c['Models'][-1]['Metadata'].pop('Weights SHA256'), 'Weights without a Weights SHA256 field'),
    (lambda c: c['Models'][-1]['Results'][0]['Metrics'].update({'voc accuracy': 1.0}), "metric 'voc accuracy'"),
    (lambda c: c['Models'][-1]['Results'][0].update(Dataset='Cityscapes'), 'filed under'),
    (lambda c: c['Models'].pop(1), 'configs/r2o_coco.py: a pretraining config the card does not list'),
    (lambda c: c['Models'].append(copy.deepcopy(c['Models'][1])), 'the name is used 2 times'),
    (lambda c: c['Models'][0].update({'In Collection': 'DetCon'}), "In Collection 'DetCon'"),
])
def test_a_broken_card_names_its_problem(change, problem, tmp_path):
    card = read_card()
    change(card)
    (tmp_path / 'configs').mkdir()
    write_card(card, str(tmp_path / 'configs' / 'metafile.yml'), str(tmp_path / 'model-index.yml'))
    problems = validate_card(str(tmp_path / 'configs' / 'metafile.yml'), str(tmp_path / 'model-index.yml'))
    assert any(problem in line for line in problems), problems


def test_hash_is_recorded_at_first_read_then_checked(tmp_path, tool_main):
    (tmp_path / 'configs').mkdir()
    (tmp_path / 'README.md').write_text('the README the card names\n')
    card = tmp_path / 'configs' / 'metafile.yml'
    shutil.copy(CARD, card)
    weights = tmp_path / 'r2o_torchvision.pth'
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    code, lines = tool_main('export_backbone.py', [str(weights), str(tmp_path / 'b.pth'), '--update-card',
                                                   '--card', str(card)])
    assert code == 0, lines
    from r2o_mm.utils.checkpoint import file_sha256
    sha = file_sha256(str(weights))
    assert any(line.startswith(f'recorded sha256 {sha}') for line in lines)
    model = next(m for m in read_card(str(card))['Models'] if m['Name'].endswith('_torchvision'))
    assert model['Metadata']['Weights SHA256'] == sha
    assert validate_card(str(card), index=None) == []
    assert 'matches' in update_weights_hash(str(weights), sha, path=str(card))
    # Another file under the same name is refused before anything is exported.
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    code, lines = tool_main('export_backbone.py', [str(weights), str(tmp_path / 'c.pth'), '--update-card',
                                                   '--card', str(card)])
    assert code == 1 and 'is not the file recorded for r2o_resnet50_in1k_300e_authors_torchvision' in lines[-1]
    assert not (tmp_path / 'c.pth').exists()
    with pytest.raises(CardError, match='no released weights named .mine.pth.; its released weights: '):
        update_weights_hash(str(tmp_path / 'mine.pth'), sha, path=str(card))
    # The hash survives regenerating the card.
    assert next(m for m in build_card(PUBLISHED, path=str(card))['Models']
                if m['Name'].endswith('_torchvision'))['Metadata']['Weights SHA256'] == sha


def test_published_rows_name_a_source_and_mark_what_is_not_published():
    linear = PUBLISHED[PUBLISHED.benchmark.str.startswith('imagenet')]
    assert set(linear.method) >= {'R2O', 'BYOL', 'DetCon-B', 'SlotCon', 'BYOL (mmselfsup)', 'MoCo v2 (mmselfsup)'}
    assert linear.source.str.len().min() > 10
    missing = linear[linear.value.isna()]
    assert set(missing.method) == {'R2O', 'DetCon-B', 'SlotCon'}
    assert missing.source.str.startswith('not published').all()
    byol = linear[(linear.method == 'BYOL')].set_index(['benchmark', 'metric']).value.to_dict()
    assert byol == {('imagenet_linear', 'top-1'): 74.3, ('imagenet_linear', 'top-5'): 91.6,
                    ('imagenet_semi_1pct', 'top-1'): 53.2, ('imagenet_semi_1pct', 'top-5'): 78.4,
                    ('imagenet_semi_10pct', 'top-1'): 68.8, ('imagenet_semi_10pct', 'top-5'): 89.0}


def test_index_imports_the_card():
    with open(INDEX) as handle:
        assert yaml.safe_load(handle) == {'Import': ['configs/metafile.yml']}
