"""Terminal output through rich: the resolved config and user errors."""

import contextlib
import sys
from collections.abc import Iterator, Sequence

import rich
import rich.markup
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

from mer_lightning.core.errors import UserError

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


def print_user_error(message: str) -> None:
    """Print a user mistake without a traceback, its text as is: a bracketed value such as
    `[runs/a.ckpt]` is what the user typed, not rich markup."""
    rich.get_console().print(
        f"[bold red]error:[/] {rich.markup.escape(message)}", highlight=False, soft_wrap=True
    )


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """For command entry points: a UserError inside prints one line and exits with status 2."""
    try:
        yield
    except UserError as error:
        print_user_error(str(error))
        sys.exit(2)
