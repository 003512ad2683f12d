"""The paper's custom CNNs: blocks of 3x3 conv + ReLU, a max-pool after each, then an MLP."""

from collections.abc import Sequence

import torch
from torch import nn

from mer_lightning.core.errors import UserError

NORMS = (None, "batch")


class BlockCNN(nn.Module):
    """VGG-style classifier: `len(channels)` conv blocks, then hidden linear layers.

    CNN1 is 3 blocks of 3 convs with hidden [1024, 512] and no dropout; CNN2 is 4 blocks
    with dropout 0.5. The first linear layer's width follows from input_size and channels.
    `norm="batch"` adds batch normalisation after each convolution (a declared variant, not
    the paper's nets): the usual lever for reaching accuracy in fewer epochs.
    """

    def __init__(
        self,
        num_classes: int,
        channels: Sequence[int] = (32, 64, 128),
        convs_per_block: int = 3,
        hidden: Sequence[int] = (1024, 512),
        dropout: float = 0.0,
        in_channels: int = 3,
        input_size: int = 80,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise UserError(f"model.norm={norm} must be one of {list(NORMS)} (null = none)")
        side = input_size // 2 ** len(channels)
        if side < 1:
            raise UserError(
                f"model.input_size={input_size} is too small for {len(channels)} max-pool "
                f"blocks; use data.image_size >= {2 ** len(channels)} or fewer model.channels"
            )
        layers: list[nn.Module] = []
        width_in = in_channels
        for width in channels:
            for _ in range(convs_per_block):
                conv = nn.Conv2d(width_in, width, kernel_size=3, padding=1, bias=norm is None)
                layers += [conv, *([nn.BatchNorm2d(width)] if norm == "batch" else []), nn.ReLU()]
                width_in = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)

        head: list[nn.Module] = [nn.Flatten()]
        width_in = channels[-1] * side * side
        for width in hidden:
            head += [nn.Linear(width_in, width), nn.ReLU()]
            if dropout > 0:
                head.append(nn.Dropout(dropout))
            width_in = width
        head.append(nn.Linear(width_in, num_classes))
        self.classifier = nn.Sequential(*head)
        # He init: with PyTorch's default init a plain 9-12 layer ReLU stack (no batch norm)
        # stays at chance for many epochs.
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of normalised images (N, C, H, W)."""
        return self.classifier(self.features(x))
