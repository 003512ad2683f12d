"""The predict task: a model and an input from the config, predictions into the run dir."""

import logging
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.progress import track

from mer_lightning.core.checkpoint import LoadedModel
from mer_lightning.core.errors import UserError
from mer_lightning.predict import outputs
from mer_lightning.predict.faces import build_detector
from mer_lightning.predict.inputs import UnreadableImage, find_files, read_image
from mer_lightning.predict.pipeline import FacePrediction, FacePredictor
from mer_lightning.predict.runtime import engine_name, load_for_prediction
from mer_lightning.predict.video import UnreadableVideo, check_stride, is_video, predict_video
from mer_lightning.predict.webcam import run_webcam

log = logging.getLogger(__name__)

WEBCAM = "webcam"
USAGE = "python -m mer_lightning.predict input=IMAGE|VIDEO|FOLDER|webcam [ckpt=PATH]"


def build_predictor(cfg: DictConfig, model: LoadedModel) -> FacePredictor:
    """The face pipeline configured by cfg.faces and cfg.enhance."""
    faces = cfg.faces
    enhance = OmegaConf.to_container(cfg.enhance, resolve=True)
    dataset_size = faces.get("dataset_size")
    return FacePredictor(
        model,
        build_detector(OmegaConf.to_container(faces, resolve=True)),
        margin=float(faces.margin),
        enhance_settings=enhance,
        min_crop=int(faces.get("min_crop", 0) or 0),
        dataset_size=int(dataset_size) if dataset_size else None,
    )


class Collected:
    """Everything a run over files gathers: photo faces, video frames, skipped files, notes."""

    def __init__(self) -> None:
        self.photos: list[FacePrediction] = []
        self.frames: list[FacePrediction] = []
        self.skipped: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.videos = 0
        self.frames_predicted = 0


def _relative(path: Path, source: Path) -> Path:
    return path.relative_to(source) if source.is_dir() else Path(path.name)


def _predict_video(
    predictor: FacePredictor,
    path: Path,
    source: Path,
    run_dir: Path,
    cfg: DictConfig,
    out: Collected,
) -> None:
    """One video: its frames' faces, a probability plot, the annotated copy; a video that
    cannot be read is skipped with its reason."""
    relative = _relative(path, source)
    annotated = run_dir / "annotated" / relative if cfg.save_annotated else None
    try:
        result = predict_video(predictor, path, check_stride(cfg.video.stride), annotated)
    except UnreadableVideo as error:
        out.skipped.append((str(path), str(error)))
        return
    out.videos += 1
    out.frames_predicted += result.frames_predicted
    out.frames += result.predictions
    if result.frames_without_face:
        out.notes.append(
            f"{path}: no face found in {result.frames_without_face} of "
            f"{result.frames_predicted} predicted frames (no rows for those frames)"
        )
    if result.predictions:
        plot = run_dir / "plots" / relative.with_name(relative.name + ".png")
        outputs.probability_plot(
            plot, str(relative), result.predictions, predictor.model.class_names
        )


def predict_files(
    predictor: FacePredictor, source: Path, run_dir: Path, cfg: DictConfig
) -> Collected:
    """Predictions for every readable image and video at `source`; the rest are skipped
    with their reason, and the run goes on."""
    files = find_files(source, exclude=run_dir)
    if not files:
        raise UserError(f"input={source} holds no files; point input at images, videos or a folder")
    out = Collected()
    for path in track(files, description="predicting", transient=True, disable=len(files) < 20):
        if is_video(path):
            _predict_video(predictor, path, source, run_dir, cfg, out)
            continue
        try:
            image = read_image(path)
        except UnreadableImage as error:
            out.skipped.append((str(path), str(error)))
            continue
        found = predictor.predict(image, str(path))
        out.photos += found
        if cfg.save_annotated:
            outputs.save_annotated(run_dir / "annotated" / _relative(path, source), image, found)
    return out


def write_outputs(run_dir: Path, out: Collected, header: dict[str, Any]) -> None:
    """predictions.csv and predictions.json (photos, captures) and frames.csv (video frames)."""
    classes = header["classes"]
    outputs.write_csv(run_dir / "predictions.csv", out.photos, classes)
    outputs.write_json(run_dir / "predictions.json", out.photos, out.skipped, header)
    if out.frames:
        outputs.write_frames_csv(run_dir / "frames.csv", out.frames, classes)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Predict the emotion of every face of cfg.input; returns a summary of the run."""
    if OmegaConf.is_missing(cfg, "input"):
        raise UserError(f"input is required: {USAGE}")
    if cfg.get("threads") is not None:
        torch.set_num_threads(int(cfg.threads))
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    model = load_for_prediction(cfg.get("ckpt"), str(cfg.get("runtime", "auto")))
    predictor = build_predictor(cfg, model)
    header = {
        "checkpoint": str(model.path),
        "runtime": engine_name(model),
        "input": str(cfg.input),
        "classes": model.class_names,
        "image_size": model.image_size,
        "faces": OmegaConf.to_container(cfg.faces, resolve=True),
        "enhance": predictor.enhance_settings,
    }
    if str(cfg.input) == WEBCAM:
        out = Collected()
        session = run_webcam(
            predictor,
            int(cfg.webcam.camera),
            run_dir,
            stride=check_stride(cfg.video.stride),
            on_capture=lambda captured: outputs.write_csv(
                run_dir / "predictions.csv", captured, model.class_names
            ),
        )
        out.photos, out.frames = session.captured, session.frames
        out.frames_predicted = session.frames_predicted
    else:
        source = Path(str(cfg.input)).expanduser()
        out = predict_files(predictor, source, run_dir, cfg)
    write_outputs(run_dir, out, header)
    outputs.print_report(
        [*out.photos, *out.frames], out.skipped, int(cfg.max_table_rows), notes=out.notes
    )

    whole = {p.file for p in out.photos if not p.face_detected}
    summary = {
        "images": len({p.file for p in out.photos}),
        "faces": sum(p.face_detected for p in out.photos),
        "whole_images": len(whole),
        "videos": out.videos,
        "frames": out.frames_predicted,
        "frame_faces": len(out.frames),
        "skipped": len(out.skipped),
        "run_dir": str(run_dir),
    }
    log.info(
        "%d image(s): %d face(s) found, %d image(s) without a face classified whole; "
        "%d video(s): %d frame(s) predicted, %d face(s) in them; %d file(s) skipped; "
        "outputs in %s",
        *summary.values(),
    )
    return summary
