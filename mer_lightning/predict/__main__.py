"""`python -m mer_lightning.predict ckpt=PATH input=IMAGE|FOLDER|webcam [overrides]`."""

import sys

import hydra
from omegaconf import DictConfig

from mer_lightning.config import CONFIG_DIR
from mer_lightning.console import print_user_error
from mer_lightning.errors import UserError


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
def main(cfg: DictConfig) -> None:
    """Run the predict task; a user mistake prints one line and exits with status 2."""
    from mer_lightning.predict.task import run

    try:
        run(cfg)
    except UserError as error:
        print_user_error(str(error))
        sys.exit(2)


if __name__ == "__main__":
    main()
