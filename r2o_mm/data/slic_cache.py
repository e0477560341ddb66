"""Precomputes SLIC label maps of the raw views of a dataset.

The raw view (whole image resized to the input size) is deterministic per
image, so its superpixels can be computed once. Maps are 16-bit PNGs under
``<cache_dir>/<image key without extension>.png``; each is written to a
temporary name and renamed, so an interrupted build leaves no partial file
and a re-run only computes what is missing.
"""
from __future__ import annotations

import os
import time
from multiprocessing import get_context

import cv2

from .transforms import LoadImageRGB, RawViewSuperpixels, superpixel_cache_path


def _compute_one(args) -> tuple[str, str | None]:
    """Worker: (key, path, transform settings) -> (key, error or None)."""
    key, path, settings, cache_dir = args
    loaded = LoadImageRGB().transform({'img_path': path})
    if loaded is None:
        return key, 'unreadable'
    prior = RawViewSuperpixels(**settings)
    labels = prior.superpixels(prior.raw_view(loaded['img']))
    target = superpixel_cache_path(cache_dir, key)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = f'{target}.{os.getpid()}.tmp.png'
    if not cv2.imwrite(partial, labels):
        return key, f'could not write {partial}'
    os.replace(partial, target)
    return key, None


def build_superpixel_cache(items: list[tuple[str, str]], cache_dir: str, settings: dict,
                           workers: int = 1, log=print) -> dict:
    """Computes the missing label maps of ``items`` = [(img_key, img_path)].

    ``settings`` are :class:`RawViewSuperpixels` arguments (size, n_segments,
    compactness, slic_on_normalized, ignore_n_segments). Logs progress with an
    ETA about every 5% and returns counts: total, cached before, computed,
    failed, seconds.
    """
    settings = {k: v for k, v in settings.items() if k != 'cache_dir'}
    todo = [(key, path) for key, path in items
            if not os.path.isfile(superpixel_cache_path(cache_dir, key))]
    stats = dict(total=len(items), cached_before=len(items) - len(todo), computed=0, failed=0)
    log(f'superpixel cache {cache_dir}: {len(items)} images, {stats["cached_before"]} already cached, '
        f'{len(todo)} to compute with {workers} process(es)')
    start = time.time()
    jobs = [(key, path, settings, cache_dir) for key, path in todo]
    step = max(len(jobs) // 20, 1)
    if workers > 1:
        pool = get_context('spawn').Pool(workers)
        results = pool.imap_unordered(_compute_one, jobs, chunksize=8)
    else:
        pool, results = None, map(_compute_one, jobs)
    try:
        for done, (key, error) in enumerate(results, 1):
            if error:
                stats['failed'] += 1
                stats.setdefault('first_failure', f'{key}: {error}')
                log(f'  skipped {key}: {error}')
            else:
                stats['computed'] += 1
            if done % step == 0 or done == len(jobs):
                elapsed = time.time() - start
                eta = elapsed / done * (len(jobs) - done)
                log(f'  {done}/{len(jobs)} ({100 * done / len(jobs):.0f}%), {done / elapsed:.1f} images/s, '
                    f'elapsed {elapsed:.0f}s, ETA {eta:.0f}s')
    finally:
        if pool is not None:
            pool.terminate()
    stats['seconds'] = time.time() - start
    return stats
