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
    # Cells in the user's words ('VOC mIoU', not 'voc mIoU').
    assert drawn[comparable] == {'R2O (this code)': {'table1: VOC mIoU': 77.5},
                                 'published': {'table1: VOC mIoU': 77.3}}
    assert drawn[apart] == {'R2O (this code)': {'table1: Cityscapes mIoU': 20.0},
                             'BYOL (this code)': {'table1: Cityscapes mIoU': 19.0}}
    # Nothing comparable with a published number: no figure (probes.png and the tables show the rest).
    only_deviating = figures.reproduced_vs_published({'other': table.iloc[1:3]}, str(tmp_path / 'd.png'))
    assert only_deviating == {} and not (tmp_path / 'd.png').exists()


@pytest.mark.parametrize('reproduced', ['not run', 'conflict'])
def test_nothing_reproduced_draws_nothing(tmp_path, reproduced):
    table = pd.DataFrame([row('R2O (this code)', 'voc', reproduced, 77.3, '')])
    assert figures.reproduced_vs_published({'table1': table}, str(tmp_path / 'x.png')) == {}
    assert not (tmp_path / 'x.png').exists()


def test_k_2_gets_no_panel_where_zero_descriptors_split_the_masks(tmp_path):
    """K=2 with zero descriptors in the records: one cluster is the zeros,
    the other every real descriptor, whatever the encoder: no panel, and the
    current K's point at K=2 is left out."""
    def record(epoch, k, mbo):
        return {'epoch': epoch, 'K': k, 'mBO': {str(a): v for a, v in mbo.items()}, 'zero_descriptors': 0.27}
    path = tmp_path / 'h.json'
    path.write_text(json.dumps([record(0, 8, {2: 8.7, 4: 13.0, 8: 20.0}), record(2, 2, {2: 8.7, 4: 15.0, 8: 21.0})]))
    drawn = figures.mask_quality_curves({'R2O (this code)': [str(path)]}, str(tmp_path / 'mq.png'))
    assert list(drawn) == ['K = 8', 'K = 4', 'current K']
    assert drawn['current K'] == {'R2O (this code)': {0: 20.0}}
    history = json.loads(path.read_text())
    assert figures.split_by_geometry([history], '2') and not figures.split_by_geometry([history], '4')
    for entry in history:
        entry['zero_descriptors'] = 0.0
    assert not figures.split_by_geometry([history], '2')


def test_the_k_schedule_drawn_is_that_of_the_runs_collected(tmp_path):
    tiny = {'config': 'r2o_tiny_cpu.py', 'epochs': 7, 'mask_source': 'kmeans',
            'k_schedule': {'type': 'ClusterScheduleHook', 'kind': 'cosine', 'start': 8, 'end': 2}}
    byol = dict(tiny, mask_source='whole_image')  # K drives no mask of BYOL's: not drawn
    drawn = figures.k_schedule([tiny, dict(tiny), byol, {'method': 'random init'}], str(tmp_path / 'k.png'))
    assert (tmp_path / 'k.png').stat().st_size > 0
    # cos(e / 7 * pi/2) * (8 - 2) + 2 = 7.85, 7.41, 6.69, 5.74, 4.60, 3.34, 2.00, truncated (7 epochs: no value
    # near an integer but the last, whose cos(pi/2) is a tiny positive float everywhere).
    assert drawn == {'r2o_tiny_cpu: cosine 8 -> 2, 7 epochs': [7, 7, 6, 5, 4, 3, 2]}
    assert figures.k_schedule([byol], str(tmp_path / 'none.png')) == {} and not (tmp_path / 'none.png').exists()


def test_byol_training_curves_leave_out_k(tmp_path):
    for name, source in (('r2o', 'kmeans'), ('byol', 'whole_image')):
        run = tmp_path / name
        (run / '20261203_000000' / 'vis_data').mkdir(parents=True)
        (run / 'pretrain_info.json').write_text(json.dumps({'mask_source': source}))
        (run / '20261203_000000' / 'vis_data' / 'scalars.json').write_text(''.join(
            json.dumps({'iter': i, 'loss': 2.0 - i / 10, 'K': 8, 'tau': 0.99, 'lr': 0.1}) + '\n' for i in (1, 2)))
    import matplotlib.pyplot as plt
    titles = {}
    original = plt.subplots

    def spy(*args, **kwargs):
        fig, axes = original(*args, **kwargs)
        titles['axes'] = axes
        return fig, axes
    plt.subplots = spy
    try:
        for name in ('r2o', 'byol'):
            assert figures.training_curves(str(tmp_path / name), str(tmp_path / f'{name}.png'))
            titles[name] = [axis.get_title() for axis in titles['axes'][0]]
    finally:
        plt.subplots = original
    assert titles['r2o'] == ['loss', 'K (clusters of the masks)', 'tau (target EMA share)', 'learning rate']
    assert titles['byol'] == ['loss', 'tau (target EMA share)', 'learning rate']
