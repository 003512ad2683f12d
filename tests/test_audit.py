"""Dataset audit: findings on a damaged copy, the CLI, dedup, and the real dataset's defects."""

import json
import logging
import subprocess
import sys

import pytest

from mer_lightning.audit import scan
from mer_lightning.core.data.audit import dedup_drops
from mer_lightning.core.data.datamodule import MicroExpressionDataModule
from mer_lightning.train import run
from tests.data_faults import CONVERTIBLE, copy_dataset, write_bad_files, write_duplicates
from tests.helpers import compose_config, fast_overrides


@pytest.fixture
def messy_root(synthetic_root, tmp_path):
    """Bad files, odd images, duplicates of every kind and an empty test class folder."""
    root = copy_dataset(synthetic_root, tmp_path / "Micro_Expressions")
    write_bad_files(root)
    write_duplicates(root)
    for path in (root / "test" / "surprise").iterdir():
        path.unlink()
    return root


def names(entries):
    return sorted(entry.name for entry in entries)


def test_audit_finds_every_kind_of_problem(messy_root):
    report = scan(messy_root)
    counts = report.counts()
    assert counts["train_files"] == 7 * 14 + 7 + 2  # + 7 bad or odd files, 2 copies
    assert counts["test_files"] == 6 * 6 + 2  # surprise emptied, 2 leaked copies
    assert names(report.broken) == ["train/anger/truncated.jpg", "train/anger/zero.jpg"]
    assert names(report.not_images) == ["train/anger/notes.txt"]
    unexpected = {entry.name: why for entry, why in report.unexpected}
    assert set(unexpected) == {f"train/anger/{name}" for name in CONVERTIBLE}
    assert unexpected["train/anger/gray.jpg"] == "mode L"
    assert unexpected["train/anger/cmyk.jpg"] == "mode CMYK"
    assert unexpected["train/anger/png_named.jpg"] == "PNG data named .jpg"
    assert unexpected["train/anger/small.jpg"] == "size 48x60"
    assert (report.expected_mode, report.expected_size) == ("RGB", (80, 80))
    assert report.empty_folders == ["test/surprise"] and report.missing_folders == []


def test_audit_groups_duplicates_by_content(messy_root, synthetic_root, tmp_path):
    expected = write_duplicates(copy_dataset(synthetic_root, tmp_path / "fresh"))
    report = scan(messy_root)
    groups = {tuple(sorted(m.name for m in g.members)): g for g in report.duplicates}
    assert sorted(groups) == sorted(tuple(pair) for pair in expected.values())
    kinds = {
        kind: (groups[tuple(pair)].within_split, groups[tuple(pair)].cross_split)
        for kind, pair in expected.items()
    }
    assert kinds == {
        "within": (True, False),
        "leak": (False, True),
        "conflict": (True, False),
        "leak_conflict": (False, True),
    }
    conflicting = {tuple(sorted(m.name for m in g.members)) for g in report.conflicting}
    assert conflicting == {tuple(expected["conflict"]), tuple(expected["leak_conflict"])}
    summary = report.summary()
    assert "4 duplicate groups: 2 within a split, 2 across train and test" in summary
    assert "2 with conflicting labels" in summary


def test_a_run_audits_the_files_it_decodes_exactly_like_the_command(messy_root, caplog):
    """One reading of the files serves training and the audit; both see the same findings."""
    dm = MicroExpressionDataModule(root=str(messy_root), image_size=32)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert dm.audit.to_json() == scan(messy_root).to_json()


def test_dedup_drops_test_copies_of_train_and_conflicting_train_copies(messy_root):
    (messy_root / "test" / "surprise" / "surprise1.jpg").write_bytes(
        (messy_root / "train" / "surprise" / "surprise2.jpg").read_bytes()
    )
    kept = MicroExpressionDataModule(root=str(messy_root), image_size=32)
    kept.setup("fit")
    dm = MicroExpressionDataModule(root=str(messy_root), image_size=32, dedup=True)
    dm.setup("fit")
    from_test, from_train = dedup_drops(dm.audit)
    assert sorted(p.name for p in from_test) == [
        "leaked.jpg",
        "leaked_other_label.jpg",
        "surprise1.jpg",
    ]
    assert sorted(p.name for p in from_train) == ["disgust1.jpg", "mislabelled.jpg", "sadness1.jpg"]
    assert dm.dropped == {"test_cross_split": 3, "train_conflicting_labels": 3}
    assert len(dm.test_images.labels) == len(kept.test_images.labels) - 3
    assert len(dm.train_images.labels) == len(kept.train_images.labels) - 3
    assert not {p.name for p in dm.test_images.paths} & {"leaked.jpg", "surprise1.jpg"}
    assert "copy.jpg" in {p.name for p in dm.train_images.paths}  # same label: kept
    summary = dm.data_summary()
    assert summary["dedup"] is True
    assert summary["dedup_dropped"] == {"test_cross_split": 3, "train_conflicting_labels": 3}
    assert summary["test_images"] == len(dm.test_images.labels)


@pytest.mark.slow
def test_a_dedup_run_records_the_drops_in_metrics_json(synthetic_root, tmp_path, caplog):
    root = copy_dataset(synthetic_root, tmp_path / "Micro_Expressions")
    write_duplicates(root)
    overrides = fast_overrides("cnn1", root, "data.dedup=true", "trainer.limit_predict_batches=1")
    with caplog.at_level(logging.INFO):
        run(compose_config(overrides, tmp_path / "run"))
    data = json.loads((tmp_path / "run" / "metrics.json").read_text())["data"]
    assert data["dedup_dropped"] == {"test_cross_split": 2, "train_conflicting_labels": 3}
    assert data["audit"]["duplicate_groups"] == 4 and data["test_images"] == 7 * 6
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("data audit: ") and "4 duplicate groups" in m for m in messages)
    assert any("data.dedup=true: left out 2 test images" in m for m in messages)


def test_cli_prints_the_summary_and_writes_audit_json(messy_root, tmp_path):
    out = tmp_path / "audit"
    result = subprocess.run(
        [sys.executable, "-m", "mer_lightning.audit", f"data.root={messy_root}", "show=2"]
        + [f"hydra.run.dir={out}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    stdout = " ".join(result.stdout.split())
    assert scan(messy_root).summary() in stdout
    assert "train/anger/truncated.jpg" in stdout and "more in audit.json" in stdout
    saved = json.loads((out / "audit.json").read_text())
    assert saved["counts"]["duplicate_groups"] == 4
    assert {"file": "train/anger/zero.jpg", "problem": "empty file (0 bytes)"} in saved[
        "broken_files"
    ]


def test_cli_names_a_bad_root_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mer_lightning.audit", f"data.root={tmp_path / 'nowhere'}"]
        + [f"hydra.run.dir={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "does not exist" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_the_real_dataset_has_its_documented_defects(real_root):
    report = scan(real_root)
    counts = report.counts()
    assert (counts["train_files"], counts["test_files"]) == (7600, 1860)
    assert len(report.duplicates) == 117
    assert len(report.cross_split) == 41
    assert len(report.conflicting) == 58
    assert counts["broken_files"] == counts["non_image_files"] == counts["unexpected_images"] == 0
    assert len({m.info.sha1 for g in report.duplicates for m in g.members}) == 117
    from_test, from_train = dedup_drops(report)
    assert len(from_test) == 41 and len(from_train) == 94
