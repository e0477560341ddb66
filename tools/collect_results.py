"""Collate every finished run into the paper's tables, next to the published numbers.

    python tools/collect_results.py [WORK_DIRS ...] [--out DIR] [--latex] [--metafile [CARD]]

Reads transfer metrics (metrics.json), CUB and k-NN metrics, and the
pretraining runs they came from (pretrain_info.json); writes table1..4,
mocov2, probes, linear (ImageNet linear and semi-supervised, mmpretrain) and
other (runs pretrained on data none of the paper's tables used) as Markdown and CSV (and .tex with --latex), issues.md (every problem
met: failed runs under their table, the rest once) and figures under --out
(default: results/ in the first work dir, e.g. work_dirs/results/; the
repository's results/ holds only the published numbers and benchmarks),
and prints the tables. Default work dir: work_dirs/. --metafile rewrites the
model card (CARD, default configs/metafile.yml, and model-index.yml beside
it) with the published numbers and the reproduced ones found, keeping the
weights' hashes already recorded.
"""
import argparse
import glob
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dirs', nargs='*', default=['work_dirs'])
    parser.add_argument('--out', help='where the tables and figures go (default: WORK_DIRS[0]/results)')
    parser.add_argument('--published', default=os.path.join(ROOT, 'results', 'published.csv'))
    parser.add_argument('--latex', action='store_true')
    parser.add_argument('--quiet', action='store_true')
    parser.add_argument('--metafile', nargs='?', const=os.path.join(ROOT, 'configs', 'metafile.yml'),
                        help='also rewrite this model card (default configs/metafile.yml) and the '
                             'model-index.yml of the folder above configs/')
    args = parser.parse_args(argv)

    import pandas as pd
    from r2o_mm.results import figures
    from r2o_mm.results.collect import TABLES, method_label, pretraining_of, to_markdown, write_tables
    missing = [d for d in args.work_dirs if not os.path.isdir(d)]
    if missing:
        sys.exit(f'work dir(s) not found: {", ".join(missing)}')
    args.out = args.out or os.path.join(args.work_dirs[0], 'results')
    collected = write_tables(args.work_dirs, args.out, args.published, args.latex)
    written = [f'{name}.md/.csv' + ('/.tex' if args.latex else '') for name in TABLES] + ['issues.md']
    if figures.reproduced_vs_published(collected['tables'], os.path.join(args.out, 'reproduced_vs_published.png')):
        written.append('reproduced_vs_published.png')
    figures.k_schedule(os.path.join(args.out, 'k_schedule.png'))
    written.append('k_schedule.png')
    runs = {os.path.dirname(p) for d in args.work_dirs
            for p in glob.glob(os.path.join(d, '**', 'pretrain_info.json'), recursive=True)}
    for run in sorted(runs):
        name = f'training_curves_{os.path.basename(os.path.normpath(run))}.png'
        if figures.training_curves(run, os.path.join(args.out, name)):
            written.append(name)
    other = collected['tables']['other']
    probes = pd.concat([collected['tables']['probes'], other[other.benchmark == 'voc_probe']])
    if figures.probe_bars(probes, os.path.join(args.out, 'probes.png')):
        written.append('probes.png')
    curves = {}  # method -> the mask_quality.json of each of its pretraining runs (seeds)
    for history in sorted(p for d in args.work_dirs
                          for p in glob.glob(os.path.join(d, '**', 'mask_quality.json'), recursive=True)):
        info = pretraining_of(history)
        label = method_label(info) if info else os.path.basename(os.path.dirname(history))
        curves.setdefault(label, []).append(history)
    if figures.mask_quality_curves(dict(sorted(curves.items())), os.path.join(args.out, 'mask_quality.png')):
        written.append('mask_quality.png')
    if args.metafile:
        from r2o_mm.results.model_card import build_card, validate_card, write_card
        index = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.metafile))), 'model-index.yml')
        write_card(build_card(collected['published'], collected['tables'], args.metafile), args.metafile, index)
        problems = validate_card(args.metafile, index)
        if problems:
            sys.exit(f'the model card {args.metafile} is not valid: ' + '; '.join(problems))
        written += [os.path.relpath(args.metafile), os.path.relpath(index)]
    if not args.quiet:
        for name, frame in collected['tables'].items():
            print(to_markdown(name, frame, collected['issues'], collected['published']))
        general = [text for where, text in collected['issues'] if where is None]
        if general:
            print('## Issues not tied to a table\n\n' + '\n'.join(f'- {text}' for text in general) + '\n')
    print(f'wrote {", ".join(written)} to {args.out}')


if __name__ == '__main__':
    main()
