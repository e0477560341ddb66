"""Compare a transfer config with the released evaluation protocol it claims.

    python tools/protocol_diff.py CONFIG [--reference NAME] [--cfg-options k=v ...] [--allow-diff]

Loads the merged config (mmengine, _base_ inheritance resolved) and prints
field / reference / this config / same for every field that decides the
numbers (r2o_mm/transfer/protocols.py). Resize semantics are observed by
applying the config's resize steps to a 500x375 image. Exits 1 when a field
differs, unless --allow-diff. NAME defaults to the config's
``reference_protocol``: voc, cityscapes, coco_1x, coco_2x, coco_mocov2_1x,
imagenet_linear, imagenet_semi_1pct, imagenet_semi_10pct.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def format_table(rows, width: int = 60) -> str:
    def cell(value):
        text = str(value)
        return text if len(text) <= width else text[:width - 3] + '...'
    lines = ['| field | reference | this config | same |', '|---|---|---|---|']
    lines += [f"| {row['field']} | {cell(row['reference'])} | {cell(row['config'])} | "
              f"{'yes' if row['same'] else 'NO'} |" for row in rows]
    return '\n'.join(lines)


def top_level_parts(text: str) -> list[str]:
    """``text`` split at the commas and semicolons outside brackets."""
    parts, depth, current = [], 0, ''
    for char in text:
        depth += char in '([{'
        depth -= char in ')]}'
        if char in ',;' and depth == 0:
            parts.append(current.strip())
            current = ''
        else:
            current += char
    return [part for part in parts + [current.strip()] if part]


def explain_difference(row) -> list[str]:
    """Both values in full, and the parts in which they differ."""
    reference, config = str(row['reference']), str(row['config'])
    ours, theirs = top_level_parts(config), top_level_parts(reference)
    lines = [f"{row['field']}:", f'  reference:   {reference}', f'  this config: {config}']
    only_reference = [part for part in theirs if part not in ours]
    only_config = [part for part in ours if part not in theirs]
    if only_reference or only_config:
        lines.append(f"  differs:     {'; '.join(only_reference) or '(nothing)'}  ->  "
                     f"{'; '.join(only_config) or '(nothing)'}")
    return lines


def main(argv=None):
    import r2o_mm  # noqa: F401  (first: registers modules, quiets pkg_resources warnings)
    from mmengine.config import DictAction
    from r2o_mm.utils.config import load_config
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--reference', help="protocol name (default: the config's reference_protocol)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--allow-diff', action='store_true', help='exit 0 even when fields differ')
    parser.add_argument('--width', type=int, default=60, help='cut cells to this many characters')
    args = parser.parse_args(argv)
    from r2o_mm.transfer.protocols import REFERENCE_PROTOCOLS, protocol_diff, reference_name
    cfg = load_config(args.config, args.cfg_options)
    try:
        name = args.reference or reference_name(cfg)
        if name not in REFERENCE_PROTOCOLS:
            raise ValueError(f'--reference must be one of {", ".join(REFERENCE_PROTOCOLS)}, got {name!r}')
    except ValueError as error:
        sys.exit(str(error))
    rows = protocol_diff(cfg, name)
    differing = [row for row in rows if not row['same']]
    print(f"{os.path.basename(args.config)} against {name}: {REFERENCE_PROTOCOLS[name]['source']}")
    print(format_table(rows, args.width))
    if differing:
        print(f"\n{len(differing)} field(s) differ: {', '.join(row['field'] for row in differing)}")
        for row in differing:
            print('\n'.join(explain_difference(row)))
        sys.exit(0 if args.allow_diff else 1)
    print("no difference: the authors' protocol, exactly")


if __name__ == '__main__':
    main()
