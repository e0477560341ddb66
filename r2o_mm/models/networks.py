"""The networks R2O is built from: a torchvision-layout ResNet and BYOL's MLP."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet

from .row_compaction import weighted_batch_norm

_RESNETS = {18: resnet.resnet18, 34: resnet.resnet34, 50: resnet.resnet50, 101: resnet.resnet101}


class ResNetEncoder(nn.Module):
    """ResNet without avgpool and fc, keeping torchvision's key layout.

    Keys are ``conv1.*``, ``bn1.*``, ``layer1..4.*`` exactly as in
    ``torchvision.models.resnet50()``, which is also the layout of mmdet's and
    mmseg's ``ResNet``, so the weights load downstream unchanged.
    """

    # Strides of layer3 (c4) and layer4 (c5) and of layer1 (c2, the mask grid).
    c2_stride, c4_stride, c5_stride = 4, 16, 32

    def __init__(self, depth: int = 50):
        super().__init__()
        if depth not in _RESNETS:
            raise ValueError(f'ResNet depth must be one of {sorted(_RESNETS)}, got {depth}')
        self.depth = depth
        net = _RESNETS[depth](weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.c4_channels = net.layer4[0].conv1.in_channels
        self.c5_channels = net.fc.in_features

    def forward_c4(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> layer3 features (B, c4_channels, H/16, W/16)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> layer4 features (B, c5_channels, H/32, W/32)."""
        return self.layer4(self.forward_c4(x))


class MLP(nn.Module):
    """Linear -> BatchNorm1d -> ReLU -> Linear, applied to the last axis.

    Input (..., in_dim) is flattened to rows, so BatchNorm statistics cover
    every row given (all 2B*K regions: Quirk Q5 when absent masks are included).
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim),
                                 nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """x (..., in_dim) -> (..., out_dim). With ``weights`` (rows,), x is
        (rows, in_dim) and row i counts ``weights[i]`` times in the BatchNorm
        statistics (:func:`weighted_batch_norm`)."""
        if weights is None:
            return self.net(x.flatten(0, -2)).view(*x.shape[:-1], -1)
        first, norm, relu, last = self.net
        return last(relu(weighted_batch_norm(first(x), weights, norm)))
