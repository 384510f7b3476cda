"""The architecture registry's table: one entry per architecture, its builder ("module:class", imported only
when built), its paper, a one-line summary and the options ``params.yaml: architectures.<name>`` may set, with
their defaults (``segbench list architectures`` prints them; a unit test checks them against the class's
signature). Adding an architecture is one module plus one entry here.

The table is code the pipeline tracks per entry: a train job depends on its own entry and module, not on this
file, so adding an entry reruns nothing that exists (``segbench.pipeline``).
"""

from __future__ import annotations

from segbench.registry import Check, Registry, at_least, one_of, within

# in_channels and classes come from the data; smp's activation and aux_params would change the output
MODELS = Registry("architecture", reserved=("in_channels", "classes", "encoder_name", "activation", "aux_params"))

_WIDTH = (at_least("base_channels", 1), at_least("depth", 1))
_UPSAMPLING = one_of("upsampling", "transposed", "bilinear", "nearest", "max_unpool")
_ROOT = "segbench.models"

MODELS.add("unet", f"{_ROOT}.unet:UNet", "Ronneberger et al., 2015",
           "double 3x3 convs, max-pool down, up-convolution and skip concatenation up",
           options={"base_channels": 64, "depth": 4, "upsampling": "transposed", "dropout": 0.0},
           checks=(*_WIDTH, _UPSAMPLING, within("dropout", 0, 0.99)))
MODELS.add("stacked_unet", f"{_ROOT}.unet:StackedUNet",
           "Newell et al., 2016 (stacking); Ronneberger et al., 2015",
           "two U-Nets in sequence, the second refining the first's logits; both supervised",
           options={"base_channels": 32, "depth": 4, "upsampling": "transposed"}, checks=(*_WIDTH, _UPSAMPLING))
MODELS.add("attention_unet", f"{_ROOT}.attention_unet:AttentionUNet", "Oktay et al., 2018; the thesis's SegUNet",
           "U-Net whose skips pass through additive attention gates driven by the coarser features",
           options={"base_channels": 32, "depth": 4, "dropout": 0.3}, checks=(*_WIDTH, within("dropout", 0, 0.99)))
MODELS.add("unet_plusplus", f"{_ROOT}.unet_plusplus:UNetPlusPlus", "Zhou et al., 2018",
           "nested, dense skip pathways between encoder and decoder; optional deep supervision",
           options={"base_channels": 32, "depth": 4, "deep_supervision": False}, checks=_WIDTH)
MODELS.add("unet3plus", f"{_ROOT}.unet3plus:UNet3Plus", "Huang et al., 2020",
           "full-scale skips: every decoder stage fuses every encoder and deeper decoder scale",
           options={"base_channels": 64, "depth": 4, "deep_supervision": False}, checks=_WIDTH)
MODELS.add("r2unet", f"{_ROOT}.r2unet:R2UNet", "Alom et al., 2018",
           "U-Net of recurrent residual conv blocks (t recurrent steps each)",
           options={"base_channels": 64, "depth": 4, "t": 2, "attention": False}, checks=(*_WIDTH, at_least("t", 1)))
MODELS.add("r2attunet", f"{_ROOT}.r2unet:R2UNet", "Alom et al., 2018; Oktay et al., 2018",
           "R2U-Net with attention gates on its skips", options={"base_channels": 64, "depth": 4, "t": 2},
           bind={"attention": True}, checks=(*_WIDTH, at_least("t", 1)))
MODELS.add("multiresunet", f"{_ROOT}.multiresunet:MultiResUNet", "Ibtehaz & Rahman, 2020",
           "MultiRes blocks (chained 3x3 convs as multi-scale filters) and ResPath skips",
           options={"base_channels": 32, "depth": 4, "multires_blocks": True, "res_paths": True}, checks=_WIDTH)
MODELS.add("unet_respath", f"{_ROOT}.multiresunet:MultiResUNet",
           "Ibtehaz & Rahman, 2020 (ablation: U-Net + ResPath)", "MultiResUNet's ResPath skips on plain U-Net blocks",
           options={"base_channels": 32, "depth": 4, "res_paths": True}, bind={"multires_blocks": False},
           checks=_WIDTH)
MODELS.add("unet_multires", f"{_ROOT}.multiresunet:MultiResUNet",
           "Ibtehaz & Rahman, 2020 (ablation: U-Net + MultiRes blocks)", "MultiResUNet's blocks with plain skips",
           options={"base_channels": 32, "depth": 4, "multires_blocks": True}, bind={"res_paths": False},
           checks=_WIDTH)
