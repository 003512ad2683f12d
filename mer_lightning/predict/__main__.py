"""`python -m mer_lightning.predict input=IMAGE|VIDEO|FOLDER|webcam [ckpt=PATH] [overrides]`."""

import hydra
from omegaconf import DictConfig

from mer_lightning.runs.config import CONFIG_DIR
from mer_lightning.runs.console import exit_on_user_error


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
def main(cfg: DictConfig) -> None:
    """Run the predict task; a user mistake prints one line and exits with status 2."""
    from mer_lightning.predict.task import run

    with exit_on_user_error():
        run(cfg)


if __name__ == "__main__":
    main()
