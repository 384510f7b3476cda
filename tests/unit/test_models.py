"""Contract tests over the whole architecture registry, then what is special to each family."""

import pytest
import torch

from segbench import SegbenchError
from segbench.models import MODELS, SMP, create_model
from segbench.models.attention_unet import AttentionUNet
from segbench.models.blocks import AttentionGate
from segbench.models.multiresunet import MultiResBlock, MultiResUNet, ResPath, multires_split
from segbench.models.unet import UNet
from support import PAPER, build, valid_sizes

DEEP_SUPERVISION = {"unet_plusplus": 4, "unet3plus": 5}


def test_registry_has_every_smp_architecture_and_every_paper_model():
    assert {f"smp_{arch.lower()}" for arch, _, _, _ in SMP.values()} <= set(MODELS.names())
    assert len(SMP) == 12
    assert set(PAPER) == {"unet", "attention_unet", "unet_plusplus", "r2unet", "r2attunet", "multiresunet",
                          "unet_respath", "unet_multires", "unet3plus", "transunet", "stacked_unet",
                          "nnunet_plain", "nnunet_resenc"}
    assert len(MODELS.names()) == 25 and all(MODELS.entry(n).source for n in MODELS.names())


@pytest.mark.parametrize("name", MODELS.names())
def test_every_entrys_declared_options_are_its_builders_keyword_arguments_with_their_defaults(name):
    """What params may set is the builder's keyword arguments (minus what the registry binds or passes itself)
    with the same defaults; an smp entry's, segbench's wrapper's and then smp's class's own."""
    import inspect

    entry = MODELS.entry(name)
    builder = entry.load()
    signature = inspect.signature(builder.__init__).parameters
    own = {k: v.default for k, v in signature.items()
           if k not in ("self", "in_channels", "classes", "options", *entry.bind)}
    if name not in SMP:
        assert entry.options == own
        return
    assert {k: entry.options[k] for k in own} == {**own, "encoder": SMP[name][1]}
    smp_class = getattr(__import__("segmentation_models_pytorch"), entry.bind["arch"])
    passed = {k: v.default for k, v in inspect.signature(smp_class.__init__).parameters.items()
              if k not in ("self", "kwargs", *MODELS.reserved, *own)}
    assert {k: v for k, v in entry.options.items() if k not in own} == passed


@pytest.mark.parametrize("name", MODELS.names())
def test_every_entry_gives_logits_and_gradients_at_two_sizes_and_both_channel_counts(name):
    for in_channels in (1, 3):
        model = build(name, in_channels)
        for size in valid_sizes(name):
            model.train()
            outputs = model(torch.randn(2, in_channels, size, size))
            outputs = outputs if isinstance(outputs, list) else [outputs]
            assert all(o.shape == (2, 2, size, size) for o in outputs)
            model.zero_grad()
            sum(o.mean() for o in outputs).backward()
            assert any(p.grad is not None for p in model.parameters())
            assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", MODELS.names())
