"""The mmcv build's progress lines: units of the total, elapsed, an ETA from the rate so far."""
import subprocess
import sys

from r2o_mm.utils import build_progress


def test_progress_every_five_percent_with_an_eta_from_the_rate_so_far():
    ticks = iter(range(0, 10_000, 30))  # the clock: the start, then unit N arrives at 30 N s
    lines = ['running build_ext\n'] + [f'[{n}/40] c++ -c unit{n}.cpp\n' for n in range(1, 41)] + ['linking\n']
    shown = list(build_progress.progress(lines, clock=lambda: next(ticks)))
    # The first unit, then every 2 of 40 (5%), and the last.
    assert len(shown) == 21
    assert shown[0] == '[setup_env] mmcv build: 1/40 units (2%), 0.5 min elapsed, ETA 19.5 min'
    # 4 units in 2 minutes: 30 s per unit, 36 left -> 18 minutes.
    assert shown[2] == '[setup_env] mmcv build: 4/40 units (10%), 2.0 min elapsed, ETA 18.0 min'
    assert shown[-1] == '[setup_env] mmcv build: 40/40 units (100%), 20.0 min elapsed, linking'


def test_the_tool_keeps_the_whole_output_in_its_log(tmp_path):
    output = 'a compiler warning\n[1/2] c++ a.cpp\n[2/2] c++ b.cpp\nbuilt the wheel\n'
    result = subprocess.run([sys.executable, build_progress.__file__, str(tmp_path / 'build.log')], input=output,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == ''
    assert (tmp_path / 'build.log').read_text() == output
    assert [line.split(' units')[0] for line in result.stderr.splitlines()] == [
        '[setup_env] mmcv build: 1/2', '[setup_env] mmcv build: 2/2']
    assert subprocess.run([sys.executable, build_progress.__file__], capture_output=True, timeout=60).returncode == 2
