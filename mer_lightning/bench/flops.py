"""Model FLOPs per image, counted by torch.utils.flop_counter.FlopCounterMode.

The counter applies shape formulas to the matmul and convolution ops that run (forward and
backward), so the count is what the model needs, independent of how fast the kernels are:
the numerator of model-FLOP utilisation. Pointwise ops (ReLU, pooling, the optimizer) are
not counted, as usual for MFU.
"""

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def flops_per_image(net: nn.Module, image_size: int, batch: int = 2) -> dict[str, float]:
    """Forward and training (forward + backward) FLOPs per image of `net`, on a copy.

    The input does not require grad, as in training, so the first layer's input gradient
    is not counted.
    """
    net = copy.deepcopy(net).float().train()
    images = torch.randn(batch, 3, image_size, image_size)
    with FlopCounterMode(display=False) as counter:
        logits = net(images)
    forward = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(net(images), torch.zeros(batch, dtype=torch.long)).backward()
    del logits
    return {"forward": forward / batch, "train": counter.get_total_flops() / batch}
