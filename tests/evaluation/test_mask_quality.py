"""Mask quality measures on hand-built cases."""
import numpy as np
import pytest

from r2o_mm.evaluation.mask_quality import (best_overlaps, foreground_miou, iou_counts, majority_foreground,
                                            mean_best_overlap)


def test_best_overlaps_by_hand():
    # 4 x 4 image; prediction: left half label 0, right half split into 1 (top) and 2 (bottom).
    labels = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 2, 2], [0, 0, 2, 2]])
    objects = np.zeros((3, 4, 4), bool)
    objects[0, :, :2] = True           # exactly label 0: IoU 1
    objects[1, :2, 1:] = True          # 6 pixels; label 1 (4 px) inside it: IoU 4/6
    objects[2, 3, 3] = True            # 1 pixel inside label 2 (4 px): IoU 1/4
    assert best_overlaps(labels, objects) == pytest.approx([1.0, 4 / 6, 0.25])
    # mBO averages over objects of all images, in percent.
    assert mean_best_overlap([best_overlaps(labels, objects), np.array([0.5])]) == \
        pytest.approx(100 * (1 + 4 / 6 + 0.25 + 0.5) / 4)
    assert best_overlaps(labels, np.zeros((0, 4, 4), bool)).size == 0


def test_one_mask_for_everything_scores_the_object_share():
    objects = np.zeros((1, 10, 10), bool)
    objects[0, :5] = True
    assert best_overlaps(np.zeros((10, 10), int), objects) == pytest.approx([0.5])


def test_foreground_miou_by_hand():
    clusters = np.array([[0, 0, 1, 1], [2, 2, 1, 1]])
    truth = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], bool)
    # cluster 0: 1/2 fg (not a majority), cluster 1: 3/4 fg, cluster 2: 0/2.
    prediction = majority_foreground(clusters, truth)
    assert prediction.tolist() == [[False, False, True, True], [False, False, True, True]]
    counts = iou_counts(prediction, truth)
    assert counts.tolist() == [3, 5, 3, 5]  # fg: 3 of 5; bg: 3 of 5
    assert foreground_miou(counts) == pytest.approx({'mIoU': 60.0, 'fg_IoU': 60.0, 'bg_IoU': 60.0})


def test_zero_descriptor_share_counts_superpixels_that_miss_every_sample_point():
    """32 px to a 2 x 2 grid, bilinear without antialiasing: output row i reads
    source rows around (i + 0.5) x 16 - 0.5, i.e. rows 7-8 and 23-24. A
    superpixel on rows 0-3 covers none of them: zero weight, a zero
    descriptor; absent labels do not count."""
    import torch
    from r2o_mm.evaluation.mask_prediction import zero_descriptor_share
    labels = torch.full((1, 32, 32), 2)
    labels[0, :4] = 0      # misses rows 7-8 and 23-24
    labels[0, 4:16] = 1    # covers rows 7-8
    labels[0, 16:, :] = 4  # label 3 absent; 4 covers rows 23-24
    assert zero_descriptor_share(labels, 2) == 1 / 3
    labels[0, :4] = 1
    assert zero_descriptor_share(labels, 2) == 0.0
