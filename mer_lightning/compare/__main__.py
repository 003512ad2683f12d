"""`python -m mer_lightning.compare DIR [--publish OUT] [--not-swept KEY]`: rebuild the
comparison report of a multirun dir, and optionally copy it with each job's results into OUT
for committing.

Works on any multirun dir, including one whose jobs ran elsewhere (a SLURM cluster) and was
copied here: only the files in the job dirs are read. Exit status 1 when a job failed or
has no result, 2 for a bad DIR.
"""

import argparse
import sys
from pathlib import Path

from mer_lightning.compare import build_report
from mer_lightning.compare.publish import publish
from mer_lightning.core.errors import UserError
from mer_lightning.runs.console import command_name, help_epilog, print_user_error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=command_name("mer_lightning.compare", "mer-compare"),
        description="Write comparison.{md,csv,png} into a Hydra multirun dir and print the table.",
        epilog=help_epilog(
            "mer-compare",
            "mer_lightning.compare",
            "outputs/multirun/2024-05-01/10-00-00-123456",
            "outputs/multirun/2024-05-01/10-00-00-123456 --publish docs/results/paper",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", type=Path, help="the multirun dir (hydra.sweep.dir)")
    parser.add_argument(
        "--publish",
        type=Path,
        metavar="OUT",
        help="also copy the report and each job's classification report, confusion matrix "
        "and metrics.json into OUT (e.g. docs/results/paper), for committing",
    )
    parser.add_argument(
        "--not-swept",
        action="append",
        default=[],
        metavar="KEY",
        help="group jobs as if none had overridden KEY (repeatable): for an override that "
        "restates what the other jobs ran with, e.g. a default given explicitly to a later seed",
    )
    args = parser.parse_args(argv)
    try:
        report = build_report(args.dir, not_swept=args.not_swept)
        if args.publish is not None:
            copies = publish(report, args.publish)
            print(f"published {len(copies)} files to {args.publish}")
    except UserError as error:
        print_user_error(str(error))
        return 2
    return 1 if report.failed or report.unfinished else 0


if __name__ == "__main__":
    sys.exit(main())
