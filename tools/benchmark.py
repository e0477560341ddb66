"""Performance benchmarks of R2O; writes results/benchmarks.md (one section per machine).

    python tools/benchmark.py [--device cuda|cpu] [--depth 50] [--batch 32] [--size 224]
                              [--repeats 3] [--skip-memory] [--out results/benchmarks.md]
    python tools/benchmark.py --syncs-only
    python tools/benchmark.py --knn-monitor-only [--device cpu] [--batch 8]

1. training step time of R2O vs BYOL (same backbone, batch, input) at
   K = 128, 64, 16, 4 with and without compaction of absent region rows, the
   share of rows compacted, the analytic FLOP model's ratio beside each, the
   ratio averaged over the released K schedule, and the time of each part of
   R2O's mask prediction at K=128;
2. data loading: images per second per core, SLIC on the fly vs cached, and
   the cores a GPU needs at batch 32;
3. K-means at the paper's size (3,200 x 1,024, K=128) vs scikit-learn;
4. peak host (and GPU) memory of one step at the given batch and size.
--syncs-only writes one other section instead: the host synchronisations of
one training step by setting and line (any device; a CPU counts them).
--knn-monitor-only writes the cost of the k-NN monitor (KnnMonitorHook's
forward passes against training steps at the same batch) as a share of an
ImageNet-1k epoch, on this device.
Defaults: the paper's per-GPU setting on a GPU (ResNet-50, 32, 224); a
smaller batch on CPU (ResNet-50, 4, 224) so that it finishes in minutes.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def replace_section(path, header, body):
    text = open(path).read() if os.path.exists(path) else '# Benchmarks\n\nWritten by `tools/benchmark.py`.\n'
    sections = text.split('\n## ')
    kept = [sections[0]] + [s for s in sections[1:] if not s.startswith(header)]
    with open(path, 'w') as handle:
        handle.write('\n## '.join(kept).rstrip() + f'\n\n## {header}\n\n{body}\n')


def step_table(bench, by_k, depth, batch, size) -> list[str]:
    """Ratios by K (all rows / compacted) with the FLOP model's beside them,
    and their averages over the released K schedule (128 -> 4, 300 epochs)."""
    import numpy as np
    from r2o_mm.engine.schedules import cluster_schedule
    encoder = bench.encoder_flops(depth, size)
    byol = by_k['BYOL']
    ks = sorted(by_k['compacted'])
    rows, measured, modelled = [], {True: {}, False: {}}, {True: {}, False: {}}
    for k in sorted(ks, reverse=True):
        for compact in (False, True):
            share = by_k['compacted'][k] if compact else 0.0
            measured[compact][k] = by_k['R2O'][(k, compact)] / byol
            modelled[compact][k] = bench.flop_model(encoder, batch, size, k, share,
                                                    kmeans_iters=by_k['kmeans_iters'][k])['ratio']
        rows.append(f"| {k} | {by_k['R2O'][(k, False)]:.0f} | {measured[False][k]:.2f}x | {modelled[False][k]:.2f}x "
                    f"| {by_k['R2O'][(k, True)]:.0f} | {measured[True][k]:.2f}x | {modelled[True][k]:.2f}x "
                    f"| {100 * by_k['compacted'][k]:.0f}% | {measured[True][k] / modelled[True][k]:.2f} |")
    schedule = [cluster_schedule(e, 'cosine', 128, 4, 300) for e in range(1, 301)]
    average = {c: {name: float(np.mean(np.interp(schedule, ks, [table[c][k] for k in ks])))
                   for name, table in (('measured', measured), ('model', modelled))} for c in (False, True)}
    lines = [f'BYOL (same code, one whole-image mask): {byol:.0f} ms per step.', '',
             '| K | R2O ms, all rows | ratio | FLOP model | R2O ms, compacted | ratio | FLOP model '
             '| rows compacted | measured / model |', '|---|---|---|---|---|---|---|---|---|', *rows,
             f"| released schedule (mean over epochs 1-300) | | {average[False]['measured']:.2f}x "
             f"| {average[False]['model']:.2f}x | | {average[True]['measured']:.2f}x "
             f"| {average[True]['model']:.2f}x | | {average[True]['measured'] / average[True]['model']:.2f} |"]
    parts = bench.flop_model(encoder, batch, size, 128, by_k['compacted'][128],
                             kmeans_iters=by_k['kmeans_iters'][128])
    lines += ['', 'FLOP model at K=128 with compaction (GFLOPs per step; BYOL '
              f"{parts['BYOL total'] / 1e9:.0f}):", '', '| part | GFLOPs | % of BYOL |', '|---|---|---|']
    lines += [f"| {name} | {value / 1e9:.1f} | {100 * value / parts['BYOL total']:.1f}% |"
              for name, value in parts['R2O'].items()]
    lines += ['', 'The schedule average interpolates the ratios linearly in K over the released '
              'K(e) = int(cos(pi/2 e/300) x 124 + 4).']
    return lines


def main(argv=None):
    import torch
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--depth', type=int, default=50)
    parser.add_argument('--batch', type=int)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--memory-batch', type=int, default=32)
    parser.add_argument('--skip-memory', action='store_true')
    parser.add_argument('--syncs-only', action='store_true',
                        help='only count the host synchronisations of one training step (CPU, seconds)')
    parser.add_argument('--knn-monitor-only', action='store_true',
                        help="only the k-NN monitor's cost against training steps (minutes on a CPU)")
    parser.add_argument('--memory-only', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--out', default=os.path.join(ROOT, 'results', 'benchmarks.md'))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    batch = args.batch or (32 if device.type == 'cuda' else 4)
    from r2o_mm import benchmarks as bench
    if args.syncs_only:
        write_sync_section(bench, args.out)
        return
    maps = bench.superpixel_maps_of_photos(args.size)
    if args.knn_monitor_only:
        write_knn_monitor_section(bench.knn_monitor_cost(args.depth, batch, args.size, maps, device, args.repeats),
                                  args.out, bench.machine())
        return
    if args.memory_only:
        print(json.dumps(bench.peak_memory(args.depth, args.memory_batch, args.size, maps, device)))
        return

    print(f'machine: {bench.machine()}', flush=True)
    by_k = bench.step_time_by_k(args.depth, batch, args.size, maps, device, args.repeats)
    print('step times by K (ms):', by_k, flush=True)
    steps = bench.step_time(args.depth, batch, args.size, maps, device, args.repeats)
    print('step times (ms):', json.dumps(steps, indent=1), flush=True)
    kmeans = bench.kmeans_comparison(device=args.device)
    print('K-means:', kmeans, flush=True)
    from r2o_mm.data.sample_images import write_photo_folder
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photo_folder(os.path.join(tmp, 'photos'), 32, max_side=500)
        loading = bench.data_loading(paths, os.path.join(tmp, 'cache'), args.size)
    print('data loading (images/s, one process):', loading, flush=True)
    memory = None
    if not args.skip_memory:
        result = subprocess.run([sys.executable, __file__, '--memory-only', '--device', args.device,
                                 '--depth', str(args.depth), '--size', str(args.size),
                                 '--memory-batch', str(args.memory_batch)],
                                capture_output=True, text=True)
        memory = json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else None
        print('peak memory:', memory or result.stderr[-500:], flush=True)

    r2o, byol = steps['R2O'], steps['BYOL']
    parts = {k: v for k, v in steps.items() if k not in ('R2O', 'BYOL')}
    lines = [f'Machine: {bench.machine()}. ResNet-{args.depth}, batch {batch}, input {args.size}, '
             f'median of {args.repeats} steps after a warm-up; crop boxes drawn like RandomResizedCrop.', '',
             '### 1. Training step, R2O vs BYOL, by K', '']
    lines += step_table(bench, by_k, args.depth, batch, args.size)
    lines += ['', f'Mask prediction at K=128, each part timed alone with the same inputs (R2O step '
              f'{r2o:.0f} ms with compaction, BYOL {byol:.0f} ms):', '',
              '| part | ms | % of the R2O step |', '|---|---|---|']
    lines += [f'| {name} | {ms:.1f} | {100 * ms / r2o:.1f}% |' for name, ms in parts.items()]
    lines += [f'| all parts | {sum(parts.values()):.1f} | {100 * sum(parts.values()) / r2o:.1f}% |', '',
              '### 2. Data loading (one process = one core)', '',
              '| step | images / s / core |', '|---|---|']
    lines += [f'| {k} | {v:.1f} |' for k, v in loading.items() if k != 'cache KB per image']
    full_fly, full_cache = loading['full pipeline on the fly'], loading['full pipeline from cache']
    lines += ['', f'Cache: {loading["cache KB per image"]:.1f} KB per image (16-bit PNG).', '',
              'Cores needed to feed one GPU at 32 images per step: 32 / (step seconds x images/s/core).', '',
              '| GPU step time | cores, SLIC on the fly | cores, cached SLIC |', '|---|---|---|']
    step_options = [0.25, 0.5, 1.0] + ([r2o / 1000] if device.type == 'cuda' and batch == 32 else [])
    for seconds in step_options:
        label = f'{seconds:.2f} s' + (' (measured above)' if seconds == r2o / 1000 and device.type == 'cuda' else '')
        lines.append(f'| {label} | {32 / (seconds * full_fly):.1f} | {32 / (seconds * full_cache):.1f} |')
    lines += ['', '### 3. K-means at the paper\'s size (3,200 points, 1,024 dims, K=128)', '',
              '| | ms | inertia |', '|---|---|---|',
              f'| r2o_mm ({args.device}) | {kmeans["ours_ms"]:.0f} | {kmeans["ours_inertia"]:.2f} |',
              f'| scikit-learn KMeans (CPU, n_init=1) | {kmeans["sklearn_ms"]:.0f} | {kmeans["sklearn_inertia"]:.2f} |',
              '', f'Inertia ratio ours / scikit-learn: {kmeans["ratio"]:.4f}.']
    if memory:
        lines += ['', f'### 4. Peak memory, one R2O step, ResNet-{args.depth}, batch {args.memory_batch}, '
                  f'input {args.size}', '', f'Host (max RSS): {memory["host_peak_GB"]:.2f} GB'
                  + (f'; GPU (max allocated): {memory["device_peak_GB"]:.2f} GB' if 'device_peak_GB' in memory else '')
                  + '.']
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    replace_section(args.out, f'{args.device}: {bench.machine()}', '\n'.join(lines))
    print(f'written to {args.out}')


def write_knn_monitor_section(cost, out, machine):
    """KnnMonitorHook's cost as a share of an epoch, printed and written."""
    lines = [f"Measured on {machine} by `python tools/benchmark.py --knn-monitor-only`: ResNet-{cost['depth']}, "
             f"batch {cost['batch']}, {cost['size']} px, median of the repeats after a warm-up; data loading not "
             'counted on either side.', '',
             '| forward without gradient (ms per batch) | R2O training step (ms per batch) | one evaluation, '
             f"{cost['monitor_images']:,} images (s) | one epoch, {cost['epoch_images']:,} images (s) | share of "
             f"an epoch | share of the {cost['interval']} epochs between evaluations |", '|---|---|---|---|---|---|',
             f"| {cost['forward_ms']:.1f} | {cost['step_ms']:.1f} | {cost['evaluation_seconds']:.0f} | "
             f"{cost['epoch_seconds']:.0f} | {100 * cost['share_of_epoch']:.2f}% | "
             f"{100 * cost['share_of_interval']:.3f}% |"]
    print('\n'.join(lines))
    replace_section(out, f'k-NN monitor cost on {machine}', '\n'.join(lines))


