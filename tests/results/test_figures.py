"""The figures draw what they say: mBO means over pretraining seeds per K, and
published bars only beside cells whose protocol is the authors' exactly."""
import json

import pandas as pd
import pytest

from r2o_mm.results import figures


def history(path, points):
    """mask_quality.json as MaskQualityHook writes it: [(epoch, K, {K: mBO})]."""
    path.write_text(json.dumps([{'epoch': e, 'K': k, 'mBO': {str(key): v for key, v in mbo.items()}}
                                for e, k, mbo in points]))
    return str(path)


def test_mask_quality_means_over_seeds_per_k_and_at_the_current_k(tmp_path):
    r2o = [history(tmp_path / 'r0.json', [(0, 8, {8: 10.0, 4: 20.0}), (1, 6, {8: 12.0, 4: 22.0, 6: 15.0}),
                                          (2, 4, {8: 14.0, 4: 25.0})]),
           history(tmp_path / 'r1.json', [(0, 8, {8: 11.0, 4: 21.0}), (1, 6, {8: 13.0, 4: 23.0, 6: 16.0}),
                                          (2, 4, {8: 17.0, 4: 28.0})])]
    byol = [history(tmp_path / 'b0.json', [(0, 8, {8: 10.0, 4: 20.0}), (2, 4, {8: 10.5, 4: 20.5})])]
    drawn = figures.mask_quality_curves({'R2O': r2o, 'BYOL': byol, 'none': [str(tmp_path / 'missing.json')]},
                                        str(tmp_path / 'mq.png'))
    assert (tmp_path / 'mq.png').stat().st_size > 0
    # K=6 was measured at one epoch only: no panel of its own; every epoch the hook measured is drawn.
    assert list(drawn) == ['K = 8', 'K = 4', 'current K']
    assert drawn['K = 8'] == {'R2O': {0: 10.5, 1: 12.5, 2: 15.5}, 'BYOL': {0: 10.0, 2: 10.5}}
    assert drawn['K = 4']['R2O'] == {0: 20.5, 1: 22.5, 2: 26.5}
    # At the current K: epoch 0 at K=8, epoch 1 at K=6, epoch 2 at K=4.
    assert drawn['current K'] == {'R2O': {0: 10.5, 1: 15.5, 2: 26.5}, 'BYOL': {0: 10.0, 2: 20.5}}
    assert figures.mask_quality_curves({'x': [str(tmp_path / 'missing.json')]}, str(tmp_path / 'no.png')) == {}
    assert not (tmp_path / 'no.png').exists()


def row(name, benchmark, reproduced, published, check, ci=''):
    return {'row': name, 'benchmark': benchmark, 'metric': 'mIoU', 'reproduced': reproduced, 'published': published,
            'protocol check': check, '95% CI': ci}


def test_published_bars_stand_only_beside_exact_protocols(tmp_path):
    exact = "authors' protocol (exact)"
    table = pd.DataFrame([row('R2O (this code)', 'voc', '77.50 ± 0.71', 77.3, exact, '[71.15, 83.85]'),
                          row('R2O (this code)', 'cityscapes', '20.00', 76.6, 'deviates: backbone: ResNet-18'),
                          row('BYOL (this code)', 'cityscapes', '19.00', 74.6, 'deviates: backbone: ResNet-18'),
                          row('R2O (this code)', 'cub', 'not run', 71.6, '')])
    drawn = figures.reproduced_vs_published({'table1': table}, str(tmp_path / 'rvp.png'))
    assert (tmp_path / 'rvp.png').stat().st_size > 0
    comparable, apart = list(drawn)
    assert comparable.startswith("authors' protocol (exact)") and 'not comparable' in apart
    assert drawn[comparable] == {'R2O (this code)': {'table1: voc mIoU': 77.5},
                                 'published': {'table1: voc mIoU': 77.3}}
    assert drawn[apart] == {'R2O (this code)': {'table1: cityscapes mIoU': 20.0},
                             'BYOL (this code)': {'table1: cityscapes mIoU': 19.0}}
    only_deviating = figures.reproduced_vs_published({'other': table.iloc[1:3]}, str(tmp_path / 'd.png'))
    assert list(only_deviating) == [apart] and 'published' not in only_deviating[apart]


@pytest.mark.parametrize('reproduced', ['not run', 'conflict'])
def test_nothing_reproduced_draws_nothing(tmp_path, reproduced):
    table = pd.DataFrame([row('R2O (this code)', 'voc', reproduced, 77.3, '')])
    assert figures.reproduced_vs_published({'table1': table}, str(tmp_path / 'x.png')) == {}
    assert not (tmp_path / 'x.png').exists()
