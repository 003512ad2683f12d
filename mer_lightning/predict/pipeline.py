"""One image in, one prediction per face out: detect, crop with a margin, enhance, classify."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mer_lightning.checkpoint import LoadedModel
from mer_lightning.errors import UserError
from mer_lightning.predict.faces import Box, FaceDetector, enhance, to_model_input


@dataclass(frozen=True)
class FacePrediction:
    """The emotion predicted for one face (or for a whole image where no face was found)."""

    file: str
    face: int  # index of the face in its image, largest first
    face_detected: bool  # False: no face found, the whole image was classified
    box: Box  # the detected face, before the margin; the whole image when none was found
    label: str
    probabilities: dict[str, float] = field(default_factory=dict)

    @property
    def confidence(self) -> float:
        """Probability of the predicted class."""
        return self.probabilities[self.label]


class FacePredictor:
    """The prediction pipeline of the paper's Figures 7-13, shared by photos and the webcam."""

    def __init__(
        self,
        model: LoadedModel,
        detector: FaceDetector | None,
        margin: float = 0.2,
        enhance_settings: Mapping[str, Any] | None = None,
    ) -> None:
        if margin < 0:
            raise UserError(f"faces.margin={margin} must be >= 0 (a share of the face side)")
        self.model = model
        self.detector = detector
        self.margin = margin
        self.enhance_settings = dict(enhance_settings or {"enabled": False})

    def predict(
        self, image: np.ndarray, file: str, whole_if_no_face: bool = True
    ) -> list[FacePrediction]:
        """Predictions for every face in a BGR image.

        With no face found (or detection switched off), the whole image is classified when
        `whole_if_no_face`, since the dataset's own images are already tight face crops.
        """
        boxes = self.detector.detect(image) if self.detector is not None else []
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
        probabilities = self.model.predict_proba(to_model_input(crops, self.model.image_size))
        names = self.model.class_names
        return [
            FacePrediction(
                file=file,
                face=index,
                face_detected=detected,
                box=box,
                label=names[int(row.argmax())],
                probabilities={name: float(p) for name, p in zip(names, row, strict=True)},
            )
            for index, (box, row) in enumerate(zip(boxes, probabilities, strict=True))
        ]
