"""Progress of mmcv's compile, for ``tools/setup_env.sh``.

    pip wheel -v ... 2>&1 | python r2o_mm/utils/build_progress.py LOG

Reads the build's output on stdin, keeps all of it in LOG, and prints one
line per step of progress: the units compiled of the total (ninja's
``[N/M]``), the time elapsed and an ETA from the rate so far. Standard
library only: it runs before this package is installed.
"""
from __future__ import annotations

import re
import sys
import time

UNIT = re.compile(r'^\s*\[(\d+)/(\d+)\] ')  # pip -v indents the build's output


def progress(lines, clock=time.monotonic, steps: int = 20, prefix: str = '[setup_env] mmcv build: '):
    """Yields a progress line for the first unit, the last, and each unit
    that crosses another 1/``steps`` of the total (5% by default), from the
    ``[N/M]`` lines of ninja's output."""
    start = clock()
    shown = 0
    for line in lines:
        match = UNIT.match(line)
        if not match:
            continue
        now = clock()
        done, total = int(match.group(1)), int(match.group(2))
        step = done * steps // total  # integers: the same lines on every machine
        if done not in (1, total) and step <= shown:
            continue
        shown = step
        elapsed = now - start
        eta = elapsed / done * (total - done)
        yield (f'{prefix}{done}/{total} units ({100 * done // total}%), {elapsed / 60:.1f} min elapsed'
               + (f', ETA {eta / 60:.1f} min' if done < total else ', linking'))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.split('\n\n')[1].strip(), file=sys.stderr)
        return 2
    with open(argv[0], 'w') as log:
        def lines():
            for line in sys.stdin:
                log.write(line)
                log.flush()
                yield line
        for message in progress(lines()):
            print(message, file=sys.stderr, flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
