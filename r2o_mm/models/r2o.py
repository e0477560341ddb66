"""R2O: BYOL whose targets are regions that grow from superpixels to objects.

One training step (docs/method.md section 2):

1. Mask prediction, without gradients. The *target* encoder describes each
   SLIC superpixel of the raw (whole, un-augmented) image by pooling its
   layer3 features; K-means over all superpixels of the batch merges them into
   K clusters; the cluster labels are painted onto an M x M grid and one-hot
   encoded into K masks; each view's masks are cut out with RoIAlign along the
   view's crop box and flipped like the view.
2. Representation learning. The online encoder's last feature map of each
   view is average-pooled inside every mask; projector and predictor map the
   K region vectors to q. The target encoder and projector give z for the same
   masks in the *other* view. The loss is BYOL's normalised MSE over the masks
   present in both views, in both directions.

K is set from outside (:class:`r2o_mm.engine.hooks.ClusterScheduleHook`); a
value above ``max_kmeans_clusters`` means "the SLIC superpixels themselves".
The target network is updated by :meth:`R2O.update_target` once per optimiser
step (:class:`r2o_mm.engine.hooks.TargetEMAHook`).
"""
from __future__ import annotations

import contextlib
import copy

import torch
from mmengine.dist import get_rank
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from ..utils.config import require_switch
from ..utils.seeding import mix_seed
from .networks import MLP, ResNetEncoder
from .regions import (KMEANS_EMPTY_CLUSTERS, MAX_CLUSTERS, MIN_MASK_AREA, SUPERPIXELS_ONLY, kmeans,
                      paint_cluster_labels, pool_masked, region_loss, resize_onehot, superpixel_descriptors,
                      view_masks)
from .row_compaction import compact_rows

__all__ = ['R2O', 'SUPERPIXELS_ONLY']


