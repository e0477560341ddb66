"""Running a job graph (:mod:`r2o_mm.reproduce.graph`) and reporting where it stands.

Slurm: each job not done and not queued is one ``sbatch`` whose
``--dependency=afterok:`` names the jobs it waits for; Slurm does the
scheduling, nothing here polls. A pretraining is submitted with
``--requeue --signal=USR1@180``: PreemptionHook saves and requeues it under
the same job id, so its dependents keep waiting for it. A job resubmitted
after a failure gets a new id; the queued jobs that waited for the old one
are pointed at the new one (``scontrol update Dependency=``) instead of
being submitted again.

One machine: the jobs run in order; after a failure the jobs that do not
depend on it still run.

Every job runs a small bash script (``<root>/jobs/<job>.sh``) that appends
``start <time> <restart count> <pid>`` and ``end <time> <exit status>`` to
``<job>.events``: with Slurm's accounting off, these lines and the outputs
are what tells done, failed and how long a job ran once the controller has
forgotten it. ``<root>/jobs/slurm.json`` keeps each submission's job id.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from ..utils.io import write_json
from .graph import ROOT, Graph, Job, done, in_the_way

ACTIVE = {'PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED',
          'SUSPENDED', 'RESIZING', 'SIGNALING', 'STAGE_OUT', 'PREEMPTED'}
RUNNING = {'RUNNING', 'CONFIGURING', 'COMPLETING', 'SIGNALING', 'STAGE_OUT'}
EXCEPTION = re.compile(r'^[\w.]*(Error|Exception|Interrupt)\b:?')
ERROR = re.compile(r'(error|Error|ERROR|FAILED|Traceback|exists but|Killed|No such file|not found|refused)')


def files(graph: Graph, job: Job) -> dict:
    folder = osp.join(graph.root, 'jobs')
    return {name: osp.join(folder, f'{job.name}.{name}') for name in ('sh', 'log', 'events')}


def script_text(graph: Graph, job: Job, launcher: str) -> str:
    """The job's bash script: the command between two event lines."""
    argv = job.slurm if launcher == 'slurm' else job.local
    command = ' '.join(f'"{word}"' if word.startswith('$') else shlex.quote(word) for word in argv)
    events = shlex.quote(files(graph, job)['events'])
    return '\n'.join([
        '#!/bin/bash',
        f'# {job.name}: {job.title}. Written by tools/reproduce.py run {graph.target} --launcher {launcher}.',
        f'cd {shlex.quote(ROOT)}',
        # Jobs that share a node need rendezvous ports of their own (torchrun and mmengine default to 29500).
        *(['export PORT=$((20000 + SLURM_JOB_ID % 20000 * 2))', 'export MASTER_PORT=$PORT']
          if launcher == 'slurm' else []),
        'export R2O_SKIP_SETUP=1', f'export PYTHON={shlex.quote(sys.executable)}',
        *[f'export {key}={shlex.quote(value)}' for key, value in job.env.items()],
        f'echo "start $(date +%s) ${{SLURM_RESTART_COUNT:-0}} $$" >> {events}',
        command,
        'code=$?',
        f'echo "end $(date +%s) $code" >> {events}',
        'exit $code', ''])


def write_script(graph: Graph, job: Job, launcher: str) -> str:
    path = files(graph, job)['sh']
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(script_text(graph, job, launcher))
    os.chmod(path, 0o755)
    return path


def read_events(path: str) -> list:
    """[{start, restart, pid, end, code}] per run of the job, oldest first."""
    runs = []
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return runs
    for line in lines:
        words = line.split()
        if words[:1] == ['start'] and len(words) == 4:
            runs.append(dict(start=int(words[1]), restart=int(words[2]), pid=int(words[3]), end=None, code=None))
        elif words[:1] == ['end'] and len(words) == 3 and runs and runs[-1]['end'] is None:
            runs[-1].update(end=int(words[1]), code=int(words[2]))
    return runs


def elapsed_seconds(runs: list, now: float) -> float:
    """Wall time of all runs; a run that ended without an end line (killed
    by a preemption) lasted until the next one started."""
    total = 0.0
    for index, run in enumerate(runs):
        finish = run['end'] or (runs[index + 1]['start'] if index + 1 < len(runs) else now)
        total += max(finish - run['start'], 0)
    return total


def last_error(log: str) -> str:
    """The last line of the log that reads like an error, else its last line."""
    try:
        lines = [line.strip() for line in open(log, errors='replace').read().splitlines() if line.strip()]
    except OSError:
        return f'(no log at {log})'
    found = [line for line in lines if EXCEPTION.match(line)] or [line for line in lines if ERROR.search(line)]
    return (found or lines or ['(empty log)'])[-1][:300]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# ------------------------------------------------------------------ Slurm
