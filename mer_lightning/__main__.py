"""`python -m mer_lightning [overrides]`: fit, then test, one run per Hydra job."""

import sys

import hydra
from omegaconf import DictConfig

from mer_lightning.config import CONFIG_DIR
from mer_lightning.console import print_user_error
from mer_lightning.errors import UserError


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Run the train task; returns the monitored metric for Hydra sweepers."""
    from mer_lightning.train import run

    try:
        summary = run(cfg)
    except UserError as error:
        print_user_error(str(error))
        sys.exit(2)
    return summary["metrics"].get(cfg.monitor.metric)


if __name__ == "__main__":
    main()
