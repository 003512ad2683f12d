"""The Gradio page: one photo in; the annotated photo, the largest face's class probabilities,
a table of every face and a one-line summary out."""

import os
from typing import Any

import cv2
import numpy as np

from mer_lightning.predict.outputs import annotate
from mer_lightning.predict.pipeline import FacePrediction, FacePredictor

TITLE = "mer_lightning: the emotion of each face in a photo"
NO_PHOTO = "upload a photo or take one with the camera"


def summary_line(predictions: list[FacePrediction]) -> str:
    """One line a person reads first: each face's emotion, or why there is none."""
    if not predictions:
        return "no face found"
    if not predictions[0].face_detected:
        only = predictions[0]
        return f"no face found; the whole photo reads as {only.label} ({only.confidence:.0%})"
    return "; ".join(f"face {p.face + 1}: {p.label} ({p.confidence:.0%})" for p in predictions)


def face_table(predictions: list[FacePrediction], class_names: list[str]) -> list[list[Any]]:
    """Rows of the faces table: face number, box, emotion, then every class's probability."""
    return [
        [
            p.face + 1 if p.face_detected else "none",
            f"{p.box.x},{p.box.y},{p.box.width},{p.box.height}",
            p.label,
            *(round(p.probabilities[name], 3) for name in class_names),
        ]
        for p in predictions
    ]


def analyse(predictor: FacePredictor, photo: np.ndarray | None):
    """The page's answer for an RGB photo: annotated photo, probabilities, table, summary."""
    names = predictor.model.class_names
    if photo is None:
        return None, None, [], NO_PHOTO
    if photo.ndim == 2:
        photo = np.stack([photo] * 3, axis=-1)
    bgr = cv2.cvtColor(np.ascontiguousarray(photo[..., :3]), cv2.COLOR_RGB2BGR)
    predictions = predictor.predict(bgr, "upload")
    shown = cv2.cvtColor(annotate(bgr, predictions), cv2.COLOR_BGR2RGB)
    largest = predictions[0].probabilities if predictions else None
    return shown, largest, face_table(predictions, names), summary_line(predictions)


def build_page(predictor: FacePredictor, model_name: str):
    """The Gradio Blocks page around `predictor`."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    import gradio as gr

    names = predictor.model.class_names
    with gr.Blocks(title=TITLE, analytics_enabled=False) as page:
        gr.Markdown(
            f"## {TITLE}\nModel: `{model_name}`. Faces are found with "
            f"{getattr(predictor.detector, 'name', 'no detector')} "
            "and cropped as the training faces were; nothing leaves this machine."
        )
        with gr.Row():
            photo = gr.Image(
                sources=["upload", "webcam"], type="numpy", label="Photo", elem_id="photo"
            )
            shown = gr.Image(label="Faces found", elem_id="annotated", interactive=False)
        summary = gr.Textbox(label="Emotions", elem_id="summary", interactive=False)
        with gr.Row():
            probabilities = gr.Label(
                num_top_classes=len(names), label="Largest face", elem_id="probabilities"
            )
            table = gr.Dataframe(
                headers=["face", "box x,y,w,h", "emotion", *names],
                label="Every face",
                elem_id="faces",
                interactive=False,
            )
        button = gr.Button("Predict", variant="primary", elem_id="predict")
        outputs = [shown, probabilities, table, summary]
        button.click(lambda image: analyse(predictor, image), inputs=photo, outputs=outputs)
        photo.change(lambda image: analyse(predictor, image), inputs=photo, outputs=outputs)
    return page
