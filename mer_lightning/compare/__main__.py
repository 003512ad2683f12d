"""`python -m mer_lightning.compare DIR`: rebuild the comparison report of a multirun dir.

Works on any multirun dir, including one whose jobs ran elsewhere (a SLURM cluster) and was
copied here: only the files in the job dirs are read. Exit status 1 when a job failed or
has no result, 2 for a bad DIR.
"""

import argparse
import sys
from pathlib import Path

from mer_lightning.compare import build_report
from mer_lightning.console import print_user_error
from mer_lightning.errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mer_lightning.compare",
        description="Write comparison.{md,csv,png} into a Hydra multirun dir and print the table.",
    )
    parser.add_argument("dir", type=Path, help="the multirun dir (hydra.sweep.dir)")
    args = parser.parse_args(argv)
    try:
        report = build_report(args.dir)
    except UserError as error:
        print_user_error(str(error))
        return 2
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
