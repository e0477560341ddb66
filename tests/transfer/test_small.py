"""The command-line forms of the CPU-sized transfers (docs/transfer.md, "Transfers at CPU size")."""
import os

from r2o_mm.data import synthetic_scenes
from r2o_mm.transfer import small


def test_the_data_and_options_commands_give_what_the_docs_say(tmp_path, capsys):
    synthetic_scenes.main([str(tmp_path), '--train', '2', '--val', '2'])
    assert capsys.readouterr().out.strip() == (f'wrote {tmp_path}/VOCdevkit/VOC2012, {tmp_path}/coco, '
                                               f'{tmp_path}/cityscapes and {tmp_path}/imagenet')
    assert sorted(os.listdir(tmp_path / 'imagenet' / 'train')) == sorted(synthetic_scenes.CLASSIFICATION_SHAPES)
    assert len(os.listdir(tmp_path / 'VOCdevkit' / 'VOC2012' / 'JPEGImages')) == 4
    root = f'{tmp_path}/VOCdevkit/VOC2012'
    small.main(['voc', root])
    words = capsys.readouterr().out.split()
    assert words == small.as_cli(small.small_transfer_options('voc', root))
    assert 'model.backbone.depth=18' in words and 'model.decode_head.in_channels=512' in words
    small.main(['voc', root, '--depth', '50', '--iterations', '5'])
    words = capsys.readouterr().out.split()
    assert 'model.backbone.depth=50' in words and 'train_cfg.max_iters=5' in words
    assert not any(w.startswith('model.decode_head.in_channels') for w in words)
