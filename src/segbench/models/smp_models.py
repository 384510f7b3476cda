"""segmentation_models_pytorch's encoder-decoders (Iakubovskii, 2019)."""

from __future__ import annotations

import segmentation_models_pytorch as smp
from torch import nn

from segbench import SegbenchError
from segbench.models.registry import register_model


@register_model("smp")
def smp_model(in_channels: int, classes: int, arch: str = "Unet", encoder: str = "resnet18",
              encoder_weights: str | None = None, **kwargs) -> nn.Module:
    """Any smp architecture; ``encoder_weights`` defaults to none (no download at run time).

    Shape: (N, in_channels, H, W) -> logits (N, classes, H, W); H, W divisible by 32.
    """
    try:
        return smp.create_model(arch, encoder_name=encoder, encoder_weights=encoder_weights,
                                in_channels=in_channels, classes=classes, **kwargs)
    except KeyError as exc:
        raise SegbenchError(f"smp: {exc.args[0] if exc.args else exc}") from None
    except OSError as exc:  # weight download failed: offline
        raise SegbenchError(f"smp: cannot fetch {encoder_weights!r} weights for {encoder!r} ({exc}); "
                            "set encoder_weights: null or run where the internet is reachable") from None
