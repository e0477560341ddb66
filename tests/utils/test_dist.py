"""r2o_mm.utils.dist: the node check of the launchers names the launcher in its one line."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_missing_node_is_one_line_naming_the_launcher(free_port):
    port = free_port()
    result = subprocess.run([sys.executable, '-m', 'r2o_mm.utils.dist', '127.0.0.1', str(port), '2', '0', '1',
                             '--tool', 'transfer.sh'], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ''
    assert result.stderr == (f'transfer.sh: not all 2 nodes joined 127.0.0.1:{port} within 1 s; '
                             'start the same command on every node (NODE_RANK 0..1)\n')
