"""The order in which the suite's files start is the one tests/conftest.py gives."""
import os

from conftest import LONGEST_FIRST

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_longest_files_are_named_by_paths_that_exist_and_xdist_keeps_their_order():
    missing = [path for path in LONGEST_FIRST if not os.path.isfile(os.path.join(ROOT, path))]
    assert missing == [] and len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
    # xdist's default would start the files with the most tests first, whatever the collection order.
    command = [line for line in open(os.path.join(ROOT, 'tools', 'run_tests.sh'))
               if line.startswith('exec ') and ' -m pytest ' in line]
    assert len(command) == 1 and '--dist loadfile --no-loadscope-reorder' in command[0]
