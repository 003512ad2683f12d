"""Face geometry, enhancement, the no-face fallback, and the Haar cascade on real faces."""

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from mer_lightning.core.checkpoint import LoadedModel
from mer_lightning.core.errors import UserError
from mer_lightning.predict.box import Box
from mer_lightning.predict.faces import enhance, to_model_input
from mer_lightning.predict.haar import HaarDetector
from mer_lightning.predict.pipeline import FacePredictor
from tests.predict.helpers import box_iou, upscaled_face

NAMES = ["calm", "glad", "cross"]


class RecordingNet(nn.Module):
    """Fixed logits; keeps the last input so a test can see what the model was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x.clone()
        return torch.tensor([[0.0, 2.0, 1.0]]).expand(x.shape[0], 3)


class FixedDetector:
    """Stands in for the cascade: always 'finds' the given boxes."""

    def __init__(self, boxes: list[Box]) -> None:
        self.boxes = boxes

    def detect(self, image: np.ndarray) -> list[Box]:
        return list(self.boxes)


def recording_model(image_size: int = 16) -> LoadedModel:
    return LoadedModel(RecordingNet(), NAMES, image_size, (0.5,) * 3, (0.5,) * 3, arch={})


def gradient_image(height: int = 120, width: int = 160) -> np.ndarray:
    """A BGR image whose every pixel differs, so a wrong crop cannot go unnoticed."""
    rows = np.arange(height, dtype=np.uint16).reshape(-1, 1)
    cols = np.arange(width, dtype=np.uint16).reshape(1, -1)
    return np.stack([rows + 0 * cols, cols + 0 * rows, (rows + cols) % 256], -1).astype(np.uint8)


def test_box_expands_by_the_margin_on_every_side():
    assert Box(40, 30, 20, 10).expand(0.5, (100, 200, 3)) == Box(30, 25, 40, 20)
    assert Box(40, 30, 20, 10).expand(0.0, (100, 200, 3)) == Box(40, 30, 20, 10)


def test_box_expansion_is_clipped_to_the_image():
    assert Box(5, 2, 20, 20).expand(0.5, (30, 28, 3)) == Box(0, 0, 28, 30)
    assert Box(90, 70, 10, 10).expand(1.0, (80, 100, 3)) == Box(80, 60, 20, 20)


def test_crop_takes_exactly_the_box():
    image = gradient_image()
    crop = Box(10, 20, 30, 40).crop(image)
    assert crop.shape == (40, 30, 3)
    assert (crop == image[20:60, 10:40]).all()
    assert Box.whole(image) == Box(0, 0, 160, 120)


@pytest.mark.parametrize("method", ["equalize", "clahe", "stretch"])
def test_enhancement_widens_the_contrast_of_a_dull_face(method):
    grey = np.random.default_rng(0).integers(100, 131, (40, 40), dtype=np.uint8)  # 30 levels
    dull = np.stack([grey] * 3, axis=-1)
    enhanced = enhance(dull, {"enabled": True, "method": method})
    assert enhanced.shape == dull.shape and enhanced.dtype == np.uint8
    luma = cv2.cvtColor(enhanced, cv2.COLOR_BGR2GRAY)
    assert luma.std() > 4 * grey.std()
    assert int(luma.max()) - int(luma.min()) > 200


def test_enhancement_switched_off_leaves_pixels_alone_and_unknown_methods_fail():
    image = gradient_image()
    assert enhance(image, {"enabled": False, "method": "equalize"}) is image
    with pytest.raises(UserError, match="enhance.method=sharpen"):
        enhance(image, {"enabled": True, "method": "sharpen"})


def test_model_input_is_rgb_uint8_at_the_model_size():
    blue = np.zeros((50, 30, 3), np.uint8)
    blue[..., 0] = 255  # OpenCV's BGR: channel 0 is blue
    batch = to_model_input([blue, gradient_image()], 16)
    assert batch.shape == (2, 3, 16, 16) and batch.dtype == torch.uint8
    assert batch[0, 2].min() == 255 and batch[0, :2].max() == 0  # blue is RGB channel 2


def test_the_model_sees_the_face_grown_by_the_margin():
    image = gradient_image()
    model = recording_model()
    face = Box(60, 40, 20, 20)
    predictor = FacePredictor(model, FixedDetector([face]), margin=0.5)

    [prediction] = predictor.predict(image, "photo.jpg")

    expected_crop = image[30:70, 50:90]  # 20 px face + 10 px margin on each side
    expected = model.normalize(to_model_input([expected_crop], 16))
    torch.testing.assert_close(model.net.seen, expected)
    assert prediction.face_detected and prediction.box == face and prediction.face == 0
    assert prediction.label == "glad" and prediction.file == "photo.jpg"
    assert prediction.probabilities == pytest.approx(
        dict(zip(NAMES, torch.tensor([0.0, 2.0, 1.0]).softmax(0).tolist(), strict=True))
    )


def test_every_detected_face_gets_its_own_prediction():
    boxes = [Box(10, 10, 30, 30), Box(100, 50, 20, 20)]
    predictions = FacePredictor(recording_model(), FixedDetector(boxes)).predict(
        gradient_image(), "two.jpg"
    )
    assert [(p.face, p.box, p.face_detected) for p in predictions] == [
        (0, boxes[0], True),
        (1, boxes[1], True),
    ]


def test_an_image_without_a_face_is_classified_whole():
    image = gradient_image()
    model = recording_model()
    predictor = FacePredictor(model, HaarDetector(), enhance_settings={"enabled": False})

    [prediction] = predictor.predict(image, "landscape.jpg")

    assert not prediction.face_detected and prediction.box == Box(0, 0, 160, 120)
    torch.testing.assert_close(model.net.seen, model.normalize(to_model_input([image], 16)))
    assert predictor.predict(image, "landscape.jpg", whole_if_no_face=False) == []


def test_unknown_cascade_names_the_key_and_the_fix():
    with pytest.raises(UserError, match="faces.cascade=no_such.xml .*opencv-python-headless"):
        HaarDetector("no_such.xml")


def test_cascade_finds_a_real_face_once_it_is_large_enough(real_root):
    source = real_root / "test" / "happiness" / "happiness1.jpg"
    photo = upscaled_face(source)  # the face spans (80, 80) to (400, 400) of a 480x480 photo
    boxes = HaarDetector().detect(photo)
    assert len(boxes) >= 1
    face = boxes[0]
    assert box_iou((face.x, face.y, face.width, face.height), (80, 80, 320, 320)) > 0.5
