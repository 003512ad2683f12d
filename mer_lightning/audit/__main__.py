"""`python -m mer_lightning.audit data.root=PATH`: audit a dataset, print it, write audit.json."""

import json
import time
from pathlib import Path

import hydra
import rich
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from rich.table import Table

from mer_lightning.core.data.audit import AuditReport, scan
from mer_lightning.core.data.layout import resolve_root
from mer_lightning.runs.config import CONFIG_DIR
from mer_lightning.runs.console import exit_on_user_error


def print_report(report: AuditReport, show: int, seconds: float) -> None:
    """The summary line, a count per finding, and the first `show` files of each finding."""
    console = rich.get_console()
    console.print(f"audit of {report.root} took {seconds:.1f} s", highlight=False, soft_wrap=True)
    console.print(f"[bold]{report.summary()}[/]", highlight=False, soft_wrap=True)
    table = Table()
    table.add_column("finding")
    table.add_column("count", justify="right")
    for key, value in report.counts().items():
        table.add_row(key.replace("_", " "), str(value), style="red" if value else None)
    console.print(table)
    sections = [
        ("unreadable or corrupt", [f"{e.name}: {e.info.problem}" for e in report.broken]),
        ("not images", [e.name for e in report.not_images]),
        ("unexpected size, mode or format", [f"{e.name}: {why}" for e, why in report.unexpected]),
        ("empty class folders (no readable image)", report.empty_folders),
        ("class folders missing from a split", report.missing_folders),
        ("duplicates across train and test", [_group(g) for g in report.cross_split]),
        ("duplicates with conflicting labels", [_group(g) for g in report.conflicting]),
        ("duplicates within a split", [_group(g) for g in report.within_split]),
    ]
    for title, lines in sections:
        if not lines:
            continue
        console.print(f"\n[bold]{title}[/] ({len(lines)}):", highlight=False)
        for line in lines[:show]:
            console.print(f"  {line}", highlight=False, soft_wrap=True)
        if len(lines) > show:
            console.print(f"  ... {len(lines) - show} more in audit.json", highlight=False)


def _group(group) -> str:
    return " = ".join(m.name for m in group.members)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="audit")
def main(cfg: DictConfig) -> None:
    """Audit the dataset at data.root; the report goes to the terminal and to audit.json."""
    with exit_on_user_error():
        start = time.perf_counter()
        root = resolve_root(cfg.data.root, cfg.data.download, cfg.data.cache_dir)
        report = scan(root)
        seconds = time.perf_counter() - start
    print_report(report, int(cfg.show), seconds)
    out = Path(HydraConfig.get().runtime.output_dir) / "audit.json"
    out.write_text(json.dumps({**report.to_json(), "seconds": seconds}, indent=2) + "\n")
    rich.get_console().print(f"\nevery finding, file by file: {out}", highlight=False)


if __name__ == "__main__":
    main()
