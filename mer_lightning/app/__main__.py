"""`python -m mer_lightning.app [ckpt=PATH] [port=7860]`: serve the emotion page."""

import logging

import hydra
from omegaconf import DictConfig

from mer_lightning.core.errors import UserError
from mer_lightning.runs.config import CONFIG_DIR
from mer_lightning.runs.console import exit_on_user_error

log = logging.getLogger(__name__)


def serve(cfg: DictConfig) -> None:
    """Load the model (ckpt= or the shipped one), build the page and serve it until stopped."""
    import torch

    from mer_lightning.predict.runtime import load_for_prediction
    from mer_lightning.predict.task import build_predictor

    try:
        import gradio  # noqa: F401

        from mer_lightning.app.page import build_page
    except ImportError as error:
        raise UserError(f"the app needs Gradio ({error}); pip install -e '.[app]'") from error
    if cfg.get("threads") is not None:
        torch.set_num_threads(int(cfg.threads))
    model = load_for_prediction(cfg.get("ckpt"), str(cfg.get("runtime", "auto")))
    predictor = build_predictor(cfg, model)
    page = build_page(predictor, str(model.path))
    log.info("serving the emotion page on http://%s:%d (Ctrl+C stops it)", cfg.host, cfg.port)
    try:
        page.launch(server_name=str(cfg.host), server_port=int(cfg.port), share=False, quiet=True)
    except OSError as error:
        raise UserError(
            f"cannot serve on {cfg.host}:{cfg.port} ({error}); pick a free port, e.g. port=7861"
        ) from error


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="app")
def main(cfg: DictConfig) -> None:
    """A user mistake prints one line and exits with status 2."""
    with exit_on_user_error():
        serve(cfg)


if __name__ == "__main__":
    main()