@MODELS.register_module()
class R2O(BaseModel):
    """Region-to-object representation learning.

    Args:
        depth: ResNet depth of both encoders (50 in the paper, 18 for tests).
        projector_hidden, projection_dim, predictor_hidden: BYOL's MLP sizes
            (4096, 256, 4096 in the paper).
        num_clusters: initial K; the schedule hook overwrites it every epoch.
        max_kmeans_clusters: K above this means "SLIC superpixels only" (128).
        mask_source: ``'kmeans'`` (R2O), ``'whole_image'`` (one mask covering
            the image: BYOL's global pooling, the baseline).
        superpixel_source: ``'slic'`` (the SLIC prior) or ``'grid'`` (the
            layer3 grid cells stand in for superpixels: the "no SLIC prior"
            ablation of Table 4).
        paint_mode: Quirk Q4. ``'bilinear_truncate'`` (released) or
            ``'nearest'`` (fixed). With superpixels only (Q9) the released
            masks are the soft bilinear M x M superpixel maps themselves;
            ``'nearest'`` makes them exact.
        pool_divisor: Quirk Q6. ``'clamp_one'`` (released: divide by
            max(area, 1)) or ``'area'`` (fixed: true average).
        bn_includes_absent_masks: Quirk Q5. True (released): the projector's
            BatchNorm sees the zero rows of masks absent from a view; False
            (fixed): only rows of masks present in the view are projected.
        kmeans_iters, kmeans_tol: Lloyd iterations and stopping tolerance.
        kmeans_empty_clusters: Quirk Q8. ``'collapse'`` (released: a cluster
            that empties sends every point of the batch into one cluster;
            stop on |change of inertia| < tol) or ``'keep'`` (the empty
            cluster keeps its centre; stop on centre shift < tol).
        kmeans_seed: seed of the K-means++ generator (plus the process rank).
        compact_absent_rows: run the projector and predictor once for all
            the identical rows of masks absent from a view (with their count
            in the BatchNorm statistics): the same numbers, fewer FLOPs
            (:mod:`r2o_mm.models.row_compaction`). False runs every row.
    """

    def __init__(self, depth: int = 50, projector_hidden: int = 4096, projection_dim: int = 256,
                 predictor_hidden: int = 4096, num_clusters: int = 128, max_kmeans_clusters: int = MAX_CLUSTERS,
                 mask_source: str = 'kmeans', superpixel_source: str = 'slic',
                 paint_mode: str = 'bilinear_truncate', pool_divisor: str = 'clamp_one',
                 bn_includes_absent_masks: bool = True, kmeans_iters: int = 200,
                 kmeans_tol: float = 1e-6, kmeans_empty_clusters: str = 'collapse',
                 kmeans_seed: int = 0, compact_absent_rows: bool = True, data_preprocessor=None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor or dict(type='R2ODataPreprocessor'),
                         init_cfg=init_cfg)
        for name, value, allowed in [('mask_source', mask_source, ('kmeans', 'whole_image')),
                                     ('superpixel_source', superpixel_source, ('slic', 'grid')),
                                     ('paint_mode', paint_mode, ('bilinear_truncate', 'nearest')),
                                     ('pool_divisor', pool_divisor, ('clamp_one', 'area')),
                                     ('kmeans_empty_clusters', kmeans_empty_clusters,
                                      KMEANS_EMPTY_CLUSTERS)]:
            require_switch(f'model.{name}', value, allowed)
        require_switch('model.bn_includes_absent_masks', bn_includes_absent_masks)
        require_switch('model.compact_absent_rows', compact_absent_rows)
        self.online_encoder = ResNetEncoder(depth)
        feat_dim = self.online_encoder.c5_channels
        self.online_projector = MLP(feat_dim, projector_hidden, projection_dim)
        self.predictor = MLP(projection_dim, predictor_hidden, projection_dim)
        self.target_encoder = copy.deepcopy(self.online_encoder).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.online_projector).requires_grad_(False)

        self.num_clusters = num_clusters
        self.max_kmeans_clusters = max_kmeans_clusters
        self.mask_source, self.superpixel_source = mask_source, superpixel_source
        self.paint_mode, self.pool_divisor = paint_mode, pool_divisor
        self.bn_includes_absent_masks = bn_includes_absent_masks
        self.kmeans_iters, self.kmeans_tol = kmeans_iters, kmeans_tol
        self.kmeans_empty_clusters = kmeans_empty_clusters
        self.compact_absent_rows = compact_absent_rows
        # K-means calls, and those in which a cluster emptied (Q8), since the
        # last reset by ClusterScheduleHook (this process only).
        self.kmeans_calls = self.kmeans_empty_calls = 0
        # Each K-means call seeds the generator from (kmeans_seed, rank, number
        # of draws so far): the draws are a function of counters, the same on
        # every rank, so a checkpoint (rank 0's) resumes every rank exactly.
        self.kmeans_seed, self.kmeans_draws = kmeans_seed, 0
        self.kmeans_generator = torch.Generator()

    # ----------------------------------------------------------- target network
    def _online_and_target_params(self):
        online = [*self.online_encoder.parameters(), *self.online_projector.parameters()]
        target = [*self.target_encoder.parameters(), *self.target_projector.parameters()]
        return online, target

    def init_weights(self):
        super().init_weights()
        self.copy_online_to_target()

    @torch.no_grad()
    def copy_online_to_target(self):
        """Make the target an exact copy of the online network (step 0)."""
        self.target_encoder.load_state_dict(self.online_encoder.state_dict())
        self.target_projector.load_state_dict(self.online_projector.state_dict())

    @torch.no_grad()
    def update_target(self, tau: float):
        """target = tau * target + (1 - tau) * online.

        tau is the share of the *old target* weights (0.99 rising to 1.0),
        the opposite of mmengine's ExponentialMovingAverage momentum.
        """
        online, target = self._online_and_target_params()
        torch._foreach_lerp_(target, online, 1.0 - tau)

    # -------------------------------------------------------------- generator
    # The number of K-means draws travels in the state_dict, so a resumed run
    # (on any number of ranks) draws the same seeds.
    def get_extra_state(self) -> torch.Tensor:
        return torch.tensor([self.kmeans_draws], dtype=torch.int64)

    def set_extra_state(self, state: torch.Tensor):
        if state.dtype == torch.int64 and state.numel() == 1:
            self.kmeans_draws = int(state.item())
        # else: a checkpoint from before the counter (a generator state): the
        # draws start again from 0.

    @contextlib.contextmanager
    def kmeans_state_kept(self, draws: int | None = None):
        """K-means calls inside (pictures, evaluations) leave the training
        run's draw count and counters as they were; ``draws`` fixes the
        seeding inside (the same at every evaluation)."""
        saved = (self.kmeans_draws, self.kmeans_calls, self.kmeans_empty_calls)
        if draws is not None:
            self.kmeans_draws = draws
        try:
            yield
        finally:
            self.kmeans_draws, self.kmeans_calls, self.kmeans_empty_calls = saved

    def next_kmeans_generator(self) -> torch.Generator:
        """The generator of the next K-means call."""
        self.kmeans_generator.manual_seed(mix_seed(self.kmeans_seed, get_rank(), self.kmeans_draws))
        self.kmeans_draws += 1
        return self.kmeans_generator

    # -------------------------------------------------------- mask prediction
    @property
    def superpixels_only(self) -> bool:
        return self.num_clusters > self.max_kmeans_clusters

    def _grid_superpixels(self, raw: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, H, W) labels of the layer3 grid cells."""
        batch, _, height, width = raw.shape
        rows = torch.arange(height, device=raw.device) * (height // self.online_encoder.c4_stride) // height
        cols = torch.arange(width, device=raw.device) * (width // self.online_encoder.c4_stride) // width
        grid = rows[:, None] * (width // self.online_encoder.c4_stride) + cols[None, :]
        return grid.expand(batch, height, width)

    @staticmethod
    def full_precision(device_type: str):
        """Under mixed precision (``--amp``: bf16 autocast), the region
        arithmetic runs in float32: superpixel descriptors, K-means (on bf16
        distances it would be another algorithm), painting, RoIAlign of the
        masks and the loss. Without autocast: nothing."""
        if device_type in ('cpu', 'cuda') and torch.is_autocast_enabled(device_type):
            return torch.autocast(device_type=device_type, enabled=False)
        return contextlib.nullcontext()

    @torch.no_grad()
    def predict_masks(self, raw: torch.Tensor, superpixels: torch.Tensor,
                      num_superpixels: int | None = None) -> tuple[torch.Tensor, dict]:
        """Whole-image masks (B, K, M, M), M = H / 4, from the target encoder.

        ``num_superpixels`` (largest label + 1, counted on the host by the
        data preprocessor) spares reading it from the device.
        Returns the masks and logged statistics (clusters used per image).
        """
        batch, _, height, width = raw.shape
        size = height // self.online_encoder.c2_stride
        if self.mask_source == 'whole_image':
            return raw.new_ones(batch, 1, size, size), {}
        if self.superpixel_source == 'grid':
            superpixels = self._grid_superpixels(raw)
            stride = self.online_encoder.c4_stride
            num_slots = (height // stride) * (width // stride)
        elif num_superpixels is not None:
            num_slots = num_superpixels
        else:
            num_slots = int(superpixels.max()) + 1
        # Soft (bilinear) or exact (nearest, the Q4 fix) superpixel maps at M x M.
        mask_maps = resize_onehot(superpixels, num_slots, size,
                                  'nearest' if self.paint_mode == 'nearest' else 'bilinear').to(raw.dtype)
        if self.superpixels_only:
            # Q9: the soft M x M superpixel maps go to RoIAlign as they are.
            masks, stats = mask_maps, {}
        else:
            c4 = self.target_encoder.forward_c4(raw)
            with self.full_precision(raw.device.type):
                descriptors = superpixel_descriptors(c4.float(), resize_onehot(superpixels, num_slots, c4.shape[-1]))
                result = kmeans(descriptors.flatten(0, 1), self.num_clusters, self.kmeans_iters, self.kmeans_tol,
                                self.next_kmeans_generator(), self.kmeans_empty_clusters)
                self.kmeans_calls += 1
                self.kmeans_empty_calls += int(result.hit_empty)
                painted = paint_cluster_labels(mask_maps, result.labels.view(batch, -1), size, self.paint_mode)
                # One-hot by comparison: F.one_hot checks its input's range on the host.
                clusters = torch.arange(self.num_clusters, device=painted.device)[None, :, None, None]
                masks = (painted.clamp(max=self.num_clusters - 1)[:, None] == clusters).to(raw.dtype)
            stats = {'kmeans_empty': raw.new_tensor(float(result.hit_empty))}
        used = (masks.flatten(2).sum(-1) > 0).float().sum(1).mean()
        return masks, {'num_segments': used, **stats}

    # ------------------------------------------------- representation learning
    def _mlps(self, rows: torch.Tensor, shared: torch.Tensor, mlps) -> torch.Tensor:
        """Apply ``mlps`` in turn to rows (N, K, D); ``shared`` (N, K) marks
        rows known to be identical (exactly zero), computed once when
        compaction is on."""
        if not self.compact_absent_rows:
            for mlp in mlps:
                rows = mlp(rows)
            return rows
        batch, clusters = rows.shape[:2]
        compact, weights, index = compact_rows(rows.flatten(0, 1), shared.flatten())
        for mlp in mlps:
            compact = mlp(compact, weights)
        return compact[index].view(batch, clusters, -1)

    def _embed(self, features, masks, projector, predictor=None):
        """Pool features (N, D, h, w) in masks (N, K, h*w); project (and
        predict) to (N, K, d)."""
        pooled = pool_masked(features, masks, self.pool_divisor)
        mlps = [projector] + ([predictor] if predictor is not None else [])
        if self.bn_includes_absent_masks:  # Q5: zero rows of absent masks count in BN
            return self._mlps(pooled, (masks == 0).all(-1), mlps)
        present = masks.sum(-1) > MIN_MASK_AREA
        # The present rows in order, by index (boolean-mask indexing would
        # synchronise with the host again in the backward pass).
        flat = present.flatten()
        rows = torch.argsort((~flat).to(torch.uint8), stable=True)[:int(flat.sum())]
        projected = pooled.new_zeros(flat.shape[0], projector.net[-1].out_features).index_copy(
            0, rows, projector(pooled.flatten(0, 1).index_select(0, rows)))
        projected = projected.view(*pooled.shape[:2], -1)
        # The predictor still sees the zero rows of absent masks.
        return self._mlps(projected, ~present, mlps[1:]) if predictor is not None else projected

    def loss(self, inputs: dict) -> dict:
        view1, view2 = inputs['view1'], inputs['view2']
        boxes, flips = inputs['boxes'], inputs['flips']
        online_features = self.online_encoder(torch.cat([view1, view2]))
        grid = online_features.shape[-1]

        whole_masks, stats = self.predict_masks(inputs['raw'], inputs['superpixels'],
                                                  inputs.get('num_superpixels'))
        with self.full_precision(view1.device.type):
            masks1 = view_masks(whole_masks, boxes[:, 0], flips[:, 0], grid)
            masks2 = view_masks(whole_masks, boxes[:, 1], flips[:, 1], grid)

        online = self._embed(online_features, torch.cat([masks1, masks2]), self.online_projector, self.predictor)
        with torch.no_grad():
            target_features = self.target_encoder(torch.cat([view2, view1]))
            target = self._embed(target_features, torch.cat([masks2, masks1]), self.target_projector)

        present = (masks1.sum(-1) > MIN_MASK_AREA) & (masks2.sum(-1) > MIN_MASK_AREA)
        with self.full_precision(view1.device.type):
            loss = region_loss(online.float(), target.float(), torch.cat([present, present]))
        return {'loss': loss, 'num_overlapping': present.float().sum(1).mean(), **stats}

    def forward(self, inputs, data_samples=None, mode: str = 'loss'):
        if mode == 'loss':
            return self.loss(inputs)
        if mode == 'tensor':
            images = inputs['view1'] if isinstance(inputs, dict) else inputs
            return self.online_encoder(images)
        raise ValueError(f"R2O supports mode 'loss' and 'tensor', got {mode!r}")
