"""Writing a run's files so that a full disk or a kill midway costs nothing already written.

`atomic_open` writes to a temporary file in the target's own folder and then replaces the
target in one step (`os.replace`), so a write that fails or is killed halfway leaves the
previous file whole: last.ckpt stays loadable and metrics.json is either the old one or the
new one, never a torn one that would stop `resume=true`. A full disk (ENOSPC) or an
exhausted quota (EDQUOT) becomes a UserError naming the file and the fix, which the entry
points print as one line with exit status 2.
"""

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mer_lightning.core.errors import UserError

FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def full_disk_cause(error: BaseException) -> OSError | None:
    """The OS error saying the disk or the user's quota is full, if `error` is one or arose
    from one: libraries re-raise it as their own (torch.save writing to a file handle raises
    a RuntimeError whose context is the OSError)."""
    seen: set[int] = set()
    chain: BaseException | None = error
    while chain is not None and id(chain) not in seen:
        seen.add(id(chain))
        if isinstance(chain, OSError) and chain.errno in FULL_DISK_ERRNOS:
            return chain
        chain = chain.__cause__ or chain.__context__
    return None


def full_disk_error(path: str | os.PathLike | None, error: OSError) -> UserError:
    """The one-line message for a write that found the disk full: the file and the fix."""
    what = f"write {path}" if path else "write the run's files"
    return UserError(
        f"disk full: could not {what} ({os.strerror(error.errno)}). Free space on that disk "
        "(or raise your quota), then run the same command again; a training run continues "
        "from its last.ckpt with resume=true"
    )


def _create(path: Path, mode: str) -> IO:
    """A new file opened for writing, with the permissions a plain open would give it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    return os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path` for writing; on a clean exit it replaces `path`.

    The temporary file is hidden (`.NAME.<random>.tmp`), so a leftover one after a kill
    matches no `*.ckpt` glob. It is created with the usual permissions (umask), as a plain
    open would, and synced before the rename so that a power loss cannot leave an empty
    file under the target's name.
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with _create(temp, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temp.unlink()
        cause = full_disk_cause(error)
        if cause is not None:
            raise full_disk_error(path, cause) from error
        raise
