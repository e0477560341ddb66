"""Runs that survive what clusters do: atomic checkpoints, a ``last``
checkpoint every epoch, preemption by signal, exact resume inside an epoch.

* :class:`R2ORunner` writes every checkpoint to a temporary name, flushes it
  to disk and renames it: a reader (or a resume) never sees half a file, and
  ``last_checkpoint`` (written by the hooks after the save returns) only ever
  names complete files.
* :class:`LastCheckpointHook` replaces ``last.pth`` after every epoch, beside
  the released every-100-epoch snapshots, so a kill loses at most one epoch.
* :class:`PreemptionHook`: on SIGTERM (or the signals it is given, e.g.
  SIGUSR1 from ``sbatch --signal``) every rank finishes its iteration, the
  ranks agree through an all-reduce, rank 0 saves ``last.pth`` *at that
  iteration*, and every rank exits with :data:`PREEMPTED_EXIT_CODE`; under
  Slurm the job requeues itself.
* :class:`ResumableEpochBasedTrainLoop` continues a checkpoint taken inside
  an epoch with the next batch of the same epoch, in the same order.
* :func:`resolve_resume` picks the checkpoint ``--resume`` loads: the one
  ``last_checkpoint`` names if it is complete, else (one line says so) the
  newest complete one.
"""
from __future__ import annotations

import glob
import os
import os.path as osp
import signal
import subprocess
import zipfile

import torch
from mmengine.dist import all_gather, all_reduce, barrier, get_rank, get_world_size, is_distributed, master_only
from mmengine.hooks import Hook
from mmengine.registry import HOOKS, LOOPS, RUNNERS
from mmengine.runner import EpochBasedTrainLoop, Runner
from .console import QuietStartMixin

# EX_TEMPFAIL: "try again later", what a preempted job is.
PREEMPTED_EXIT_CODE = 75
# What a checkpoint needs to hold for a resume.
RESUME_KEYS = ('meta', 'state_dict', 'optimizer', 'message_hub')
# Fault injection for the tests: kill this process while writing a
# checkpoint whose name contains this string, after FAULT_AFTER_ENV such
# saves went through (default 0).
FAULT_ENV, FAULT_AFTER_ENV = 'R2O_FAULT_KILL_DURING_SAVE', 'R2O_FAULT_AFTER_SAVES'
# ... and every process of the run after this iteration (a node failure).
KILL_AT_ENV = 'R2O_FAULT_KILL_AT_ITER'
# ... and a slow run: sleep after each iteration for the seconds this file
# holds (the Slurm drills wait for a time limit; the numbers do not change).
SLOW_ENV = 'R2O_FAULT_SLOW_FILE'


def _write_last_checkpoint(work_dir: str, path: str):
    """``last_checkpoint`` names ``path`` relative to the work dir (a copied
    or moved work dir resumes from its own files); replaced atomically."""
    target = osp.join(work_dir, 'last_checkpoint')
    with open(target + '.tmp', 'w') as handle:
        handle.write(osp.relpath(path, work_dir))
    os.replace(target + '.tmp', target)


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; the message is one line naming the
    file, the space needed and how to resume. Nothing of it is left behind."""


class NoTrainingStepError(ValueError):
    """An epoch of this run would make no optimiser step."""


def resume_command() -> str:
    """This process's command line with ``--resume`` (and no launcher arguments)."""
    import shlex
    import sys
    argv, kept, skip = sys.argv[1:], [], False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ('--launcher', '--local-rank', '--local_rank') or (arg == '--resume' and index + 1 < len(argv)
                                                                       and argv[index + 1].endswith('.pth')):
            skip = True
            continue
        if arg.startswith(('--local-rank=', '--local_rank=', '--launcher=')) or arg in ('--resume', '--overwrite'):
            continue
        kept.append(arg)
    return ' '.join(shlex.quote(a) for a in ['python', 'tools/train.py', *kept, '--resume'])