def test_every_entry_rejects_a_size_it_cannot_take_clearly_and_is_deterministic(name):
    model = build(name).eval()
    m = model.size_multiple
    with pytest.raises(SegbenchError, match=f"divisible by {m}, got {64 + m // 2}x"):
        model(torch.zeros(1, 1, 64 + m // 2, 64 + m // 2))
    size = valid_sizes(name)[0]
    x = torch.randn(1, 1, size, size)
    with torch.no_grad():
        assert torch.equal(model(x), build(name).eval()(x))


# nnU-Net's default 7 stages leave 1 x 1 pixel at 64 px: too few for instance norm
@pytest.mark.parametrize("name, options", [("smp_pan", {}), ("nnunet_plain", {"stages": 7})])
def test_an_entry_too_small_for_its_layers_says_the_minimum(name, options):
    with pytest.raises(SegbenchError, match="at least 128x128, got 64x64"):
        build(name, **options).eval()(torch.zeros(1, 1, 64, 64))


@pytest.mark.parametrize("name, heads", sorted(DEEP_SUPERVISION.items()))
def test_deep_supervision_trains_on_every_head_and_predicts_with_the_final_one(name, heads):
    model = build(name, deep_supervision=True)
    x = torch.randn(2, 1, 32, 32)
    outputs = model(x)
    assert isinstance(outputs, list) and len(outputs) == heads
    assert all(o.shape == (2, 2, 32, 32) for o in outputs)
    model.eval()
    assert torch.equal(model(x), model.segment(x)[0])


def test_stacked_unet_supervises_both_stages_and_feeds_the_first_to_the_second():
    model = build("stacked_unet")
    assert model.second.encoder[0][0].in_channels == 1 + 2  # image + the first U-Net's logits
    assert len(model(torch.randn(2, 1, 32, 32))) == 2
    assert model.eval()(torch.randn(1, 1, 32, 32)).shape == (1, 2, 32, 32)


def test_unknown_names_bad_options_and_offline_weights_give_clear_errors(monkeypatch):
    with pytest.raises(SegbenchError, match=r"'atention_unet'.*did you mean 'attention_unet'"):
        create_model("atention_unet", 1, 1)
    with pytest.raises(SegbenchError, match=r"attention_unet takes no option 'base_chanels'.*did you mean "
                                             r"'base_channels'"):
        create_model("attention_unet", 1, 1, base_chanels=4)
    with pytest.raises(SegbenchError, match=r"architectures.unet.upsampling: 'cubic' must be one of"):
        create_model("unet", 1, 1, upsampling="cubic")
    with pytest.raises(SegbenchError, match=r"architectures.unet.depth: 0 must be at least 1"):
        create_model("unet", 1, 1, depth=0)
    with pytest.raises(SegbenchError, match=r"architectures.transunet.hidden: 30 must be a positive multiple of heads"):
        create_model("transunet", 1, 1, hidden=30, heads=8)
    with pytest.raises(SegbenchError, match=r"architectures.unet.base_channels: 'four' is not a int"):
        create_model("unet", 1, 1, base_channels="four")
    with pytest.raises(SegbenchError, match="smp_unet.*bad options|smp Unet"):
        create_model("smp_unet", 1, 1, encoder="no_such_encoder")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network attempt
    with pytest.raises(SegbenchError, match="cannot fetch the 'imagenet' weights.*encoder_weights: null"):
        create_model("smp_unet", 1, 1, encoder_weights="imagenet")


def test_smp_unet_exposes_scse_attention():
    model = create_model("smp_unet", 1, 1, decoder_attention_type="scse")
    assert any(type(m).__name__ == "SCSEModule" for m in model.modules())


def test_unet_follows_the_paper():
    model = UNet(1, 2)  # filters 64 ... 1024, same padding, up-convolution halving the channels
    assert [b[0].out_channels for b in model.encoder] + [model.bottleneck[0].out_channels] == [64, 128, 256, 512,
                                                                                             1024]
    assert all(isinstance(u.up, torch.nn.ConvTranspose2d) for u in model.up)


def test_max_unpool_decoding_puts_values_back_where_pooling_took_them():
    model = UNet(1, 2, base_channels=4, upsampling="max_unpool").eval()
    seen = {}
    model.encoder[-1].register_forward_hook(lambda m, i, o: seen.update(skip=o))
    model.up[0].unpool.register_forward_hook(lambda m, i, o: seen.update(unpooled=o))
    model(torch.randn(1, 1, 32, 32))
    skip, unpooled = seen["skip"], seen["unpooled"]
    _, indices = torch.nn.functional.max_pool2d(skip, 2, return_indices=True)
    argmax = torch.zeros_like(skip).flatten(2).scatter_(2, indices.flatten(2), 1.0).view_as(skip).bool()
    assert unpooled.shape == skip.shape
    assert not unpooled[~argmax].any()  # non-zero only at the positions max-pooling took


def test_attention_unet_follows_the_thesis():
    model = AttentionUNet(in_channels=1, classes=1)  # defaults: filters 32..512, dropout 0.3
    assert [block[0].out_channels for block in model.encoder] == [32, 64, 128, 256, 512]
    assert all(isinstance(b.up, torch.nn.ConvTranspose2d) for b in model.decoder)
    assert len(model.decoder) == 4 and all(isinstance(b.gate, AttentionGate) for b in model.decoder)
    assert any(isinstance(m, torch.nn.Dropout2d) and m.p == 0.3 for m in model.modules())


def test_attention_gate_coefficients_are_in_unit_range_and_shaped_like_the_skip():
    gate = AttentionGate(gate_channels=8, skip_channels=6, inter_channels=3)
    g, x = torch.randn(2, 8, 16, 16), torch.randn(2, 6, 16, 16)
    alpha = gate.coefficients(g, x)
    assert alpha.shape == (2, 1, 16, 16) and alpha.min() >= 0 and alpha.max() <= 1
    assert torch.allclose(gate(g, x), x * alpha)


def test_multires_block_splits_its_channels_as_the_paper_does():
    # U = 32 -> W = 1.67 * 32 = 53.44 -> int(0.167 W), int(0.333 W), int(0.5 W)
    assert multires_split(32) == (8, 17, 26)
    block = MultiResBlock(3, 32)
    assert [c[0].out_channels for c in block.convs] == [8, 17, 26] and block.out_channels == 51
    assert block(torch.randn(1, 3, 8, 8)).shape == (1, 51, 8, 8)
    model = MultiResUNet(3, 1)
    assert [len(p.units) for p in model.paths] == [4, 3, 2, 1]  # ResPath lengths, shallow to deep
    assert [p.units[0]["conv"][0].out_channels for p in model.paths] == [32, 64, 128, 256]
    assert isinstance(MultiResUNet(1, 1, res_paths=False).paths[0], torch.nn.Identity)
    assert not any(isinstance(m, MultiResBlock) for m in MultiResUNet(1, 1, multires_blocks=False).modules())
    assert isinstance(model.paths[0], ResPath)


def test_complexity_counts_parameters_and_flops():
    from segbench.models.complexity import complexity

    conv = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)  # 36 weights; 2 * 36 FLOPs per output pixel
    assert complexity(conv, 1, 8) == {"parameters": 36, "gflops": 2 * 36 * 8 * 8 / 1e9}
    model = build("attention_unet")
    small_, large = complexity(model, 1, 32), complexity(model, 1, 64)
    assert small_["parameters"] == large["parameters"] and large["gflops"] == pytest.approx(4 * small_["gflops"])
