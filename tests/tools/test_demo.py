"""The demo pipeline at its smallest size produces the results table with every row."""
import os
import subprocess
import sys

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_demo_pipeline_produces_the_table(tmp_path):
    result = subprocess.run([sys.executable, 'tools/demo.py', '--size', 'test', '--out', str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert '[11/11] collate results' in result.stdout and 'ETA' in result.stdout
    table = pd.read_csv(tmp_path / 'results' / 'table1.csv', dtype=str, keep_default_na=False)
    assert set(table.row) == {'R2O (this code)', 'BYOL (this code)', 'random init'}
    ran = table[table.benchmark.isin(['voc', 'coco_1x'])]
    assert len(ran) == 9  # 3 methods x (VOC mIoU, COCO AP box, AP mask)
    for value in ran.reproduced:
        assert 0.0 <= float(value) <= 100.0
    assert set(table[~table.benchmark.isin(['voc', 'coco_1x'])].reproduced) == {'not run'}
    assert (ran.difference == 'n/a (protocol deviates)').sum() == 6  # R2O and BYOL have published rows
    # The shrunk protocol lists its deviations from the released one.
    for check in ran['protocol check']:
        assert check.startswith('deviates: ') and 'backbone: ResNet-18' in check and 'global batch' in check
    for name in ('table1.md', 'reproduced_vs_published.png', 'k_schedule.png', 'training_curves_r2o.png'):
        assert (tmp_path / 'results' / name).exists()