@RUNNERS.register_module()
class R2ORunner(QuietStartMixin, Runner):
    """mmengine's Runner whose checkpoints are written atomically, and whose
    start-up dump (environment, config, hook order) goes to the log file
    only (:class:`~r2o_mm.engine.console.QuietStartMixin`)."""

    _fault_saves = 0

    @master_only
    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs):
        temporary = f'{filename}.tmp-{os.getpid()}'
        source, target = osp.join(out_dir, temporary), osp.join(out_dir, filename)
        try:
            super().save_checkpoint(out_dir, temporary, *args, **kwargs)
            with open(source, 'rb') as handle:
                os.fsync(handle.fileno())
        except (OSError, RuntimeError) as error:  # torch's zip writer raises RuntimeError on a full disk
            if osp.exists(source):
                os.remove(source)
            raise CheckpointWriteError(self._write_failure(target, error)) from None
        fault = os.environ.get(FAULT_ENV)
        if fault and fault in filename:  # the tests' kill "during" the write
            R2ORunner._fault_saves += 1
            if R2ORunner._fault_saves > int(os.environ.get(FAULT_AFTER_ENV, 0)):
                with open(source, 'r+b') as handle:
                    handle.truncate(os.path.getsize(source) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        os.replace(source, target)

    def _write_failure(self, target: str, error: Exception) -> str:
        import errno
        import shutil
        from .preflight import checkpoint_bytes
        model = self.model.module if hasattr(self.model, 'module') else self.model
        needed = checkpoint_bytes(model, type(self.optim_wrapper.optimizer).__name__)
        free = shutil.disk_usage(osp.dirname(target)).free
        full = getattr(error, 'errno', None) == errno.ENOSPC or 'write failed' in str(error) or free < needed
        reason = 'no space left on device' if full else str(error).splitlines()[0][:160]
        kept = 'the earlier checkpoints and last_checkpoint are as they were'
        return (f'could not write checkpoint {target}: {reason} (it needs about {needed / 1e6:.0f} MB; '
                f'{free / 1e6:.0f} MB free there; the partial file was removed); {kept}. '
                f'Free space, then resume with: {resume_command()}')


def checkpoint_problem(path: str) -> str | None:
    """Why ``path`` cannot be resumed from (truncated, corrupt, missing a
    key a resume needs), or None. Reads the archive memory-mapped."""
    if not osp.isfile(path):
        return 'no such file'
    if not zipfile.is_zipfile(path):
        return 'truncated or corrupt (not a complete torch archive)'
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001  any failure to read means "do not resume from it"
        return f'unreadable ({type(error).__name__}: {str(error).splitlines()[0][:120]})'
    missing = [key for key in RESUME_KEYS if key not in checkpoint]
    return f'lacks {", ".join(missing)}' if missing else None


def resolve_resume(work_dir: str, say=print) -> str | None:
    """The checkpoint an automatic resume loads: the one ``last_checkpoint``
    names when it is complete; else, after one line naming the file and the
    reason, the newest complete ``*.pth`` of the work dir; None without any."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as handle:
            named = handle.read().strip()
        if not osp.isabs(named):
            named = osp.join(work_dir, named)
        elif osp.dirname(osp.abspath(named)) != osp.abspath(work_dir):
            # An absolute name from a work dir this one was copied from: its own file of that name.
            own = osp.join(work_dir, osp.basename(named))
            say(f'resume: last_checkpoint names {named}, outside {work_dir}; resuming from {own}, '
                'this work dir\'s own file')
            named = own
        problem = checkpoint_problem(named)
        if problem is None:
            return named
        say(f'resume: {named} is {problem}; falling back to the newest complete checkpoint in {work_dir}')
    candidates = sorted(glob.glob(osp.join(work_dir, '*.pth')), key=osp.getmtime, reverse=True)
    for path in candidates:
        if path != named and checkpoint_problem(path) is None:
            return path
    return None


def outside_work_dir(checkpoint: str, work_dir: str) -> str | None:
    """A line when an explicit ``--resume`` file lies outside the work dir."""
    if osp.dirname(osp.abspath(checkpoint)) == osp.abspath(work_dir):
        return None
    return (f'--resume {checkpoint}: this file is outside the work dir {work_dir}; the run continues from it '
            f'and writes its checkpoints to {work_dir}')


def model_mismatch(checkpoint_path: str, model: torch.nn.Module) -> str | None:
    """Whether the checkpoint's weights fit ``model`` (same keys, same
    shapes); None when they do, else what differs, in a few words."""
    state = torch.load(checkpoint_path, map_location='cpu', weights_only=True, mmap=True)['state_dict']
    ours = model.state_dict()
    missing, unexpected = sorted(set(ours) - set(state)), sorted(set(state) - set(ours))
    shapes = [k for k in set(ours) & set(state) if tuple(ours[k].shape) != tuple(state[k].shape)]
    if not (missing or unexpected or shapes):
        return None
    parts = []
    for label, keys in (('missing', missing), ('unexpected', unexpected), ('other shapes', sorted(shapes))):
        if keys:
            parts.append(f'{label}: {", ".join(keys[:3])}{" ..." if len(keys) > 3 else ""} ({len(keys)})')
    return '; '.join(parts)


@HOOKS.register_module()
class RunShapeHook(Hook):
    """Records world size and global batch in every checkpoint, and warns
    once on resume when they differ from the checkpoint's (the lr and the
    schedules follow the new global batch; the run is then not a
    continuation of the same recipe)."""

    priority = 'VERY_LOW'

    def _shape(self, runner) -> dict:
        batch = runner.train_dataloader.batch_size
        accumulation = getattr(runner.optim_wrapper, '_accumulative_counts', 1)
        return dict(world_size=get_world_size(), global_batch=batch * get_world_size() * accumulation)

    def before_train(self, runner):
        accumulation = getattr(runner.optim_wrapper, '_accumulative_counts', 1)
        if len(runner.train_dataloader) // accumulation < 1:
            shape = self._shape(runner)
            raise NoTrainingStepError(
                f'{len(runner.train_dataloader.dataset)} images and a global batch of {shape["global_batch"]} '
                f'({runner.train_dataloader.batch_size} per process x {shape["world_size"]} process(es)): '
                'an epoch would make no optimiser step and train nothing; set a smaller '
                'train_dataloader.batch_size, use fewer processes, or add images')

    def before_save_checkpoint(self, runner, checkpoint: dict):
        checkpoint['meta'].update(self._shape(runner))
        # Whose run this is: tools/train.py refuses a work dir of another run.
        checkpoint['meta']['run_fingerprint'] = runner.cfg.get('run_fingerprint')

    def after_load_checkpoint(self, runner, checkpoint: dict):
        earlier = {k: checkpoint.get('meta', {}).get(k) for k in ('world_size', 'global_batch')}
        now = self._shape(runner)
        changed = [f'{k} {earlier[k]} -> {now[k]}' for k in now if earlier[k] is not None and earlier[k] != now[k]]
        if changed:
            runner.logger.warning(f'resumed with a different run shape ({", ".join(changed)}): '
                                  'the lr follows the new global batch, so this is not the same run continued')


@HOOKS.register_module()
class LastCheckpointHook(Hook):
    """Saves ``last.pth`` after every epoch (one file, replaced each time) and
    points ``last_checkpoint`` at it: a kill loses at most one epoch."""

    priority = 'VERY_LOW'  # after CheckpointHook: last_checkpoint names last.pth

    def after_train_epoch(self, runner):
        runner.save_checkpoint(runner.work_dir, 'last.pth')
        if get_rank() == 0:
            _write_last_checkpoint(runner.work_dir, osp.join(runner.work_dir, 'last.pth'))


# Preemption signals received while the Runner is being built (a requeued
# job signalled again during its start-up): PreemptionHook acts on them at
# the first iteration instead of the process dying of SIGUSR1's default action.
EARLY_SIGNALS: list[int] = []


def catch_early_signals(names=('SIGTERM', 'SIGUSR1')):
    """Until PreemptionHook installs its own handlers: remember the signal."""
    for name in names:
        signal.signal(getattr(signal, name), lambda number, frame: EARLY_SIGNALS.append(number))


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Checkpoint at the current iteration and exit on a preemption signal.

    Args:
        signals: names of the signals that mean "preempted" (SIGTERM is what
            Slurm and Kubernetes send; ``sbatch --signal=USR1@120`` sends
            SIGUSR1 two minutes before the end).
        requeue: under Slurm, ``scontrol requeue $SLURM_JOB_ID`` after the
            save (the job must allow requeueing); ``tools/slurm_train.sh``
            always resumes, so the requeued job continues by itself.
        ctrl_c: SIGINT (Ctrl-C) saves the same way, but exits with 130 and
            never requeues; a second Ctrl-C stops at once, and
            ``tools/train.py`` then says in one line what was kept.
    """

    priority = 'VERY_LOW'

    def __init__(self, signals=('SIGTERM', 'SIGUSR1'), requeue: bool = True, ctrl_c: bool = True):
        self.signals = [getattr(signal, name) for name in signals]
        self.requeue = requeue
        self.ctrl_c = ctrl_c
        self.received = 0

    def before_train(self, runner):
        if EARLY_SIGNALS:
            self.received = EARLY_SIGNALS[0]
            runner.logger.warning(f'{signal.Signals(self.received).name} arrived during start-up: saving after '
                                  'the first iteration')
        for number in self.signals:
            signal.signal(number, self._on_signal)
        if self.ctrl_c:
            signal.signal(signal.SIGINT, self._on_ctrl_c)

    def _on_signal(self, number, frame):
        # Only a flag: a second signal during the save changes nothing.
        self.received = number

    def after_train(self, runner):
        """Training is over and its checkpoints are written: a preemption
        signal from now until the process exits (Slurm's time-limit warning
        landing during the teardown) is ignored, so that a finished run ends
        with exit code 0 instead of dying of the signal. Python puts its
        own handlers back to the default action while it shuts down;
        an ignored signal stays ignored."""
        for number in self.signals:
            signal.signal(number, signal.SIG_IGN)

    def _on_ctrl_c(self, number, frame):
        if self.received == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.received:
            self.received = number
            print('Ctrl-C: saving at the end of this iteration (Ctrl-C again to stop without saving)', flush=True)

    def _agreed(self, runner) -> bool:
        if not is_distributed():
            return self.received > 0
        # One scalar all-reduce per iteration: every rank stops at the same one.
        flag = torch.tensor([float(self.received)], device=next(runner.model.parameters()).device)
        all_reduce(flag, op='max')
        return bool(flag.item() > 0)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if os.environ.get(KILL_AT_ENV) == str(runner.iter + 1):  # the tests' node failure
            os.kill(os.getpid(), signal.SIGKILL)
        slow = os.environ.get(SLOW_ENV)
        if slow and os.path.isfile(slow):
            import time
            with open(slow) as handle:
                time.sleep(float(handle.read().strip() or 0))
        if not self._agreed(runner):
            return
        done = runner.iter + 1
        runner.save_checkpoint(runner.work_dir, 'last.pth', meta=dict(epoch=runner.epoch, iter=done))
        if get_rank() == 0:
            _write_last_checkpoint(runner.work_dir, osp.join(runner.work_dir, 'last.pth'))
        barrier()
        name = signal.Signals(int(self.received)).name if self.received else 'a signal on another rank'
        if self.received == signal.SIGINT:
            runner.logger.warning(f'interrupted by Ctrl-C: saved {osp.join(runner.work_dir, "last.pth")} at '
                                  f'iteration {done} (epoch {runner.epoch + 1}). Continue with --resume.')
            raise SystemExit(130)
        runner.logger.warning(f'preempted by {name}: saved {osp.join(runner.work_dir, "last.pth")} at '
                              f'iteration {done} (epoch {runner.epoch + 1}); exiting with code '
                              f'{PREEMPTED_EXIT_CODE}. Resume with --resume.')
        job = os.environ.get('SLURM_JOB_ID')
        if self.requeue and job and get_rank() == 0:
            requeued = subprocess.run(['scontrol', 'requeue', job], capture_output=True, text=True)
            runner.logger.warning(f'scontrol requeue {job}: {requeue_outcome(requeued)}')
        raise SystemExit(PREEMPTED_EXIT_CODE)


