"""The base every registry entry shares: the input-size contract and deep-supervision outputs."""

from __future__ import annotations

import abc

import torch
from torch import nn

from segbench import SegbenchError


class SegmentationModel(nn.Module, metaclass=abc.ABCMeta):
    """Owns ``forward``: checks the input size, then calls ``segment``.

    Subclasses set ``size_multiple`` (H and W must be divisible by it) and, where a layer needs
    more room, ``min_size``. ``segment`` returns logits (N, classes, H, W), or a list of them
    with the final output first when deep supervision is on; in eval mode only that final output
    is returned, so deep-supervision heads only ever feed the training loss.
    """

    size_multiple: int = 16
    min_size: int = 0

    @abc.abstractmethod
    def segment(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """The model's own forward pass, without the size check."""

    def check_input(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2:]
        name = type(self).__name__
        if h % self.size_multiple or w % self.size_multiple:
            fit = [-(-s // self.size_multiple) * self.size_multiple for s in (h, w)]
            raise SegbenchError(f"{name}: input height and width must be divisible by {self.size_multiple}, "
                                f"got {h}x{w} (pad to {fit[0]}x{fit[1]}, or set preprocess.size to a multiple "
                                f"of {self.size_multiple})")
        if min(h, w) < self.min_size:
            raise SegbenchError(f"{name}: input must be at least {self.min_size}x{self.min_size}, got {h}x{w}")

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        self.check_input(x)
        outputs = self.segment(x)
        if isinstance(outputs, (list, tuple)) and not self.training:
            return outputs[0]
        return outputs