MODELS.add("transunet", f"{_ROOT}.transunet:TransUNet", "Chen et al., 2021",
           "a CNN encoder, a transformer over its 1/16-scale patches, and a U-Net decoder",
           options={"base_channels": 32, "hidden": 256, "layers": 4, "heads": 8, "img_size": 256}, checks=(
    at_least("base_channels", 1), at_least("layers", 1), at_least("heads", 1),
    Check("hidden", lambda o: o["hidden"] > 0 and o["hidden"] % o["heads"] == 0,
          "must be a positive multiple of heads (attention splits it into equal heads)"),
    Check("img_size", lambda o: o["img_size"] > 0 and o["img_size"] % 16 == 0, "must be a positive multiple of 16")))
MODELS.add("nnunet_plain", f"{_ROOT}.nnunet_nets:NnunetUNet", "Isensee et al., 2021 (nnU-Net's PlainConvUNet)",
           "nnU-Net's PlainConvUNet: two convs per stage, instance norm, leaky ReLU",
           options={"stages": 7, "base_channels": 32, "max_channels": 512}, bind={"residual": False},
           checks=(at_least("stages", 2), at_least("base_channels", 1)))
MODELS.add("nnunet_resenc", f"{_ROOT}.nnunet_nets:NnunetUNet",
           "Isensee et al., 2024 (nnU-Net Revisited: ResidualEncoderUNet, ResEnc M)",
           "nnU-Net's ResidualEncoderUNet with ResEnc M's residual blocks per stage",
           options={"stages": 7, "base_channels": 32, "max_channels": 512}, bind={"residual": True},
           checks=(at_least("stages", 2), at_least("base_channels", 1)))

# segmentation_models_pytorch's 12 encoder-decoders (Iakubovskii, 2019): entry -> (class, default encoder, paper,
# the class's own keyword options that params may set, with smp's defaults).
_NORM = {"decoder_use_norm": "batchnorm"}
_UNET = {"encoder_depth": 5, **_NORM, "decoder_channels": (256, 128, 64, 32, 16), "decoder_attention_type": None,
         "decoder_interpolation": "nearest"}
_ASPP = {"encoder_depth": 5, "decoder_channels": 256, "decoder_atrous_rates": (12, 24, 36),
         "decoder_aspp_dropout": 0.5}
SMP = {
    "smp_unet": ("Unet", "resnet18", "Ronneberger et al., 2015", _UNET),
    "smp_unetplusplus": ("UnetPlusPlus", "resnet18", "Zhou et al., 2018", _UNET),
    "smp_manet": ("MAnet", "resnet18", "Fan et al., 2020", {
        "encoder_depth": 5, **_NORM, "decoder_channels": (256, 128, 64, 32, 16), "decoder_pab_channels": 64,
        "decoder_interpolation": "nearest"}),
    "smp_linknet": ("Linknet", "resnet18", "Chaurasia & Culurciello, 2017", {"encoder_depth": 5, **_NORM}),
    "smp_fpn": ("FPN", "resnet18", "Kirillov et al., 2019", {
        "encoder_depth": 5, "decoder_pyramid_channels": 256, "decoder_segmentation_channels": 128,
        "decoder_merge_policy": "add", "decoder_dropout": 0.2, "decoder_interpolation": "nearest", "upsampling": 4}),
    "smp_pspnet": ("PSPNet", "resnet18", "Zhao et al., 2017", {
        "encoder_depth": 3, "psp_out_channels": 512, **_NORM, "psp_dropout": 0.2, "upsampling": 8}),
    "smp_deeplabv3": ("DeepLabV3", "resnet18", "Chen et al., 2017", {
        **_ASPP, "encoder_output_stride": 8, "decoder_aspp_separable": False, "upsampling": None}),
    "smp_deeplabv3plus": ("DeepLabV3Plus", "resnet18", "Chen et al., 2018", {
        **_ASPP, "encoder_output_stride": 16, "decoder_aspp_separable": True, "upsampling": 4}),
    "smp_pan": ("PAN", "resnet18", "Li et al., 2018", {
        "encoder_depth": 5, "encoder_output_stride": 16, "decoder_channels": 32, "decoder_interpolation": "bilinear",
        "upsampling": 4}),
    "smp_upernet": ("UPerNet", "resnet18", "Xiao et al., 2018", {
        "encoder_depth": 5, "decoder_channels": 256, **_NORM, "upsampling": 4}),
    "smp_segformer": ("Segformer", "mit_b0", "Xie et al., 2021", {
        "encoder_depth": 5, "decoder_segmentation_channels": 256, "upsampling": 4}),
    "smp_dpt": ("DPT", "tu-vit_tiny_patch16_224", "Ranftl et al., 2021", {
        "encoder_depth": 4, "encoder_output_indices": None, "decoder_readout": "cat",
        "decoder_intermediate_channels": (256, 512, 1024, 1024), "decoder_fusion_channels": 256}),
}
for _name, (_arch, _encoder, _paper, _options) in SMP.items():
    MODELS.add(_name, f"{_ROOT}.smp_models:SmpModel", _paper, f"smp's {_arch}, a {_encoder} encoder by default",
               options={"encoder": _encoder, "encoder_weights": None, **_options}, bind={"arch": _arch})