def write_sync_section(bench, out):
    """The host synchronisations of one training step, by setting and line
    (device-independent but for Lloyd's iteration count)."""
    counts = bench.host_syncs_per_step()
    lines = ['Counted on the CPU by `r2o_mm.utils.device_audit.HostSyncCounter` (every operation that makes '
             'a GPU wait for the host: a Python number out of a tensor, a data-dependent shape, boolean-mask '
             'indexing, a copy to the host) over one training step: forward, backward, LARS, EMA. ResNet-18, '
             'batch 4, 128 px, superpixels of the bundled photographs. `tests/utils/test_device_audit.py` '
             'asserts the same per site. Written by `python tools/benchmark.py --syncs-only`.', '',
             '| setting | per step | where |', '|---|---|---|']
    for name, (total, sites) in counts.items():
        where = '; '.join(f'{n} x {site}' for site, n in sorted(sites.items(), key=lambda item: -item[1]))
        lines.append(f'| {name} | {total} | {where or "none"} |')
    lines += ['', "Lloyd's stop rule (regions.py, `lloyd`) reads two flags once per iteration: the released "
              'algorithm stops early on them, so this count is the number of Lloyd iterations. compact_rows '
              'reads the number of distinct rows once per MLP stack (a GPU must know a tensor\'s size). '
              'Per runner iteration, outside the step: mmengine\'s RuntimeInfoHook reads every logged value '
              '(loss, num_overlapping, num_segments, kmeans_empty: 4, the first one waits, the others find the '
              'GPU idle); PreemptionHook adds one all-reduce and read in distributed runs.', '',
              'Before this count (2026-11-30, same step): K=128 655 synchronisations (3 per K-means++ centre '
              'from indexing with 0-d tensors), K=4 47, BYOL 9. Removed: 0-d tensor indexing in K-means++ '
              '(index_select), bincount in Lloyd (index_add_), F.one_hot\'s range check (a comparison), the '
              'largest superpixel label (counted on the host by the data preprocessor), boolean-mask indexing '
              'in compact_rows and in the Q5-fixed projector (stable argsort and index_select; one count '
              'each), and the non-finite loss check (reads the loss mmengine already read).']
    replace_section(out, 'Host synchronisations per training step (any device)', '\n'.join(lines))
    print(f'written to {out}')


if __name__ == '__main__':
    main()
