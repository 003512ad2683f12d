"""Where the Hydra configs live, for the entry points and the tests."""

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
# An installed wheel carries the configs inside the package; a source checkout keeps them
# at the top level (conf/), next to the package.
CONFIG_DIR = next(
    (p for p in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parent / "conf") if p.is_dir()),
    _PACKAGE_DIR.parent / "conf",
)
