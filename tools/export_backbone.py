"""Export the online encoder of a pretraining checkpoint.

    python tools/export_backbone.py CHECKPOINT OUT [--format torchvision|mmcv|detectron2]
                                    [--update-card [NAME]] [--card configs/metafile.yml]

CHECKPOINT: an r2o_mm checkpoint, the authors' training checkpoint
(module.online_network.encoder.*), a torchvision-layout ResNet file or a
detectron2 weight file (.pkl): all three formats of the authors' release. It is
read weights-only (no pickled code runs); its sha256 is printed, to record.
OUT loads with torchvision.models.resnet50().load_state_dict(..., strict=False)
missing only fc.* (torchvision format), with mmdet/mmseg's Pretrained
initialiser (mmcv format), or in detectron2 (detectron2 format).
--update-card records the sha256 of one of the authors' released files in
the model card the first time it is read (the model NAME, or the one whose
Weights File is CHECKPOINT's file name), and refuses a file that differs from
the hash recorded.
"""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint')
    parser.add_argument('out')
    parser.add_argument('--format', default='torchvision', choices=['torchvision', 'mmcv', 'detectron2'])
    parser.add_argument('--update-card', nargs='?', const='', default=None, metavar='NAME',
                        help="record (first read) or check this released file's sha256 in the model card")
    parser.add_argument('--card', help='the model card (default configs/metafile.yml)')
    args = parser.parse_args(argv)
    import os.path as osp
    folder = osp.dirname(osp.abspath(args.out))
    if not osp.isdir(folder):
        sys.exit(f'cannot export: the output folder {folder} does not exist (create it, or choose another OUT)')
    import r2o_mm  # noqa: F401  (allow-list for weights-only loading)
    from r2o_mm.transfer.export import ExportError, export_backbone
    from r2o_mm.utils.checkpoint import CheckpointReadError, file_sha256
    sha256 = None
    if args.update_card is not None:  # a file that is not the one recorded is refused before anything is written
        from r2o_mm.results.model_card import CARD, CardError, update_weights_hash
        card = args.card or CARD
        if not osp.isfile(args.checkpoint):
            sys.exit(f'cannot export: {args.checkpoint} does not exist')
        sha256 = file_sha256(args.checkpoint)
        try:
            update_weights_hash(args.checkpoint, sha256, args.update_card or None, card, record=False)
        except CardError as error:
            sys.exit(f'model card: {error}')
    try:
        state = export_backbone(args.checkpoint, args.out, args.format)
    except CheckpointReadError as error:
        sys.exit(f'cannot export: {error}')
    except ExportError as error:
        sys.exit(f'cannot export {args.checkpoint}: {error}')
    except OSError as error:
        sys.exit(f'cannot export to {args.out}: {error.strerror or error}')
    sha256 = sha256 or file_sha256(args.checkpoint)
    print(f'sha256 {sha256}  {args.checkpoint}')
    if args.update_card is not None:
        print(update_weights_hash(args.checkpoint, sha256, args.update_card or None, card))
    print(f'wrote {len(state)} tensors ({sum(v.numel() for v in state.values()) / 1e6:.1f}M values) '
          f'to {args.out} in {args.format} format')


if __name__ == '__main__':
    main()
