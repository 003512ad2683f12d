"""A disk that fills up, for the full-disk tests.

`FullDiskFrom` is added to a real `python -m mer_lightning` run with
`+callbacks.full_disk={_target_:tests.disk_helpers.FullDiskFrom,epoch:N}`: from epoch N on,
every file the run writes through `mer_lightning.runs.disk` (checkpoints, metrics.json)
takes some bytes and then fails with ENOSPC, as a write to a full disk does.
"""

import errno
import io
from pathlib import Path

import lightning as L

from mer_lightning.runs import disk


class FullFile(io.FileIO):
    """A file on a disk with `room` bytes left: the write that passes them fails with ENOSPC
    after writing what fits, like the OS does."""

    def __init__(self, path: Path, mode: str, room: int = 64) -> None:
        super().__init__(path, "x")
        self.room = room

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        if len(data) > self.room:
            super().write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return super().write(data)


def fill_disk(monkeypatch_setattr) -> None:
    """Make every later `mer_lightning.runs.disk` write find the disk full; takes a setattr
    (pytest's `monkeypatch.setattr`, or plain `setattr` in a run's own process)."""
    monkeypatch_setattr(disk, "_create", lambda path, mode: _full_file(path, mode))


def _full_file(path: Path, mode: str):
    handle = FullFile(path, mode)
    return handle if "b" in mode else io.TextIOWrapper(handle, "utf-8", write_through=True)


class FullDiskFrom(L.Callback):
    """From the start of training epoch `epoch`, the disk is full."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch >= self.epoch:
            fill_disk(setattr)
