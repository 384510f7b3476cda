"""segmentation_models_pytorch's encoder-decoders (Iakubovskii, 2019) behind segbench's size contract.

The registry (``segbench.models``) has one entry per smp architecture, each binding ``arch``.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch

from segbench import SegbenchError
from segbench.models.base import SegmentationModel

# PAN's feature-pyramid attention pools its stride-16 map three times: 128 px is the least it takes.
MIN_SIZE = {"PAN": 128}


class SmpModel(SegmentationModel):
    """One smp model behind segbench's size contract. Shape: (N, C_in, H, W) -> logits (N, classes, H, W)."""

    def __init__(self, arch: str, in_channels: int = 1, classes: int = 1, encoder: str = "resnet18",
                 encoder_weights: str | None = None, **options):
        """``encoder_weights`` defaults to none (no download); ``imagenet`` is opt-in. With pretrained
        weights and 1 input channel, smp sums the first conv's RGB kernels. Other options go to smp's
        class, e.g. ``decoder_attention_type: scse`` for ``Unet``."""
        super().__init__()
        if arch == "DPT":
            options.setdefault("dynamic_img_size", True)  # the ViT encoder takes any multiple of its patch
        try:
            self.net = smp.create_model(arch, encoder_name=encoder, encoder_weights=encoder_weights,
                                        in_channels=in_channels, classes=classes, **options)
        except KeyError as exc:
            raise SegbenchError(f"smp {arch}: {exc.args[0] if exc.args else exc}") from None
        except OSError as exc:  # the weights could not be fetched: offline
            raise SegbenchError(
                f"smp {arch}: cannot fetch the {encoder_weights!r} weights of encoder {encoder!r} ({exc}). "
                "Set encoder_weights: null, or run once where the internet is reachable so the weights "
                "are cached (HF_HOME / TORCH_HOME), then copy the cache here") from None
        self.size_multiple = self.net.encoder.output_stride
        self.min_size = MIN_SIZE.get(arch, 0)

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

