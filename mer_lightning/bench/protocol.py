"""Wall time of the full three-model paper protocol, estimated from measured rates.

The protocol is `python -m mer_lightning experiment=paper` for each model: max_epochs of
fitting over the training split (twice over with data.include_originals: augmented and
original copies), a validation pass per epoch, then validation of the best checkpoint,
the test and the train-accuracy pass. Each epoch's time is its images divided by the
measured steady-state training rate, plus its validation images divided by the measured
inference rate; dataset decoding is the measured build time. A lower bound sits next to
it: the protocol's training FLOPs at 100 % of the measured matmul peak.
"""

from typing import Any


def protocol_settings(paper_cfg) -> dict[str, Any]:
    """What the paper experiment changes that decides its length."""
    return {
        "max_epochs": int(paper_cfg.trainer.max_epochs),
        "include_originals": bool(paper_cfg.data.include_originals),
        "batch_size": int(paper_cfg.data.batch_size),
    }


def estimate_model(result: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any] | None:
    """Seconds of one model's protocol run from its bench result; None when not measured."""
    trainer, inference = result.get("trainer"), result.get("inference")
    if not trainer or not inference or not trainer.get("images_per_s_mean"):
        return None
    sizes = trainer["split_sizes"]
    copies = 2 if settings["include_originals"] else 1
    train_images = sizes["train"] * copies
    train_s = train_images / trainer["images_per_s_mean"]
    val_s = sizes["val"] / inference["images_per_s_mean"]
    epoch_s = train_s + val_s
    after_fit_s = (sizes["val"] + sizes["test"] + sizes["train"]) / inference["images_per_s_mean"]
    setup_s = trainer.get("build_seconds", 0.0)
    total_s = settings["max_epochs"] * epoch_s + after_fit_s + setup_s
    flops = result.get("flops", {}).get("train")
    return {
        "model": result["model"],
        "epochs": settings["max_epochs"],
        "train_images_per_epoch": train_images,
        "train_seconds_per_epoch": train_s,
        "val_seconds_per_epoch": val_s,
        "epoch_seconds": epoch_s,
        "after_fit_seconds": after_fit_s,
        "setup_seconds": setup_s,
        "total_seconds": total_s,
        "train_flops": flops * train_images * settings["max_epochs"] if flops else None,
    }


def estimate_protocol(
    results: list[dict[str, Any]], settings: dict[str, Any], peak_gflops: float | None
) -> dict[str, Any]:
    """Per-model and total estimate, with the FLOP lower bound at the matmul peak."""
    models = [m for m in (estimate_model(r, settings) for r in results) if m is not None]
    total = sum(m["total_seconds"] for m in models)
    flops = [m["train_flops"] for m in models]
    bound = sum(flops) / (peak_gflops * 1e9) if peak_gflops and flops and all(flops) else None
    return {
        "settings": settings,
        "models": models,
        "total_minutes": total / 60.0,
        "lower_bound_minutes_at_peak": bound / 60.0 if bound is not None else None,
        "complete": len(models) == len(results),
    }
