"""Terminal output: the resolved config as a rich tree, user errors, the tools' --help."""

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import rich
import rich.markup
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

from mer_lightning.core.errors import UserError
from mer_lightning.runs.disk import full_disk_cause, full_disk_error

FIRST_GROUPS = ("data", "model", "module", "trainer", "callbacks", "logger")


def print_config_tree(cfg: DictConfig, first: Sequence[str] = FIRST_GROUPS) -> None:
    """Print the resolved config as a rich tree, one branch per top-level key."""
    tree = rich.tree.Tree("config", style="bold")
    keys = [key for key in first if key in cfg] + [key for key in cfg if key not in first]
    for key in keys:
        branch = tree.add(str(key), style="bold cyan")
        value = cfg[key]
        text = (
            OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        )
        branch.add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark"))
    rich.print(tree)


def command_name(module: str, script: str) -> str:
    """The name a tool's usage line shows: its console script when started as one (e.g.
    `mer-compare`), else `python -m <module>`."""
    return script if Path(sys.argv[0]).name == script else f"python -m {module}"


def help_epilog(script: str, module: str, *examples: str) -> str:
    """The end of an argparse tool's --help: example commands, one per line (give the
    parser formatter_class=argparse.RawDescriptionHelpFormatter to keep the lines)."""
    lines = "\n".join(f"  {script} {example}" for example in examples)
    return f"Example ({script} is also python -m {module}):\n{lines}"


def print_user_error(message: str) -> None:
    """Print a user mistake without a traceback, its text as is: a bracketed value such as
    `[runs/a.ckpt]` is what the user typed, not rich markup."""
    rich.get_console().print(
        f"[bold red]error:[/] {rich.markup.escape(message)}", highlight=False, soft_wrap=True
    )


def user_error_of(error: BaseException, where: str | None = None) -> UserError | None:
    """The user mistake behind `error`, or None for a bug.

    Hydra's `instantiate` wraps whatever the target raised in an InstantiationException
    (`raise InstantiationException(...) from e`, nested once per level of instantiation),
    which would hide a UserError's one line behind Hydra's message; the `__cause__` chain is
    followed to find it. A full disk (ENOSPC, EDQUOT) anywhere in the chain is a user
    matter too: the message names the file, or `where` when the OS did not say.
    """
    chain: BaseException | None = error
    while chain is not None:
        if isinstance(chain, UserError):
            return chain
        chain = chain.__cause__
    full = full_disk_cause(error)
    return full_disk_error(full.filename or where, full) if full is not None else None


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """For command entry points: a user mistake inside (a UserError, also one wrapped by
    Hydra's instantiate, or a full disk) prints one line and exits with status 2."""
    try:
        yield
    except Exception as error:
        mistake = user_error_of(error)
        if mistake is None:
            raise
        print_user_error(str(mistake))
        sys.exit(2)
