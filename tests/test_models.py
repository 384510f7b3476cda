import pytest
import torch

from segbench import SegbenchError
from segbench.models import create_model, list_models
from segbench.models.attention_unet import AttentionGate, AttentionUNet

SMALL = {"smp": {"arch": "Unet", "encoder": "resnet18", "encoder_weights": None},
         "attention_unet": {"base_channels": 4}}


def test_registry_lists_families():
    assert list_models() == sorted(SMALL)


@pytest.mark.parametrize("family", sorted(SMALL))
@pytest.mark.parametrize("in_channels, size", [(1, 32), (3, 64)])
def test_every_family_gives_logits_and_gradients(family, in_channels, size):
    torch.manual_seed(0)
    model = create_model(family, in_channels=in_channels, classes=2, **SMALL[family])
    x = torch.randn(2, in_channels, size, size)
    logits = model(x)
    assert logits.shape == (2, 2, size, size)
    logits.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_attention_unet_follows_the_thesis():
    model = AttentionUNet(in_channels=1, classes=1)  # defaults: filters 32..512, dropout 0.3
    widths = [block[0].out_channels for block in model.encoder]
    assert widths == [32, 64, 128, 256, 512]
    assert all(isinstance(b.up, torch.nn.ConvTranspose2d) for b in model.decoder)
    assert len(model.decoder) == 4 and all(isinstance(b.gate, AttentionGate) for b in model.decoder)
    assert any(isinstance(m, torch.nn.Dropout2d) and m.p == 0.3 for m in model.modules())


def test_attention_gate_coefficients_are_in_unit_range_and_shaped_like_the_skip():
    gate = AttentionGate(gate_channels=8, skip_channels=6, inter_channels=3)
    g, x = torch.randn(2, 8, 16, 16), torch.randn(2, 6, 16, 16)
    alpha = gate.coefficients(g, x)
    assert alpha.shape == (2, 1, 16, 16) and alpha.min() >= 0 and alpha.max() <= 1
    assert gate(g, x).shape == x.shape
    assert torch.allclose(gate(g, x), x * alpha)


def test_bad_sizes_and_names_give_clear_errors():
    with pytest.raises(ValueError, match="divisible by 16"):
        AttentionUNet(1, 1, base_channels=4)(torch.zeros(1, 1, 40, 40))
    with pytest.raises(SegbenchError, match=r"family 'atention_unet'.*did you mean 'attention_unet'"):
        create_model("atention_unet", 1, 1)
    with pytest.raises(SegbenchError, match="bad options"):
        create_model("attention_unet", 1, 1, base_chanels=4)
    with pytest.raises(SegbenchError, match="smp"):
        create_model("smp", 1, 1, arch="NoSuchNet")


def test_same_seed_same_weights():
    def build():
        torch.manual_seed(7)
        return create_model("attention_unet", 1, 1, base_channels=4)
    a, b = build(), build()
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_complexity_counts_parameters_and_flops():
    from segbench.models.complexity import complexity

    conv = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)  # 36 weights; 2 * 36 FLOPs per output pixel
    assert complexity(conv, 1, 8) == {"parameters": 36, "gflops": 2 * 36 * 8 * 8 / 1e9}
    model = create_model("attention_unet", 1, 1, base_channels=4)
    small, large = complexity(model, 1, 32), complexity(model, 1, 64)
    assert small["parameters"] == large["parameters"] and large["gflops"] == pytest.approx(4 * small["gflops"])
