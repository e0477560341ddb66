"""Collate every finished run into the paper's tables, next to the published numbers.

    python tools/collect_results.py [WORK_DIRS ...] [--out DIR] [--latex] [--metafile [CARD]]

Reads transfer metrics (metrics.json), CUB and k-NN metrics, and the
pretraining runs they came from (pretrain_info.json); writes each of table1..4,
mocov2, probes, linear (ImageNet linear and semi-supervised, mmpretrain) and
other (runs pretrained on data none of the paper's tables used) that a run
reaches as Markdown and CSV (and .tex with --latex; the others get no file,
and the last line names them), mask_quality.md (the mBO of the predicted
masks at the first and last evaluation, per K), issues.md (every problem
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
import json
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
    from r2o_mm.results.collect import (history_groups, mask_quality_markdown, mask_quality_table, to_markdown,
                                        write_tables)
    missing = [d for d in args.work_dirs if not os.path.isdir(d)]
    if missing:
        sys.exit(f'work dir(s) not found: {", ".join(missing)}')
    args.out = args.out or os.path.join(args.work_dirs[0], 'results')
    collected = write_tables(args.work_dirs, args.out, args.published, args.latex)
    written = [f'{name}.md/.csv' + ('/.tex' if args.latex else '') for name in collected['written']] + ['issues.md']
    if figures.reproduced_vs_published(collected['tables'], os.path.join(args.out, 'reproduced_vs_published.png')):
        written.append('reproduced_vs_published.png')
    runs = {os.path.dirname(p) for d in args.work_dirs
            for p in glob.glob(os.path.join(d, '**', 'pretrain_info.json'), recursive=True)}
    infos = []
    for run in sorted(runs):
        with open(os.path.join(run, 'pretrain_info.json')) as handle:
            infos.append(json.load(handle))
    if figures.k_schedule(infos, os.path.join(args.out, 'k_schedule.png')):
        written.append('k_schedule.png')
    for run in sorted(runs):
        name = f'training_curves_{os.path.basename(os.path.normpath(run))}.png'
        if figures.training_curves(run, os.path.join(args.out, name)):
            written.append(name)
    other = collected['tables']['other']
    probes = pd.concat([collected['tables']['probes'], other[other.benchmark == 'voc_probe']])
    if figures.probe_bars(probes, os.path.join(args.out, 'probes.png')):
        written.append('probes.png')
    # The mBO of each recipe's masks over pretraining, its pretraining seeds together.
    curves = history_groups([p for d in args.work_dirs
                             for p in glob.glob(os.path.join(d, '**', 'mask_quality.json'), recursive=True)])
    if figures.mask_quality_curves(curves, os.path.join(args.out, 'mask_quality.png')):
        written.append('mask_quality.png')
    quality = mask_quality_table(curves)
    if len(quality):
        quality.to_csv(os.path.join(args.out, 'mask_quality.csv'), index=False)
        with open(os.path.join(args.out, 'mask_quality.md'), 'w') as handle:
            handle.write(mask_quality_markdown(quality))
        written.append('mask_quality.md/.csv')
    if args.metafile:
        from r2o_mm.results.model_card import build_card, validate_card, write_card
        index = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.metafile))), 'model-index.yml')
        write_card(build_card(collected['published'], collected['tables'], args.metafile), args.metafile, index)
        problems = validate_card(args.metafile, index)
        if problems:
            sys.exit(f'the model card {args.metafile} is not valid: ' + '; '.join(problems))
        written += [os.path.relpath(args.metafile), os.path.relpath(index)]
    if not args.quiet:
        for name in collected['written']:
            print(to_markdown(name, collected['tables'][name], collected['issues'], collected['published']))
        if len(quality):
            print(mask_quality_markdown(quality))
        general = [text for where, text in collected['issues'] if where is None]
        if general:
            print('## Issues not tied to a table\n\n' + '\n'.join(f'- {text}' for text in general) + '\n')
    for name in ('reproduced_vs_published.png', 'k_schedule.png', 'probes.png', 'mask_quality.png',
                 'mask_quality.md', 'mask_quality.csv'):  # what an earlier collection here wrote and this one did not
        if not any(name.startswith(w.split('.')[0] + '.') for w in written) and \
                os.path.isfile(os.path.join(args.out, name)):
            os.remove(os.path.join(args.out, name))
    untouched = collected['untouched']
    print(f'wrote {", ".join(written)} to {args.out}' +
          (f'; no file for {", ".join(untouched)}: the runs collected reach none of their cells' if untouched else ''))


if __name__ == '__main__':
    main()
