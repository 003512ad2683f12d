"""The checkpoint alone rebuilds the model, and loading never executes pickled code."""

import pytest
import torch

from mer_lightning.core.checkpoint import load_checkpoint
from mer_lightning.core.errors import UserError
from mer_lightning.core.models.cnn import BlockCNN
from mer_lightning.core.module import EmotionClassifier
from tests.helpers import CLASSES

EXECUTED = []


def _record_execution() -> dict:
    EXECUTED.append(True)
    return {}


class PickledCode:
    """Unpickling this calls _record_execution: what weights_only loading must refuse."""

    def __reduce__(self):
        return (_record_execution, ())


def test_checkpoint_alone_gives_classes_preprocessing_and_the_trained_net(checkpoint):
    model = load_checkpoint(checkpoint)

    assert model.class_names == list(CLASSES)
    assert model.image_size == 32
    assert model.mean == (0.5, 0.5, 0.5) and model.std == (0.5, 0.5, 0.5)
    assert isinstance(model.net, BlockCNN) and not model.net.training
    assert model.arch["channels"] == [8, 16, 16] and model.arch["num_classes"] == 7
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in model.net.state_dict().items():
        assert torch.equal(value, saved[f"net.{key}"])

    # Same probabilities as the training module's own normalise + forward on those weights.
    module = EmotionClassifier(
        net=model.net,
        class_names=model.class_names,
        optimizer=None,
        mean=model.mean,
        std=model.std,
        image_size=model.image_size,
    ).eval()
    images = torch.randint(0, 256, (5, 3, 32, 32), generator=torch.Generator().manual_seed(1))
    images = images.to(torch.uint8)
    with torch.inference_mode():
        expected = module(images).softmax(dim=1)
    probabilities = model.predict_proba(images)
    assert probabilities.shape == (5, 7)
    torch.testing.assert_close(probabilities, expected)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(5))


def test_pickled_code_in_a_checkpoint_is_refused_without_running_it(checkpoint, tmp_path):
    contents = torch.load(checkpoint, map_location="cpu", weights_only=True)
    contents["extra"] = PickledCode()
    crafted = tmp_path / "crafted.ckpt"
    torch.save(contents, crafted)
    EXECUTED.clear()

    with pytest.raises(UserError, match="weights_only") as error:
        load_checkpoint(crafted)
    assert str(crafted) in str(error.value)
    assert EXECUTED == []


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(UserError, match=r"does not exist; pass ckpt=PATH") as error:
        load_checkpoint(tmp_path / "nope.ckpt")
    assert str(tmp_path / "nope.ckpt") in str(error.value)


def test_text_or_truncated_files_are_user_errors(checkpoint, tmp_path):
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(checkpoint.read_bytes()[:5000])
    for path in (text, truncated):
        with pytest.raises(UserError, match=f"{path} is not a readable PyTorch file"):
            load_checkpoint(path)


@pytest.mark.parametrize(
    ("contents", "reason"),
    [
        ({"weights": torch.zeros(2)}, "no hyper_parameters or state_dict"),
        ({"hyper_parameters": {"class_names": ["a"]}, "state_dict": {}}, "lack"),
        (torch.zeros(3), "not a dict"),
    ],
)
def test_other_pytorch_files_are_not_mer_lightning_checkpoints(contents, reason, tmp_path):
    path = tmp_path / "other.pt"
    torch.save(contents, path)
    with pytest.raises(UserError, match=f"not a mer_lightning checkpoint .*{reason}"):
        load_checkpoint(path)


def test_an_arch_outside_the_package_is_never_instantiated(checkpoint, tmp_path):
    contents = torch.load(checkpoint, map_location="cpu", weights_only=True)
    contents["hyper_parameters"]["arch"] = {"_target_": "os.system", "command": "echo pwned"}
    crafted = tmp_path / "crafted.ckpt"
    torch.save(contents, crafted)
    with pytest.raises(UserError, match="os.system"):
        load_checkpoint(crafted)
