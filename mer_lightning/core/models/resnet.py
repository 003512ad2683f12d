"""torchvision ResNet-18 with the paper's feature-reduction head."""

from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18
from torchvision.models.resnet import BasicBlock

from mer_lightning.core.errors import UserError


def imagenet_weights_file() -> Path:
    """Where torch hub keeps (or would download) torchvision's ResNet-18 ImageNet weights."""
    url = ResNet18_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def load_imagenet_state_dict(weights_path: str | None) -> dict[str, torch.Tensor]:
    """ImageNet weights from `weights_path`, else the torch hub cache, else a download."""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise UserError(
                f"model.weights_path={weights_path} does not exist; point it at torchvision's "
                f"{Path(ResNet18_Weights.IMAGENET1K_V1.url).name} or set model.pretrained=false"
            )
        return torch.load(path, map_location="cpu", weights_only=True)
    try:
        return ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True)
    except OSError as error:  # URLError and friends: no network and no cached file
        raise UserError(
            f"cannot get ResNet-18 ImageNet weights ({error}). Download "
            f"{ResNet18_Weights.IMAGENET1K_V1.url} and place it at {imagenet_weights_file()} "
            "(or pass model.weights_path=FILE), or set model.pretrained=false"
        ) from error


class ResNet18Classifier(nn.Module):
    """ResNet-18 backbone (fc removed) -> Linear + ReLU feature reduction -> class logits."""

    def __init__(
        self,
        num_classes: int,
        reduction_dim: int = 512,
        pretrained: bool = False,
        weights_path: str | None = None,
        in_channels: int = 3,
        input_size: int = 80,
    ) -> None:
        super().__init__()
        if in_channels != 3:
            raise UserError(f"model.in_channels={in_channels}: ResNet-18 takes 3-channel images")
        self.input_size = input_size
        self.backbone = resnet18(weights=None)
        if pretrained:
            self.backbone.load_state_dict(load_imagenet_state_dict(weights_path))
        feature_dim = self.backbone.fc.in_features
        self.backbone.fc = nn.Identity()
        self.reduction = nn.Sequential(nn.Linear(feature_dim, reduction_dim), nn.ReLU())
        self.head = nn.Linear(reduction_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of normalised images (N, 3, H, W)."""
        return self.head(self.reduction(self.backbone(x)))


class SlimResNet18Classifier(nn.Module):
    """ResNet-18's layout (7x7 stem, four stages of two basic blocks) at a narrower width,
    with the same feature-reduction head.

    At `base_width=32` it has a quarter of ResNet-18's multiply-adds: a student small
    enough to predict a face in a few milliseconds on a CPU, distilled from the full net.
    Built from torchvision's own blocks; it has no ImageNet weights.
    """

    def __init__(
        self,
        num_classes: int,
        base_width: int = 32,
        reduction_dim: int = 256,
        in_channels: int = 3,
        input_size: int = 80,
    ) -> None:
        super().__init__()
        if base_width < 1:
            raise UserError(f"model.base_width={base_width} must be a positive channel count")
        self.input_size = input_size
        widths = [base_width * 2**stage for stage in range(4)]
        stem = [
            nn.Conv2d(in_channels, base_width, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(base_width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        ]
        stages, width_in = [], base_width
        for stage, width in enumerate(widths):
            stride = 1 if stage == 0 else 2
            downsample = None
            if stride != 1 or width_in != width:
                downsample = nn.Sequential(
                    nn.Conv2d(width_in, width, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(width),
                )
            stages.append(
                nn.Sequential(
                    BasicBlock(width_in, width, stride=stride, downsample=downsample),
                    BasicBlock(width, width),
                )
            )
            width_in = width
        self.backbone = nn.Sequential(*stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        self.reduction = nn.Sequential(nn.Linear(width_in, reduction_dim), nn.ReLU())
        self.head = nn.Linear(reduction_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of normalised images (N, 3, H, W)."""
        return self.head(self.reduction(self.backbone(x)))
