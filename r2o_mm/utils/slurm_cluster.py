"""A private Slurm cluster on this machine, for drills and tests: munged,
slurmctld and one or two slurmd (CPU nodes) with every file (key, sockets,
state, logs, pid files) under one folder; nothing in /etc or /run changes.

    python -m r2o_mm.utils.slurm_cluster start DIR [--nodes 2] [--cpus 2]
    export SLURM_CONF=DIR/slurm.conf       # what `start` prints
    sbatch ... ; squeue ; scancel ...
    python -m r2o_mm.utils.slurm_cluster stop DIR

Needs Debian's ``slurm-wlm`` and ``munge`` packages and root (the daemons
run as root). Two partitions: ``debug`` (default, preemptable: requeued
after a ``GraceTime`` of 10 s) and ``high`` (a higher priority tier that
preempts ``debug``), for the README's Slurm drills. Node names must resolve,
so the nodes are this host's name and ``localhost``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time

DAEMONS = ('slurmctld', 'slurmd', 'munged')
PACKAGES = ('slurm-wlm', 'munge')


class ClusterError(RuntimeError):
    """The cluster cannot be started; the message is one line."""


def missing_programs() -> list[str]:
    return [p for p in ('munged', 'mungekey', 'slurmctld', 'slurmd', 'sbatch', 'sinfo', 'scontrol')
            if not shutil.which(p) and not os.path.exists(f'/usr/sbin/{p}')]


def _program(name: str) -> str:
    return shutil.which(name) or f'/usr/sbin/{name}'


def node_names(count: int) -> list[str]:
    """Names that resolve to this machine: its host name, then localhost."""
    names = [socket.gethostname(), 'localhost']
    return names[:count]


def write_config(base: str, nodes: int = 2, cpus: int = 2, port: int = 6817, grace_time: int = 10,
                 kill_wait: int = 5) -> str:
    """Writes ``base/slurm.conf``; returns its path."""
    names = node_names(nodes)
    lines = [
        'ClusterName=r2o', f'SlurmctldHost={socket.gethostname()}(127.0.0.1)', 'SlurmUser=root', 'SlurmdUser=root',
        f'SlurmctldPort={port}', 'AuthType=auth/munge', 'CredType=cred/munge',
        # cred_expire=10: a requeued job may start again after about 11 s (120 s by default).
        f'AuthInfo=socket={base}/munge/munge.socket.2,cred_expire=10',
        f'StateSaveLocation={base}/state/ctld', f'SlurmdSpoolDir={base}/state/slurmd-%n',
        f'SlurmctldPidFile={base}/run/slurmctld.pid', f'SlurmdPidFile={base}/run/slurmd-%n.pid',
        f'SlurmctldLogFile={base}/log/slurmctld.log', f'SlurmdLogFile={base}/log/slurmd-%n.log',
        'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_CPU', 'SchedulerType=sched/backfill',
        'SchedulerParameters=sched_interval=2,bf_interval=2', 'MpiDefault=none', 'SwitchType=switch/none',
        'AccountingStorageType=accounting_storage/none', 'JobAcctGatherType=jobacct_gather/none',
        'JobCompType=jobcomp/none', 'MailProg=/bin/true', 'ReturnToService=2', 'JobRequeue=1',
        f'KillWait={kill_wait}', 'MinJobAge=300', 'InactiveLimit=0',
        'PreemptType=preempt/partition_prio', 'PreemptMode=REQUEUE', 'SlurmctldParameters=preempt_send_user_signal',
    ]
    for index, name in enumerate(names):
        lines.append(f'NodeName={name} NodeAddr=127.0.0.1 Port={port + 1 + index} CPUs={cpus} RealMemory=1000 '
                     'State=UNKNOWN')
    lines += [f'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP PriorityTier=1 '
              f'PreemptMode=REQUEUE GraceTime={grace_time}',
              'PartitionName=high Nodes=ALL MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF']
    for folder in ('munge', 'state/ctld', 'run', 'log'):
        os.makedirs(os.path.join(base, folder), exist_ok=True)
    for name in names:
        os.makedirs(os.path.join(base, 'state', f'slurmd-{name}'), exist_ok=True)
    os.chmod(os.path.join(base, 'munge'), 0o755)  # munged refuses a socket folder others cannot reach
    path = os.path.join(base, 'slurm.conf')
    with open(path, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    return path


def environment(base: str) -> dict:
    """The variables every client command needs (without SLURM_CONF they
    look for the controller in DNS)."""
    return dict(os.environ, SLURM_CONF=os.path.join(base, 'slurm.conf'))


def _wait(condition, seconds: float, what: str):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise ClusterError(f'{what} within {seconds:.0f} s')


def start(base: str, nodes: int = 2, cpus: int = 2, port: int = 6817, timeout: float = 30) -> dict:
    """Starts munged, slurmctld and ``nodes`` slurmd under ``base`` and
    waits until every node is idle; returns the client environment."""
    missing = missing_programs()
    if missing:
        raise ClusterError(f'Slurm or munge is not installed (missing {", ".join(missing)}): '
                           f'apt-get install {" ".join(PACKAGES)}')
    if os.geteuid() != 0:
        raise ClusterError('the private Slurm cluster runs its daemons as root')
    base = os.path.abspath(base)
    conf = write_config(base, nodes, cpus, port)
    munge = os.path.join(base, 'munge')
    key = os.path.join(munge, 'munge.key')
    if not os.path.exists(key):
        subprocess.run([_program('mungekey'), '-c', '-k', key], check=True, capture_output=True)
    subprocess.run([_program('munged'), f'--key-file={key}', f'--socket={munge}/munge.socket.2',
                    f'--pid-file={base}/run/munged.pid', f'--log-file={base}/log/munged.log',
                    f'--seed-file={munge}/munged.seed', '--force'], check=True, capture_output=True)
    subprocess.run([_program('slurmctld'), '-f', conf], check=True, capture_output=True)
    for name in node_names(nodes):
        subprocess.run([_program('slurmd'), '-f', conf, '-N', name], check=True, capture_output=True)
    env = environment(base)

    def idle():
        result = subprocess.run(['sinfo', '-h', '-N', '-o', '%t'], capture_output=True, text=True, env=env)
        states = result.stdout.split()
        return result.returncode == 0 and len(states) >= nodes * 2 and all(s == 'idle' for s in states)

    _wait(idle, timeout, f'the {nodes} node(s) did not become idle (logs: {base}/log)')
    return env


def _pids(base: str) -> list[int]:
    found = []
    for name in sorted(os.listdir(os.path.join(base, 'run'))) if os.path.isdir(os.path.join(base, 'run')) else []:
        try:
            with open(os.path.join(base, 'run', name)) as handle:
                pid = int(handle.read().strip())
            with open(f'/proc/{pid}/comm') as handle:
                if handle.read().strip() in DAEMONS:
                    found.append(pid)
        except (OSError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as handle:
            return handle.read().split(')')[-1].split()[0] != 'Z'  # a zombie has stopped
    except OSError:
        return False


def stop(base: str, timeout: float = 15):
    """Stops the daemons named by the pid files under ``base`` (only
    slurmctld, slurmd and munged processes)."""
    import signal
    pids = _pids(os.path.abspath(base))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('action', choices=['start', 'stop'])
    parser.add_argument('base', help='folder for every file of the cluster')
    parser.add_argument('--nodes', type=int, default=2, choices=[1, 2])
    parser.add_argument('--cpus', type=int, default=2, help='CPUs per node')
    parser.add_argument('--port', type=int, default=6817, help="slurmctld's port (the nodes take the next ones)")
    args = parser.parse_args(argv)
    if args.action == 'stop':
        stop(args.base)
        print(f'stopped the cluster under {args.base}')
        return
    try:
        start(args.base, args.nodes, args.cpus, args.port)
    except (ClusterError, subprocess.CalledProcessError) as error:
        sys.exit(f'slurm_cluster: {error}')
    print(f'export SLURM_CONF={os.path.abspath(args.base)}/slurm.conf')


if __name__ == '__main__':
    main()
