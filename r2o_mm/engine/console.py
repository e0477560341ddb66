"""What a run prints on the console: the lines that matter, not the dump.

mmengine's Runner logs the system environment, the whole config and the
order of its hooks while it is built: hundreds of lines that bury the few a
user reads. :class:`QuietStartMixin` keeps those INFO lines in the run's log
file and off the console (and mmseg's per-class table); warnings and errors
still reach both, and so does everything after the runner is built
(progress with ETA, evaluations, saves).
"""
from __future__ import annotations

import logging


# INFO records that stay in the log file at any time: mmseg's per-class IoU table (22 lines for VOC; the
# summary line with mIoU follows it on the console).
FILE_ONLY_STARTS = ('per class results', '\n+---')


class _WhileBuilding(logging.Filter):
    """Drops records below WARNING while ``active``, and the FILE_ONLY_STARTS ones always."""

    def __init__(self):
        super().__init__()
        self.active = True

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return not self.active and not str(record.getMessage()).startswith(FILE_ONLY_STARTS)


def console_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers of ``logger`` that write to a terminal stream, not a file."""
    return [h for h in logger.handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]


class QuietStartMixin:
    """Put before mmengine's Runner in a subclass's bases: the INFO lines
    logged while the runner is built go to the log file only."""

    def build_logger(self, *args, **kwargs):
        logger = super().build_logger(*args, **kwargs)
        self._start_filter = _WhileBuilding()
        for handler in console_handlers(logger):
            handler.addFilter(self._start_filter)
        return logger

    def __init__(self, *args, **kwargs):
        try:
            super().__init__(*args, **kwargs)
        finally:
            if hasattr(self, '_start_filter'):
                self._start_filter.active = False


def run_header(config: str, work_dir: str, world_size: int, resume_from: str | None) -> str:
    """The run's first console line: config, work dir, world size and device,
    machine, and whether it resumes."""
    import torch

    from ..utils.machine import machine_fingerprint
    device = f'{torch.cuda.device_count()} visible GPU(s)' if torch.cuda.is_available() else 'CPU'
    start = f'resuming from {resume_from}' if resume_from else 'from the start'
    return (f'{config}: work dir {work_dir}, world size {world_size} ({device}), '
            f"{machine_fingerprint()['name']}, {start}; full log (environment, config) in the work dir")


def closing_line(work_dir: str, log_dir: str) -> str:
    """The run's last console line: where the checkpoints, the log and the
    metrics are, and the next command (the transfer of the newest snapshot)."""
    import glob
    import os.path as osp
    import re
    snapshots = sorted(glob.glob(osp.join(work_dir, 'epoch_*.pth')),
                       key=lambda p: int(re.search(r'epoch_(\d+)\.pth$', p).group(1)))
    metrics = [osp.basename(p) for p in ('pretrain_info.json', 'mask_quality.json', 'knn_monitor.json')
               if osp.isfile(osp.join(work_dir, p))]
    logs = sorted(glob.glob(osp.join(log_dir, '*.log')))
    text = (f"done: checkpoints {osp.join(work_dir, 'epoch_*.pth')} and last.pth; "
            f"log {logs[-1] if logs else log_dir}; metrics {', '.join(metrics) or 'none'} in {work_dir}")
    if snapshots:
        text += f'; next: tools/transfer.sh {snapshots[-1]} 8'
    return text
