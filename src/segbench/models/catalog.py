"""The architecture registry's table: one line per entry, its name, its builder ("module:class", imported only
when built) and its paper. The options an entry takes are its class's keyword arguments (``segbench list
architectures`` prints them); ``params.yaml: architectures.<name>`` sets them. Adding an architecture is one
module plus one line here.

The table is code the pipeline tracks per entry: a train job depends on its own entry's line and module,
not on this file, so adding a line reruns nothing that exists (``segbench.pipeline``).
"""

from __future__ import annotations

from segbench.registry import Check, Registry, at_least, one_of, within

# in_channels and classes come from the data; smp's activation and aux_params would change the output
MODELS = Registry("architecture", reserved=("in_channels", "classes", "encoder_name", "activation", "aux_params"))

_WIDTH = (at_least("base_channels", 1), at_least("depth", 1))
_UPSAMPLING = one_of("upsampling", "transposed", "bilinear", "nearest", "max_unpool")
_ROOT = "segbench.models"

MODELS.add("unet", f"{_ROOT}.unet:UNet", "Ronneberger et al., 2015",
           checks=(*_WIDTH, _UPSAMPLING, within("dropout", 0, 0.99)))
MODELS.add("stacked_unet", f"{_ROOT}.unet:StackedUNet", "Newell et al., 2016 (stacking); Ronneberger et al., 2015",
           checks=(*_WIDTH, _UPSAMPLING))
MODELS.add("attention_unet", f"{_ROOT}.attention_unet:AttentionUNet", "Oktay et al., 2018; the thesis's SegUNet",
           checks=(*_WIDTH, within("dropout", 0, 0.99)))
MODELS.add("unet_plusplus", f"{_ROOT}.unet_plusplus:UNetPlusPlus", "Zhou et al., 2018", checks=_WIDTH)
MODELS.add("unet3plus", f"{_ROOT}.unet3plus:UNet3Plus", "Huang et al., 2020", checks=_WIDTH)
MODELS.add("r2unet", f"{_ROOT}.r2unet:R2UNet", "Alom et al., 2018", checks=(*_WIDTH, at_least("t", 1)))
MODELS.add("r2attunet", f"{_ROOT}.r2unet:R2UNet", "Alom et al., 2018; Oktay et al., 2018",
           bind={"attention": True}, checks=(*_WIDTH, at_least("t", 1)))
MODELS.add("multiresunet", f"{_ROOT}.multiresunet:MultiResUNet", "Ibtehaz & Rahman, 2020", checks=_WIDTH)
MODELS.add("unet_respath", f"{_ROOT}.multiresunet:MultiResUNet",
           "Ibtehaz & Rahman, 2020 (ablation: U-Net + ResPath)", bind={"multires_blocks": False}, checks=_WIDTH)
MODELS.add("unet_multires", f"{_ROOT}.multiresunet:MultiResUNet",
           "Ibtehaz & Rahman, 2020 (ablation: U-Net + MultiRes blocks)", bind={"res_paths": False}, checks=_WIDTH)
MODELS.add("transunet", f"{_ROOT}.transunet:TransUNet", "Chen et al., 2021", checks=(
    at_least("base_channels", 1), at_least("layers", 1), at_least("heads", 1),
    Check("hidden", lambda o: o["hidden"] > 0 and o["hidden"] % o["heads"] == 0,
          "must be a positive multiple of heads (attention splits it into equal heads)"),
    Check("img_size", lambda o: o["img_size"] > 0 and o["img_size"] % 16 == 0, "must be a positive multiple of 16")))
MODELS.add("nnunet_plain", f"{_ROOT}.nnunet_nets:NnunetUNet", "Isensee et al., 2021 (nnU-Net's PlainConvUNet)",
           bind={"residual": False}, checks=(at_least("stages", 2), at_least("base_channels", 1)))
MODELS.add("nnunet_resenc", f"{_ROOT}.nnunet_nets:NnunetUNet",
           "Isensee et al., 2024 (nnU-Net Revisited: ResidualEncoderUNet, ResEnc M)",
           bind={"residual": True}, checks=(at_least("stages", 2), at_least("base_channels", 1)))

# segmentation_models_pytorch's 12 encoder-decoders (Iakubovskii, 2019): entry -> (class, its module,
# default encoder, paper). Their own keyword options pass through, e.g. decoder_attention_type.
SMP = {
    "smp_unet": ("Unet", "unet", "resnet18", "Ronneberger et al., 2015"),
    "smp_unetplusplus": ("UnetPlusPlus", "unetplusplus", "resnet18", "Zhou et al., 2018"),
    "smp_manet": ("MAnet", "manet", "resnet18", "Fan et al., 2020"),
    "smp_linknet": ("Linknet", "linknet", "resnet18", "Chaurasia & Culurciello, 2017"),
    "smp_fpn": ("FPN", "fpn", "resnet18", "Kirillov et al., 2019"),
    "smp_pspnet": ("PSPNet", "pspnet", "resnet18", "Zhao et al., 2017"),
    "smp_deeplabv3": ("DeepLabV3", "deeplabv3", "resnet18", "Chen et al., 2017"),
    "smp_deeplabv3plus": ("DeepLabV3Plus", "deeplabv3", "resnet18", "Chen et al., 2018"),
    "smp_pan": ("PAN", "pan", "resnet18", "Li et al., 2018"),
    "smp_upernet": ("UPerNet", "upernet", "resnet18", "Xiao et al., 2018"),
    "smp_segformer": ("Segformer", "segformer", "mit_b0", "Xie et al., 2021"),
    "smp_dpt": ("DPT", "dpt", "tu-vit_tiny_patch16_224", "Ranftl et al., 2021"),
}
for _name, (_arch, _module, _encoder, _paper) in SMP.items():
    MODELS.add(_name, f"{_ROOT}.smp_models:SmpModel", _paper, bind={"arch": _arch}, defaults={"encoder": _encoder},
               extends=f"segmentation_models_pytorch.decoders.{_module}.model:{_arch}")
