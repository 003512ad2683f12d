"""The predict task: a checkpoint and an input from the config, predictions into the run dir."""

import logging
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.progress import track

from mer_lightning.checkpoint import LoadedModel, load_checkpoint
from mer_lightning.errors import UserError
from mer_lightning.predict import outputs
from mer_lightning.predict.faces import FaceDetector
from mer_lightning.predict.inputs import UnreadableImage, find_files, read_image
from mer_lightning.predict.pipeline import FacePrediction, FacePredictor
from mer_lightning.predict.webcam import run_webcam

log = logging.getLogger(__name__)

WEBCAM = "webcam"
USAGE = "python -m mer_lightning.predict ckpt=PATH input=IMAGE|FOLDER|webcam"


def build_predictor(cfg: DictConfig, model: LoadedModel) -> FacePredictor:
    """The face pipeline configured by cfg.faces and cfg.enhance."""
    faces = cfg.faces
    detector = (
        FaceDetector(faces.cascade, faces.scale_factor, faces.min_neighbors, faces.min_size)
        if faces.detect
        else None
    )
    enhance = OmegaConf.to_container(cfg.enhance, resolve=True)
    return FacePredictor(model, detector, margin=faces.margin, enhance_settings=enhance)


def predict_files(
    predictor: FacePredictor, source: Path, run_dir: Path, annotate: bool
) -> tuple[list[FacePrediction], list[tuple[str, str]]]:
    """Predictions for every readable image at `source`, and the (file, reason) of the rest."""
    files = find_files(source, exclude=run_dir)
    if not files:
        raise UserError(f"input={source} holds no files; point input at images or a folder of them")
    predictions: list[FacePrediction] = []
    skipped: list[tuple[str, str]] = []
    for path in track(files, description="predicting", transient=True, disable=len(files) < 20):
        try:
            image = read_image(path)
        except UnreadableImage as error:
            skipped.append((str(path), str(error)))
            continue
        found = predictor.predict(image, str(path))
        predictions += found
        if annotate:
            relative = path.relative_to(source) if source.is_dir() else Path(path.name)
            outputs.save_annotated(run_dir / "annotated" / relative, image, found)
    return predictions, skipped


def write_outputs(
    run_dir: Path,
    predictions: list[FacePrediction],
    skipped: list[tuple[str, str]],
    header: dict[str, Any],
) -> None:
    """predictions.csv and predictions.json in the run dir."""
    outputs.write_csv(run_dir / "predictions.csv", predictions, header["classes"])
    outputs.write_json(run_dir / "predictions.json", predictions, skipped, header)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Predict the emotion of every face of cfg.input; returns a summary of the run."""
    for key in ("ckpt", "input"):
        if OmegaConf.is_missing(cfg, key):
            raise UserError(f"{key} is required: {USAGE}")
    if cfg.get("threads") is not None:
        torch.set_num_threads(int(cfg.threads))
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    model = load_checkpoint(cfg.ckpt)
    predictor = build_predictor(cfg, model)
    header = {
        "checkpoint": str(model.path),
        "input": str(cfg.input),
        "classes": model.class_names,
        "image_size": model.image_size,
        "faces": OmegaConf.to_container(cfg.faces, resolve=True),
        "enhance": predictor.enhance_settings,
    }
    if str(cfg.input) == WEBCAM:
        skipped: list[tuple[str, str]] = []
        predictions = run_webcam(
            predictor,
            int(cfg.webcam.camera),
            run_dir,
            on_capture=lambda captured: write_outputs(run_dir, captured, skipped, header),
        )
    else:
        source = Path(str(cfg.input)).expanduser()
        predictions, skipped = predict_files(predictor, source, run_dir, cfg.save_annotated)
    write_outputs(run_dir, predictions, skipped, header)
    outputs.print_report(predictions, skipped, int(cfg.max_table_rows))

    images = {p.file for p in predictions}
    whole = {p.file for p in predictions if not p.face_detected}
    summary = {
        "images": len(images),
        "faces": sum(p.face_detected for p in predictions),
        "whole_images": len(whole),
        "skipped": len(skipped),
        "run_dir": str(run_dir),
    }
    log.info(
        "%d image(s): %d face(s) found, %d image(s) without a face classified whole, "
        "%d file(s) skipped; predictions.{csv,json} in %s",
        *summary.values(),
    )
    return summary