def requeue_outcome(result: subprocess.CompletedProcess) -> str:
    """What ``scontrol requeue`` did, in a few words. Slurm stops a job's
    processes as soon as it accepts the requeue, scontrol among them (it runs
    inside the job step): ended by a signal, it most often had its answer."""
    if result.returncode == 0:
        return 'done'
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        return f'sent; scontrol was ended by {name} before it answered (Slurm stops the job when it requeues it)'
    return result.stderr.strip() or f'failed with exit status {result.returncode}'


@HOOKS.register_module()
class WeightsAgreeHook(Hook):
    """At the end of training, checks that every rank holds the same weights
    (a float64 sum of every parameter, gathered from all ranks): one log
    line, and an error when they differ. BatchNorm's running statistics are
    not compared: without SyncBN (CPU processes) each rank keeps its own."""

    priority = 'VERY_LOW'

    @torch.no_grad()
    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        total = sum(float(p.double().sum()) for p in model.parameters())
        if is_distributed():
            device = next(model.parameters()).device
            sums = [s.item() for s in all_gather(torch.tensor([total], dtype=torch.float64, device=device))]
        else:
            sums = [total]
        if len(set(sums)) != 1:
            raise RuntimeError(f'the ranks hold different weights at the end: checksums {sums}')
        runner.logger.info(f'weights agree across {len(sums)} rank(s) (checksum {sums[0]:.17g})')


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's epoch loop, continued exactly from a checkpoint taken inside
    an epoch: the batches already done are skipped in the sampler (not
    loaded), the batch index and the iteration count go on from there."""

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = self._iter - self._epoch * len(self.dataloader)
        sampler = self.dataloader.sampler
        if done > 0:
            if not hasattr(sampler, 'start'):
                raise RuntimeError(f'resuming inside epoch {self._epoch + 1} needs the SeededSampler, '
                                   f'not {type(sampler).__name__}')
            sampler.start = done * self.dataloader.batch_size
        for idx, data_batch in enumerate(self.dataloader, start=max(done, 0)):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
