"""The default detector crops faces as the dataset's author did: BlazeFace's box, no margin."""

import numpy as np
import pytest
import torch

from mer_lightning.core.errors import UserError
from mer_lightning.predict.blazeface import MODEL_FILE, BlazeFaceDetector
from mer_lightning.predict.box import Box
from mer_lightning.predict.faces import build_detector, to_model_input
from mer_lightning.predict.haar import HaarDetector
from mer_lightning.predict.pipeline import FacePredictor
from tests.predict.helpers import box_iou, compose_task, face_photo
from tests.predict.test_faces import recording_model


def test_blazeface_finds_the_face_in_a_photo_with_the_dataset_framing():
    photo, expected = face_photo(scale=1.25, left=70, top=30)

    boxes = BlazeFaceDetector().detect(photo)

    assert len(boxes) == 1
    face = boxes[0]
    # The legacy API's box, moved and scaled with the photo: MediaPipe's own framing.
    assert box_iou((face.x, face.y, face.width, face.height), expected) > 0.85
    assert abs(face.width - face.height) <= 0.1 * face.width  # BlazeFace boxes are square
    # Tight: the box is the face (brows to chin), far smaller than the Haar box grown by 0.2.
    [haar] = HaarDetector().detect(photo)
    grown = haar.expand(0.2, photo.shape)
    assert face.width * face.height < 0.8 * grown.width * grown.height


def test_the_default_config_crops_the_box_as_found_without_enhancement(tmp_path):
    cfg = compose_task("predict", ["input=x.jpg"], tmp_path)
    assert cfg.faces.detector == "blazeface" and cfg.faces.margin == 0
    assert cfg.enhance.enabled is False
    assert cfg.faces.min_crop == 80 and cfg.faces.dataset_size == 80
    assert isinstance(build_detector(cfg.faces), BlazeFaceDetector)

    photo, _ = face_photo(scale=1.25, left=70, top=30)
    model = recording_model(image_size=16)
    detector = BlazeFaceDetector()
    predictor = FacePredictor(model, detector, margin=0.0, min_crop=80, dataset_size=80)
    [prediction] = predictor.predict(photo, "photo.jpg")

    [box] = detector.detect(photo)
    assert prediction.face_detected and prediction.box == box
    # The model saw the box's pixels, resized to 80x80 as the dataset's crops, then to 16x16.
    expected = model.normalize(to_model_input([box.crop(photo)], 16, 80))
    torch.testing.assert_close(model.net.seen, expected)


def test_faces_under_min_crop_pixels_are_left_out_as_the_dataset_dropped_them():
    photo, expected = face_photo(scale=0.7, size=(360, 360))  # the astronaut, shrunk
    assert expected[3] < 80  # the face is about 66 px high
    model = recording_model()
    dropping = FacePredictor(model, BlazeFaceDetector(), min_crop=80, dataset_size=80)
    keeping = FacePredictor(model, BlazeFaceDetector(), min_crop=0, dataset_size=80)

    assert dropping.find_faces(photo) == []
    [kept] = keeping.find_faces(photo)
    assert box_iou((kept.x, kept.y, kept.width, kept.height), expected) > 0.85
    [whole] = dropping.predict(photo, "small.jpg")
    assert not whole.face_detected and whole.box == Box.whole(photo)


def test_no_face_in_a_blank_photo_and_bad_settings_name_their_key():
    assert BlazeFaceDetector().detect(np.full((300, 300, 3), 200, np.uint8)) == []
    with pytest.raises(UserError, match="faces.detector=yolo is not one of"):
        build_detector({"detector": "yolo"})
    with pytest.raises(UserError, match="faces.min_confidence=1.5"):
        BlazeFaceDetector(1.5)
    with pytest.raises(UserError, match="faces.min_crop=-1"):
        FacePredictor(recording_model(), None, min_crop=-1)


def test_the_vendored_model_file_and_its_licence_ship_in_the_package():
    assert MODEL_FILE.is_file() and MODEL_FILE.stat().st_size < 300_000
    licence = (MODEL_FILE.parent / "LICENSE.mediapipe").read_text()
    assert "Apache License" in licence and "Version 2.0" in licence
