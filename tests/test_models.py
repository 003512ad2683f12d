"""Architectures match the paper's description and load ImageNet weights from a local file."""

import urllib.error

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torchvision.models import resnet18

from mer_lightning.core.errors import UserError
from mer_lightning.core.models import build_net, net_config
from mer_lightning.core.models.cnn import BlockCNN
from mer_lightning.core.models.resnet import (
    ResNet18Classifier,
    SlimResNet18Classifier,
    imagenet_weights_file,
)
from mer_lightning.runs.config import CONFIG_DIR


def model_cfg(name: str, image_size: int = 80):
    cfg = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml")
    cfg.input_size = image_size
    return cfg


def count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def test_cnn1_is_nine_convs_in_three_blocks_and_three_linears():
    net = build_net(net_config(model_cfg("cnn1"), num_classes=7))
    assert isinstance(net, BlockCNN)
    assert count(net, nn.Conv2d) == 9 and count(net, nn.MaxPool2d) == 3
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [1024, 512, 7]
    assert count(net, nn.Dropout) == 0


def test_cnn2_is_twelve_convs_in_four_blocks_with_dropout():
    net = build_net(net_config(model_cfg("cnn2"), num_classes=7))
    assert count(net, nn.Conv2d) == 12 and count(net, nn.MaxPool2d) == 4
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [1024, 512, 7]
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]


@pytest.mark.parametrize("name", ["cnn1", "cnn2", "resnet18", "resnet18_slim"])
@pytest.mark.parametrize("size", [48, 80, 96])
def test_first_linear_layer_follows_input_size(name, size):
    net = build_net(net_config(model_cfg(name, size), num_classes=5))
    assert net(torch.zeros(2, 3, size, size)).shape == (2, 5)


def test_the_slim_resnet18_is_resnet18s_layout_at_half_width():
    """The fast student: ResNet-18's 20 convolutions (17 + 3 shortcut projections) at
    half the channels, about a quarter of its parameters, the same head."""
    full = build_net(net_config(model_cfg("resnet18"), num_classes=7))
    slim = build_net(net_config(model_cfg("resnet18_slim"), num_classes=7))
    assert isinstance(slim, SlimResNet18Classifier)
    assert count(slim, nn.Conv2d) == count(full, nn.Conv2d) == 20
    widths = [m.out_channels for m in slim.modules() if isinstance(m, nn.Conv2d)]
    assert widths[0] == 32 and max(widths) == 256
    assert slim.reduction[0].in_features == 256 and slim.head.out_features == 7
    params = sum(p.numel() for p in slim.parameters())
    assert params < 0.3 * sum(p.numel() for p in full.parameters())
    with pytest.raises(UserError, match="model.base_width=0"):
        SlimResNet18Classifier(num_classes=7, base_width=0)


def test_input_too_small_for_the_blocks_names_the_key():
    with pytest.raises(UserError, match="model.input_size=8"):
        BlockCNN(num_classes=7, channels=(8, 8, 8, 8), input_size=8)


def test_resnet18_has_the_feature_reduction_head():
    net = ResNet18Classifier(num_classes=7)
    assert isinstance(net.backbone.fc, nn.Identity)
    assert isinstance(net.reduction[0], nn.Linear) and net.reduction[0].in_features == 512
    assert isinstance(net.reduction[1], nn.ReLU) and net.head.out_features == 7


def test_pretrained_weights_load_from_the_torch_hub_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = resnet18(weights=None)
    target = imagenet_weights_file()
    assert target.is_relative_to(tmp_path)
    target.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), target)
    net = ResNet18Classifier(num_classes=7, pretrained=True)
    assert torch.equal(net.backbone.conv1.weight, reference.conv1.weight)


def test_pretrained_weights_load_from_weights_path(tmp_path):
    reference = resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    net = ResNet18Classifier(num_classes=7, pretrained=True, weights_path=str(path))
    assert torch.equal(net.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_missing_weights_offline_say_where_to_put_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(UserError) as error:
        ResNet18Classifier(num_classes=7, pretrained=True)
    assert str(imagenet_weights_file()) in str(error.value)
    assert "model.pretrained=false" in str(error.value)


def test_the_batchnorm_variant_is_declared_and_old_checkpoints_keep_matching(tmp_path):
    """model.norm=batch adds BatchNorm after each conv and names the run apart; left off,
    the stored config is the paper's net as checkpoints always recorded it."""
    from mer_lightning.core.models.build import model_label
    from tests.helpers import compose_config

    plain = compose_config(["model=cnn1"], tmp_path / "plain")
    normed = compose_config(["model=cnn1", "model.norm=batch"], tmp_path / "normed")
    assert "norm" not in net_config(plain.model, 7)
    net = build_net(net_config(normed.model, 7))
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(norms) == len(convs) == 9 and all(c.bias is None for c in convs)
    assert (model_label(plain.model), model_label(normed.model)) == ("cnn1", "cnn1-batchnorm")
    logits = net(torch.randn(2, 3, 80, 80))
    assert logits.shape == (2, 7)
