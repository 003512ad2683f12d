"""python -m mer_lightning.trials: bad storage and study choices are named, never created."""

import optuna
import pytest

from mer_lightning.trials import main


def test_a_missing_storage_file_is_named_and_not_created(tmp_path, capsys):
    missing = tmp_path / "nope.db"
    with pytest.raises(SystemExit) as exit_info:
        main([f"sqlite:///{missing}"])
    assert exit_info.value.code == 2
    assert f"{missing} does not exist" in "".join(capsys.readouterr())
    assert not missing.exists()


def test_several_studies_need_study_and_an_out_file_is_never_overwritten(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'search.db'}"
    for name in ("cnn1", "resnet18"):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        study.optimize(lambda trial: trial.suggest_float("lr", 1e-4, 1e-2), n_trials=2)
    with pytest.raises(SystemExit):
        main([storage])
    assert "pick one with --study" in "".join(capsys.readouterr())

    out = tmp_path / "trials.md"
    assert main([storage, "--study", "cnn1", "--out", str(out)]) == 0
    assert out.read_text().count("| COMPLETE |") == 2
    with pytest.raises(SystemExit):
        main([storage, "--study", "cnn1", "--out", str(out)])
    assert "never overwritten" in "".join(capsys.readouterr())
