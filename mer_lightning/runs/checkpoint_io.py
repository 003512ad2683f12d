"""Lightning checkpoint writes that keep the previous checkpoint whole when one fails.

Lightning's TorchCheckpointIO writes through an fsspec transaction whose temporary file lies
in the system's temp folder; committing it moves the file across filesystems, which is a
copy into the target: a disk that fills during that copy leaves a torn `last.ckpt` and an
unresumable run, and the user sees a raw OSError traceback. This plugin writes each
checkpoint to a temporary file in the checkpoint's own folder and renames it over the
target (`mer_lightning.runs.disk.atomic_open`), and turns a full disk into one line naming
the file and the fix. It reaches the Trainer from the config (`trainer.plugins`), so the
training code never names it.
"""

import io
import os
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import get_filesystem

from mer_lightning.runs.disk import atomic_open, full_disk_cause, full_disk_error


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO whose local saves are atomic and whose full-disk errors are clean."""

    def save_checkpoint(
        self,
        checkpoint: dict[str, Any],
        path: str | os.PathLike,
        storage_options: Any | None = None,
    ) -> None:
        """Write `checkpoint` to `path` through a temporary file in the same folder; remote
        paths (s3://, ...) and storage options go to Lightning's own writer unchanged."""
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        # Serialised in memory first, as Lightning does: a checkpoint that cannot be pickled
        # never touches the disk, and a full disk surfaces as the OSError it is (torch.save
        # writing to a file would re-raise it as a RuntimeError).
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            if full_disk_cause(error) is not None:
                raise full_disk_error(path, error) from error
            raise
        with atomic_open(path, "wb") as handle:
            handle.write(buffer.getbuffer())
