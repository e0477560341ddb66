#!/bin/sh
''':'
# Runs itself with the project's interpreter, after the idempotent set-up (skipped with R2O_SKIP_SETUP=1).
root=$(cd "$(dirname "$0")/.." && pwd)
[ -n "${R2O_SKIP_SETUP:-}" ] || "$root/tools/setup_env.sh" >&2 || exit 1
exec "${PYTHON:-$root/.venv/bin/python}" "$0" "$@"
'''
USAGE = """A paper table from one command: plan, run and follow the whole chain of jobs.

    tools/reproduce.py plan TARGET [--seeds N] [--gpus-per-node G] [--checkpoint FILE]
    tools/reproduce.py run TARGET --launcher slurm --partition P [--account A] [--qos Q] [--time T]
    tools/reproduce.py run TARGET --launcher local
    tools/reproduce.py status TARGET

TARGET: table1, table2, table3, table4, linear, all, or tiny (the test-size
chain on CPU: generated data, the tiny config, a VOC-layout transfer).

plan: the jobs (pretraining, export, transfers with their fine-tuning seeds,
evaluations, collection), GPUs x nodes, estimated GPU-hours and where each
estimate comes from, and which outputs exist already.
run: submits with sbatch every job that is neither done nor queued, each
with --dependency=afterok on its inputs (Slurm schedules; nothing here
polls), or runs them in order on this machine (--launcher local; after a
failure the independent branches go on). Run it again at any time: it
submits only what is missing, and a queued job waiting for one that failed
is pointed at its resubmission. --checkpoint FILE: start from given weights
(e.g. the authors' release), no pretraining job.
status: one row per job (done, running, pending and on what, failed,
preempted and requeued N times), time and GPU-hours used and left, each
failure's log, last error line and retry command, and where the tables are.
Options given to run are remembered: status and the next run reuse them.
"""
import argparse
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=USAGE.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=USAGE.split('\n\n', 1)[1])
    parser.add_argument('action', choices=['plan', 'run', 'status'])
    parser.add_argument('target', help='table1, table2, table3, table4, linear, all or tiny')
    parser.add_argument('--seeds', type=int, help='fine-tuning seeds per transfer (default 1, or the last run\'s)')
    parser.add_argument('--gpus-per-node', type=int, help='GPUs per node (default 8; 0: CPU nodes)')
    parser.add_argument('--checkpoint', help='start from these weights: no pretraining job ("none": forget the '
                        'one an earlier run was given)')
    parser.add_argument('--work-dir', default=os.path.join('work_dirs', 'reproduce'),
                        help='root of every output (default work_dirs/reproduce)')
    parser.add_argument('--gpu-record', help='a tools/gpu_check.sh report.json whose measured step rate the '
                        'estimates use (default: a GPU section of results/benchmarks.md, else the newest GPU record '
                        'under work_dirs/gpu_check, else the paper\'s)')
    parser.add_argument('--launcher', choices=['slurm', 'local'], help='run: submit to Slurm or run here')
    parser.add_argument('--partition', help='Slurm partition')
    parser.add_argument('--account')
    parser.add_argument('--qos')
    parser.add_argument('--time', help='Slurm time limit of each job')
    parser.add_argument('--cpus-per-task', type=int, help='Slurm CPUs per task (default 8 on GPU jobs, 1 on CPU jobs)')
    parser.add_argument('--sbatch-args', help='more sbatch options, one string')
    args = parser.parse_args(argv)

    from r2o_mm.reproduce import graph as graphs
    from r2o_mm.reproduce import launch
    from r2o_mm.utils.io import write_json
    if args.target not in graphs.TARGETS:
        parser.exit(2, f'reproduce.py: unknown target {args.target}; choose from {", ".join(graphs.TARGETS)}\n')
    saved_path = os.path.join(args.work_dir, 'jobs', f'{args.target}.json')
    saved = launch.load_json(saved_path)
    seeds = args.seeds or saved.get('seeds') or 1
    gpus = args.gpus_per_node if args.gpus_per_node is not None else saved.get('gpus_per_node', 8)
    checkpoint = args.checkpoint or saved.get('checkpoint')
    checkpoint = None if checkpoint == 'none' else checkpoint
    if checkpoint and not os.path.isfile(checkpoint):
        parser.exit(2, f'reproduce.py: --checkpoint {checkpoint}: no such file\n')
    rate = None
    if args.gpu_record:
        rate = graphs.gpu_check_rate(args.gpu_record)
        if rate is None:
            parser.exit(2, f'reproduce.py: {args.gpu_record} holds no GPU step rate (a CPU rehearsal, or no speed '
                        'phase)\n')
    try:
        graph = graphs.build(args.target, args.work_dir, seeds, gpus, checkpoint, rate)
    except ValueError as error:
        parser.exit(2, f'reproduce.py: {error}\n')
    if args.action == 'plan':
        print(launch.plan_text(graph), end='')
        return 0
    if args.action == 'status':
        print(launch.status_text(graph, saved.get('retry')), end='')
        return 0
    if not args.launcher:
        parser.exit(2, 'reproduce.py: run needs --launcher slurm or --launcher local\n')
    retry = shlex.join(['tools/reproduce.py', *argv])
    write_json(saved_path, dict(seeds=seeds, gpus_per_node=gpus,
                                checkpoint=checkpoint and os.path.abspath(checkpoint), retry=retry))
    if args.launcher == 'local':
        return launch.run_local(graph, retry)
    options = dict(partition=args.partition, account=args.account, qos=args.qos, time=args.time,
                   cpus_per_task=args.cpus_per_task, sbatch_args=args.sbatch_args)
    return launch.run_slurm(graph, options, retry)


if __name__ == '__main__':
    sys.exit(main())
