"""One image in, one prediction per face out: detect, crop as the training faces were, classify."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mer_lightning.core.checkpoint import LoadedModel
from mer_lightning.core.errors import UserError
from mer_lightning.predict.box import Box
from mer_lightning.predict.faces import enhance, to_model_input


class Detector(Protocol):
    """What the pipeline needs of a face detector (BlazeFace, Haar, or a test's stand-in)."""

    def detect(self, image: np.ndarray) -> list[Box]: ...


@dataclass(frozen=True)
class FacePrediction:
    """The emotion predicted for one face (or for a whole image where no face was found)."""

    file: str
    face: int  # index of the face in its image, largest first
    face_detected: bool  # False: no face found, the whole image was classified
    box: Box  # the detected face, before the margin; the whole image when none was found
    label: str
    probabilities: dict[str, float] = field(default_factory=dict)
    frame: int | None = None  # index of the video or camera frame; None for a photo
    time: float | None = None  # seconds from the start of the video or camera session

    @property
    def confidence(self) -> float:
        """Probability of the predicted class."""
        return self.probabilities[self.label]


class FacePredictor:
    """The prediction pipeline of the paper's Figures 7-13, shared by photos, videos, the webcam
    and the app.

    The defaults reproduce the dataset's crops: the detector's box as it is (`margin` 0), no
    enhancement, faces whose crop is under `min_crop` pixels high left out (the dataset
    dropped them), the crop resized to `dataset_size` (80) and from there to the model input.
    """

    def __init__(
        self,
        model: LoadedModel,
        detector: Detector | None,
        margin: float = 0.0,
        enhance_settings: Mapping[str, Any] | None = None,
        min_crop: int = 0,
        dataset_size: int | None = None,
    ) -> None:
        if margin < 0:
            raise UserError(f"faces.margin={margin} must be >= 0 (a share of the face side)")
        if min_crop < 0:
            raise UserError(f"faces.min_crop={min_crop} must be >= 0 (pixels; 0 keeps every face)")
        if dataset_size is not None and dataset_size < 1:
            raise UserError(f"faces.dataset_size={dataset_size} must be a side in pixels or null")
        self.model = model
        self.detector = detector
        self.margin = margin
        self.enhance_settings = dict(enhance_settings or {"enabled": False})
        self.min_crop = min_crop
        self.dataset_size = dataset_size

    def find_faces(self, image: np.ndarray) -> list[Box]:
        """The detected faces whose crop (margin included) is at least min_crop pixels high."""
        boxes = self.detector.detect(image) if self.detector is not None else []
        return [b for b in boxes if b.expand(self.margin, image.shape).height >= self.min_crop]

    def predict(
        self,
        image: np.ndarray,
        file: str,
        whole_if_no_face: bool = True,
        frame: int | None = None,
        time: float | None = None,
    ) -> list[FacePrediction]:
        """Predictions for every face in a BGR image (a video frame: its index and time).

        With no face found (or detection switched off), the whole image is classified when
        `whole_if_no_face`, since the dataset's own images are already tight face crops.
        """
        boxes = self.find_faces(image)
        detected = bool(boxes)
        if not detected:
            if not whole_if_no_face:
                return []
            boxes = [Box.whole(image)]
        margin = self.margin if detected else 0.0
        crops = [
            enhance(box.expand(margin, image.shape).crop(image), self.enhance_settings)
            for box in boxes
        ]
        batch = to_model_input(crops, self.model.image_size, self.dataset_size)
        probabilities = self.model.predict_proba(batch)
        names = self.model.class_names
        return [
            FacePrediction(
                file=file,
                face=index,
                face_detected=detected,
                box=box,
                label=names[int(row.argmax())],
                probabilities={name: float(p) for name, p in zip(names, row, strict=True)},
                frame=frame,
                time=time,
            )
            for index, (box, row) in enumerate(zip(boxes, probabilities, strict=True))
        ]
