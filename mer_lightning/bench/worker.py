"""One model's measurements, run in a fresh process by `python -m mer_lightning.bench`.

A process of its own per model gives each a clean peak RSS (read with getrusage when the
Trainer's warm-up ends, before the interleaved loops allocate anything) and keeps one
model's allocator and oneDNN caches from helping or hurting the next. Results go to a
JSON file.
"""

import argparse
import copy
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from mer_lightning.bench.flops import flops_per_image
from mer_lightning.bench.kernels import kernel_breakdown
from mer_lightning.bench.ladder import measure_ladder
from mer_lightning.bench.reference import reference_loop, reference_pipeline_throughput
from mer_lightning.bench.timing import Budget, Loop
from mer_lightning.bench.training import (
    inference_throughput,
    pipeline_throughput,
    plain_loop,
    trainer_throughput,
)
from mer_lightning.core.data.layout import class_names, list_split, resolve_root
from mer_lightning.core.models import build_net, net_config
from mer_lightning.runs.config import compose_run_config
from mer_lightning.runs.precision import resolve_precision, target_device

TASKS = ("trainer", "pipeline", "inference", "plain", "reference", "flops", "kernels")


def describe(cfg) -> dict[str, Any]:
    """The settings that decide speed, as composed (after the overrides) and resolved."""
    accelerator = str(cfg.trainer.accelerator)
    return {
        "precision": str(resolve_precision(cfg.trainer.precision, accelerator)),
        "precision_setting": str(cfg.trainer.precision),
        "accelerator": accelerator,
        "device": target_device(accelerator),
        "channels_last": cfg.module.get("channels_last"),
        "compile": cfg.module.get("compile"),
        "optimizer": str(cfg.module.optimizer._target_).rsplit(".", 1)[-1],
        "fused_optimizer": cfg.module.optimizer.get("fused"),
        "batch_size": int(cfg.data.batch_size),
        "eval_batch_size": int(cfg.data.eval_batch_size),
        "num_workers": int(cfg.data.num_workers),
        "batch_augment": cfg.data.get("batch_augment"),
        "image_size": int(cfg.data.image_size),
    }


def measure(
    model: str, overrides: list[str], tasks: list[str], budget: Budget, inference_budget: Budget
) -> dict[str, Any]:
    """Run the chosen measurements for `model` with `overrides`.

    The Trainer goes first, in a fresh process, so that the peak RSS read after its
    warm-up is its own; the plain loop and the reference recipe run interleaved with it.
    """
    result: dict[str, Any] = {"model": model, "overrides": overrides}
    with tempfile.TemporaryDirectory(prefix="mer-bench-") as tmp:

        def cfg_for(task: str):
            return compose_run_config([f"model={model}", *overrides], Path(tmp) / task)

        cfg = cfg_for("describe")
        result["settings"] = describe(cfg)
        result["torch_threads"] = torch.get_num_threads()
        net = build_net(net_config(cfg.model, num_classes=_num_classes(cfg)))
        result["parameters"] = sum(p.numel() for p in net.parameters())
        if "flops" in tasks:
            result["flops"] = flops_per_image(net, int(cfg.data.image_size))
        if "trainer" in tasks:
            companions = {}
            if "plain" in tasks:
                companions["plain"] = lambda: plain_loop(cfg_for("plain"))
            if "reference" in tasks:
                companions["reference"] = lambda: _reference(cfg, net)
            start = time.perf_counter()
            result["trainer"], timer = trainer_throughput(cfg_for("trainer"), budget, companions)
            result["trainer"]["process_seconds"] = time.perf_counter() - start
            result["peak_rss_mb"] = timer.rss_mb
            for name, loop in timer.companions.items():
                result[name] = loop.times.summary()
            del timer
            gc.collect()
        if "reference" in tasks:
            root = _root(cfg)
            result["reference_pipeline"] = reference_pipeline_throughput(
                root / "train",
                int(cfg.data.image_size),
                int(cfg.data.batch_size),
                _pipeline_budget(budget),
            )
        if "pipeline" in tasks:
            result["pipeline"] = pipeline_throughput(cfg_for("pipeline"), _pipeline_budget(budget))
            gc.collect()
        if "inference" in tasks:
            result["inference"] = inference_throughput(cfg_for("inference"), inference_budget)
            gc.collect()
        if "kernels" in tasks:
            result["kernels"] = kernel_breakdown(cfg_for("kernels"))
    return result


def ladder(
    model: str, overrides: list[str], rungs: dict[str, dict[str, Any]], budget: Budget
) -> dict[str, Any]:
    """The variants' plain loops round-robin, then the data pipeline of those that ask."""
    with tempfile.TemporaryDirectory(prefix="mer-bench-") as tmp:
        rates = measure_ladder(model, overrides, rungs, budget, Path(tmp))
        gc.collect()
        pipelines = {
            name: pipeline_throughput(
                compose_run_config(
                    [f"model={model}", *overrides, *rung["overrides"]], Path(tmp) / f"data-{name}"
                ),
                _pipeline_budget(budget),
            )
            for name, rung in rungs.items()
            if rung.get("pipeline")
        }
    return {"model": model, "overrides": overrides, "ladder": rates, "pipelines": pipelines}


def _reference(cfg, net) -> Loop:
    """The reference recipe's loop over train/ with a fresh copy of the same net."""
    loop = reference_loop(
        copy.deepcopy(net), _root(cfg) / "train", int(cfg.data.image_size), int(cfg.data.batch_size)
    )
    return loop


def _root(cfg) -> Path:
    return resolve_root(cfg.data.root, bool(cfg.data.download), cfg.data.cache_dir)


def _pipeline_budget(budget: Budget) -> Budget:
    """Data loading is fast: more batches, the same time cap scaled down."""
    return Budget(warmup=1, steps=max(budget.steps, 30), max_seconds=10.0, min_steps=2)


def _num_classes(cfg) -> int:
    """Classes of the dataset, found the way the datamodule finds them (folder names)."""
    root = _root(cfg)
    return len(class_names(list_split(root / "train"), list_split(root / "test")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--inference-steps", type=int, default=6)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--ladder", type=Path, help="JSON of rungs: time them round-robin instead of --tasks"
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/train.yaml")
    args = parser.parse_args(argv)
    budget = Budget(args.warmup, args.steps, args.max_seconds)
    if args.ladder is not None:
        result = ladder(args.model, args.overrides, json.loads(args.ladder.read_text()), budget)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        return
    inference_budget = Budget(1, args.inference_steps, args.max_seconds / 2)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown tasks {unknown}; choose from {list(TASKS)}")
    result = measure(args.model, args.overrides, tasks, budget, inference_budget)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