def slurm_record_path(graph: Graph) -> str:
    return osp.join(graph.root, 'jobs', 'slurm.json')


def load_json(path: str) -> dict:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def slurm_job(job_id: str) -> dict | None:
    """``scontrol show job`` as a dict; None when the controller does not
    know the job (never, or purged after MinJobAge) or Slurm is absent."""
    try:
        result = subprocess.run(['scontrol', '-o', 'show', 'job', str(job_id)], capture_output=True, text=True,
                                timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0 or 'JobId=' not in result.stdout:
        return None
    return dict(item.split('=', 1) for item in result.stdout.split() if '=' in item)


@dataclass
class Status:
    state: str               # done | running | pending | failed | not run | blocked
    detail: str = ''
    job_id: str = ''
    restarts: int = 0
    elapsed: float = 0.0
    log: str = ''
    error: str = ''


def job_status(graph: Graph, job: Job, record: dict | None = None, now: float | None = None) -> Status:
    """Where one job stands: its outputs first, then Slurm (a recorded job id)
    or its event lines (one machine)."""
    now = now or time.time()
    paths = files(graph, job)
    runs = read_events(paths['events'])
    latest = runs[max((i for i, r in enumerate(runs) if r['restart'] == 0), default=0):]  # this submission
    status = Status('not run', log=paths['log'], elapsed=elapsed_seconds(runs, now),
                    restarts=max([r['restart'] for r in latest], default=0))
    status.job_id = str(record['job_id']) if record else ''
    finished = done(job, graph)
    if finished:
        status.state, status.detail = 'done', finished
        return status
    if record:
        info = slurm_job(status.job_id)
        if info and info.get('JobState') in ACTIVE:
            status.restarts = max(status.restarts, int(info.get('Restarts', 0) or 0))
            if info['JobState'] in RUNNING:
                status.state = 'running'
            else:
                status.state = 'pending'
                status.detail = info.get('Reason', '')
            return status
        if info:
            status.detail = f"Slurm: {info.get('JobState')}, exit code {info.get('ExitCode')}"
        elif not shutil.which('scontrol'):
            status.state, status.detail = 'unknown', f'Slurm job {status.job_id}: no scontrol on this machine'
            return status
    if runs and runs[-1]['end'] is None and not record and pid_alive(runs[-1]['pid']):
        status.state = 'running'
        return status
    if runs or record:
        code = runs[-1]['code'] if runs else None
        status.state = 'failed'
        if not status.detail:
            status.detail = (f'exit status {code}' if code else
                             'exited 0, but its output is missing or belongs to other inputs' if code == 0
                             else 'ended without an exit status (killed, or the node failed)')
        status.error = last_error(paths['log'])
    return status


def statuses(graph: Graph, record: dict | None = None) -> dict:
    record = load_json(slurm_record_path(graph)) if record is None else record
    return {job.name: job_status(graph, job, record.get(job.name)) for job in graph.jobs}


def sbatch_command(graph: Graph, job: Job, script: str, dependency: list, options: dict) -> list:
    log = files(graph, job)['log']
    argv = ['sbatch', '--parsable', f'--job-name=r2o-{job.name}', f'--output={log}', '--open-mode=append',
            f'--chdir={ROOT}', f'--nodes={job.nodes}', '--kill-on-invalid-dep=no']
    if options.get('partition'):
        argv.append(f"--partition={options['partition']}")
    if job.gpus:
        argv += [f'--gres=gpu:{job.gpus}', f'--ntasks-per-node={job.gpus}',
                 f"--cpus-per-task={options.get('cpus_per_task') or 8}"]
    else:
        argv += ['--ntasks-per-node=1', f"--cpus-per-task={options.get('cpus_per_task') or 1}"]
    if job.requeue:
        argv += ['--requeue', '--signal=USR1@180']
    for key in ('account', 'qos', 'time'):
        if options.get(key):
            argv.append(f'--{key}={options[key]}')
    argv += shlex.split(options.get('sbatch_args') or '')
    if dependency:
        argv.append('--dependency=afterok:' + ':'.join(dependency))
    return argv + [script]


def run_slurm(graph: Graph, options: dict, retry: str, say=print) -> int:
    """Submits every job that is neither done nor queued; returns 0."""
    path = slurm_record_path(graph)
    record = load_json(path)
    now = statuses(graph, record)
    current, queued, submitted = {}, [], []
    for job in graph.jobs:
        status = now[job.name]
        if status.state == 'done':
            continue
        if status.state in ('running', 'pending'):
            current[job.name] = status.job_id
            queued.append(job.name)
            continue
        dependency = [current[name] for name in job.inputs if name in current]
        warning = in_the_way(job)
        if warning:
            say(f'warning: {warning}')
        script = write_script(graph, job, 'slurm')
        argv = sbatch_command(graph, job, script, dependency, options)
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            say(f'sbatch refused {job.name}: {result.stderr.strip()}  ({shlex.join(argv)})')
            write_json(path, record)
            return 1
        job_id = result.stdout.strip().split(';')[0]
        record[job.name] = dict(job_id=job_id, dependency=dependency, command=retry,
                                submitted=time.strftime('%Y-%m-%d %H:%M:%S'), sbatch=shlex.join(argv))
        current[job.name] = job_id
        submitted.append(job.name)
        after = ', '.join(f'{n} ({current[n]})' for n in job.inputs if n in current)
        say(f'submitted {job.name}: job {job_id}' + (f', after {after}' if after else ''))
    updated = []
    for name in queued:  # waiting for a job that was just submitted again: wait for the new one
        job, entry = graph.job(name), record.get(name, {})
        wanted = [current[i] for i in job.inputs if i in current]
        stale = now[name].detail == 'DependencyNeverSatisfied' or any(i not in entry.get('dependency', [])
                                                                       for i in wanted)
        if now[name].state == 'pending' and stale:
            value = 'afterok:' + ':'.join(wanted) if wanted else ''
            result = subprocess.run(['scontrol', 'update', f"JobId={entry['job_id']}", f'Dependency={value}'],
                                    capture_output=True, text=True)
            if result.returncode == 0:
                entry['dependency'] = wanted
                updated.append(name)
                say(f"{name} (job {entry['job_id']}) now waits for "
                    + ', '.join(f'{n} ({current[n]})' for n in job.inputs if n in current))
            else:
                say(f"could not update the dependency of {name}: {result.stderr.strip()}")
    write_json(path, record)
    if not submitted and not updated:
        if queued:
            say(f'nothing to submit: {len(queued)} job(s) queued or running ({", ".join(queued)})')
        else:
            say(f'nothing to submit: target {graph.target} is done; tables in {graph.results}')
    else:
        say(f'{len(submitted)} job(s) submitted, {len(queued)} already queued or running; '
            f'tools/reproduce.py status {graph.target} shows where they stand')
    return 0


# ------------------------------------------------------------------ one machine
def run_local(graph: Graph, retry: str, say=print) -> int:
    """Runs the jobs in order; a failed job's dependents are skipped, the
    other branches go on. Exit status 1 when a job failed."""
    failed, blocked, ran = [], set(), 0
    total = len(graph.jobs)
    record = load_json(slurm_record_path(graph))
    for index, job in enumerate(graph.jobs, 1):
        head = f'[{index}/{total}] {job.name}'
        status = job_status(graph, job, record.get(job.name))
        if status.state == 'done':
            say(f'{head}: done ({status.detail})')
            continue
        if status.state in ('running', 'pending'):
            where = f'Slurm job {status.job_id}' if status.job_id else 'another process'
            say(f'{head}: {status.state} in {where} ({status.log}); its dependents wait for the next run')
            blocked.add(job.name)
            continue
        missing = [name for name in job.inputs if name in blocked or name in failed]
        if missing:
            say(f'{head}: skipped, it needs {", ".join(missing)}')
            blocked.add(job.name)
            continue
        warning = in_the_way(job)
        if warning:
            say(f'warning: {warning}')
        script = write_script(graph, job, 'local')
        log = files(graph, job)['log']
        say(f'{head}: {job.title} (log {log})')
        began = time.time()
        with open(log, 'a') as handle:
            code = subprocess.run(['bash', script], stdout=handle, stderr=subprocess.STDOUT).returncode
        ran += 1
        if code == 0 and done(job, graph):
            say(f'{head}: done in {time.time() - began:.0f} s')
            continue
        failed.append(job.name)
        say(f'{head}: FAILED (exit status {code}): {last_error(log)}')
    if failed:
        say(f'{len(failed)} job(s) failed ({", ".join(failed)}); after the fix, `{retry}` runs only what is not '
            'done')
        return 1
    if not ran:
        say(f'nothing to run: target {graph.target} is done; tables in {graph.results}')
    elif not blocked:
        say(f'target {graph.target} is done; tables in {graph.results}')
    return 0


# ------------------------------------------------------------------ views
def hours(seconds: float) -> str:
    seconds = int(seconds)
    return f'{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}'


def resources(job: Job) -> str:
    return f'{job.gpus} x {job.nodes}' if job.gpus else 'CPU'


def table_lines(header: tuple, rows: list) -> list:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ['  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]


def plan_text(graph: Graph) -> str:
    """The job graph with each job's GPUs, estimated GPU-hours (and where the
    estimate comes from) and whether its output already exists."""
    index = {job.name: number for number, job in enumerate(graph.jobs, 1)}
    sources: list = []
    rows, warnings = [], []
    for job in graph.jobs:
        if job.gpu_hours:
            if job.source not in sources:
                sources.append(job.source)
            estimate = f'{job.gpu_hours:,.1f} [{sources.index(job.source) + 1}]'
        else:
            estimate = '-'
        finished = done(job, graph)
        state = 'done' if finished else 'to run'
        if not finished and in_the_way(job):
            warnings.append(in_the_way(job))
        needs = ','.join(str(index[name]) for name in job.inputs) or '-'
        if len(job.inputs) > 4:
            needs = f'{len(job.inputs)} jobs'
        rows.append((str(index[job.name]), job.name, needs, resources(job), estimate, state))
    total = sum(job.gpu_hours for job in graph.jobs)
    left = sum(job.gpu_hours for job, row in zip(graph.jobs, rows) if row[5] != 'done')
    pretraining = sum(job.gpu_hours for job in graph.jobs if job.kind == 'pretrain')
    text = [f'plan for {graph.target}: {len(graph.jobs)} jobs, {graph.seeds} fine-tuning seed(s) per transfer, '
            f'outputs under {graph.root}', '',
            *table_lines(('#', 'job', 'needs', 'GPUs x nodes', 'GPU-hours', 'output'), rows), '',
            f'total: {total:,.1f} GPU-hours ({pretraining:,.1f} pretraining, {total - pretraining:,.1f} downstream); '
            f'{left:,.1f} left to run', '']
    for number, job in enumerate(graph.jobs, 1):
        text.append(f'{number}. {job.name}: {job.title}' + (f'; {job.work}' if job.gpu_hours else ''))
    text += ['', *[f'warning: {line}' for line in warnings]] if warnings else []
    if sources:
        text += ['', 'GPU-hours = images x units per image / (8 units x the rate) / 3600 (a unit: one ResNet-50 '
                 'forward of a 224 px image; a backward is two; a pretraining image costs 8), with the rate from',
                 *[f'[{i}] {s}' for i, s in enumerate(sources, 1)]]
    return '\n'.join(text) + '\n'


def status_text(graph: Graph, retry: str | None = None) -> str:
    record = load_json(slurm_record_path(graph))
    now = statuses(graph, record)
    rows, failed = [], []
    used_total = left_total = 0.0
    for job in graph.jobs:
        status = now[job.name]
        state = status.state
        if state == 'pending':
            waits = [n for n in job.inputs if now[n].state != 'done']
            reason = status.detail
            if waits:
                state = f"pending on {', '.join(waits)}" + (' (failed)' if any(now[n].state == 'failed'
                                                                                for n in waits) else '')
            elif reason:
                state = f'pending ({reason})'
        if status.restarts:
            state += f', preempted and requeued {status.restarts} time(s)'
        if state == 'not run':
            waits = [n for n in job.inputs if now[n].state != 'done']
            state = f'not submitted (needs {", ".join(waits)})' if waits else 'not submitted'
        gpus = job.gpus * job.nodes
        used = status.elapsed * gpus / 3600
        left = 0.0 if status.state == 'done' else max(job.gpu_hours - used, 0.0)
        used_total += used
        left_total += left
        rows.append((job.name, state, status.job_id or '-', resources(job), hours(status.elapsed) if status.elapsed
                     else '-', f'{used:,.1f} / {left:,.1f}' if gpus else '-'))
        if status.state == 'failed':
            failed.append((job, status))
    counts = {}
    for status in now.values():
        counts[status.state] = counts.get(status.state, 0) + 1
    text = [f'{graph.target}: ' + ', '.join(f'{n} {state}' for state, n in counts.items())
            + f'; GPU-hours used {used_total:,.1f}, left about {left_total:,.1f}', '',
            *table_lines(('job', 'state', 'Slurm id', 'GPUs x nodes', 'elapsed', 'GPU-h used / left'), rows)]
    for job, status in failed:
        command = (record.get(job.name) or {}).get('command') or retry or f'tools/reproduce.py run {graph.target}'
        text += ['', f'{job.name} failed: {status.detail}', f'  log: {status.log}', f'  last error: {status.error}',
                 f'  retry (after the fix; only what is not done runs): {command}']
    collect = graph.jobs[-1]
    text += ['', f'tables: {graph.results}' if now[collect.name].state == 'done'
             else f'tables: not collected yet ({collect.name} {now[collect.name].state})']
    return '\n'.join(text) + '\n'
