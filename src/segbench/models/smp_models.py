"""segmentation_models_pytorch's 12 encoder-decoders (Iakubovskii, 2019), one entry each."""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch

from segbench import SegbenchError
from segbench.models.base import SegmentationModel
from segbench.models.registry import register_model

# entry name -> (smp architecture, default encoder, paper)
ARCHITECTURES = {
    "smp_unet": ("Unet", "resnet18", "Ronneberger et al., 2015"),
    "smp_unetplusplus": ("UnetPlusPlus", "resnet18", "Zhou et al., 2018"),
    "smp_manet": ("MAnet", "resnet18", "Fan et al., 2020"),
    "smp_linknet": ("Linknet", "resnet18", "Chaurasia & Culurciello, 2017"),
    "smp_fpn": ("FPN", "resnet18", "Kirillov et al., 2019"),
    "smp_pspnet": ("PSPNet", "resnet18", "Zhao et al., 2017"),
    "smp_deeplabv3": ("DeepLabV3", "resnet18", "Chen et al., 2017"),
    "smp_deeplabv3plus": ("DeepLabV3Plus", "resnet18", "Chen et al., 2018"),
    "smp_pan": ("PAN", "resnet18", "Li et al., 2018"),
    "smp_upernet": ("UPerNet", "resnet18", "Xiao et al., 2018"),
    "smp_segformer": ("Segformer", "mit_b0", "Xie et al., 2021"),
    "smp_dpt": ("DPT", "tu-vit_tiny_patch16_224", "Ranftl et al., 2021"),
}
# PAN's feature-pyramid attention pools its stride-16 map three times: 128 px is the least it takes.
MIN_SIZE = {"PAN": 128}


class SmpModel(SegmentationModel):
    """One smp model behind segbench's size contract. Shape: (N, C_in, H, W) -> logits (N, classes, H, W)."""

    def __init__(self, arch: str, in_channels: int, classes: int, encoder: str, encoder_weights: str | None,
                 **options):
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


def _register(name: str, arch: str, default_encoder: str, paper: str) -> None:
    @register_model(name, paper=paper)
    def build(in_channels: int, classes: int, encoder: str = default_encoder,
              encoder_weights: str | None = None, **options) -> SmpModel:
        """smp's model; ``encoder_weights`` defaults to none (no download); ``imagenet`` is opt-in.

        With pretrained weights and 1 input channel, smp sums the first conv's RGB kernels.
        Other options go to smp, e.g. ``decoder_attention_type: scse`` for ``smp_unet``.
        """
        return SmpModel(arch, in_channels, classes, encoder, encoder_weights, **options)


for _name, (_arch, _encoder, _paper) in ARCHITECTURES.items():
    _register(_name, _arch, _encoder, _paper)
