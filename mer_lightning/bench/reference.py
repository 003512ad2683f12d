"""Reference (a): the plain-PyTorch recipe that the paper's code follows, with the same net.

torchvision ImageFolder reading the JPEGs every epoch, per-sample PIL transforms
(RandomCrop with reflect padding, horizontal flip, ToTensor), a DataLoader, fp32 NCHW,
Adam and cross-entropy, in a hand-written loop. Only the net comes from the project
(built from the same conf/model/*.yaml), so that the comparison is about the pipeline.
"""

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from mer_lightning.bench.timing import Budget, Loop, time_loop

REFERENCE_PADDING = 15  # the recipe's RandomCrop padding (reflect)


def reference_loader(
    train_dir: Path, image_size: int, batch_size: int, num_workers: int = 0
) -> DataLoader:
    """ImageFolder over train/ with the recipe's per-sample PIL augmentation."""
    augment = transforms.Compose(
        [
            transforms.RandomCrop(image_size, padding=REFERENCE_PADDING, padding_mode="reflect"),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
        ]
    )
    dataset = datasets.ImageFolder(str(train_dir), transform=augment)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)


def reference_loop(
    net: nn.Module,
    train_dir: Path,
    image_size: int,
    batch_size: int,
    lr: float = 1e-3,
    num_workers: int = 0,
) -> Loop:
    """The recipe's training loop: zero_grad, forward, loss, backward, Adam step."""
    net = net.float().train()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()

    def step(batch) -> None:
        images, labels = batch
        optimizer.zero_grad()
        loss_fn(net(images), labels).backward()
        optimizer.step()

    return Loop(step, reference_loader(train_dir, image_size, batch_size, num_workers))


def reference_pipeline_throughput(
    train_dir: Path, image_size: int, batch_size: int, budget: Budget, num_workers: int = 0
) -> dict[str, Any]:
    """Images/s of the recipe's data loading alone (decode + PIL transforms + collate)."""
    loader = reference_loader(train_dir, image_size, batch_size, num_workers)
    result = time_loop(lambda batch: None, loader, budget).summary()
    result.update(batch_size=batch_size, num_workers=num_workers, augmentation="per-sample PIL")
    return result
