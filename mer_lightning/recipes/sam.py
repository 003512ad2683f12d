"""Sharpness-aware minimisation (SAM; Foret et al., ICLR 2021) as a torch optimizer.

Each step takes the gradient where the loss rises fastest within a ball of radius `rho`
around the weights, then lets the base optimizer (AdamW, SGD, ...) step from the weights
themselves. Flat minima generalise better, and SAM is reported to resist noisy labels,
which this web-scraped dataset has. An optimizer and nothing else, so that Lightning's own
loop, precision and checkpoints drive it: Lightning's automatic optimization hands
`step` the closure that runs `training_step` and its backward, and SAM runs it twice.
Select it with `module.optimizer._target_=mer_lightning.recipes.sam.SAM
+module.optimizer.base=torch.optim.AdamW +module.optimizer.rho=0.05` (README "Sharpness-aware
minimisation"); every other key of module.optimizer goes to the base optimizer.
"""

import importlib
from collections.abc import Callable, Iterable
from typing import Any

import torch

from mer_lightning.core.errors import UserError

KEY = "module.optimizer"


def optimizer_class(path: str) -> type[torch.optim.Optimizer]:
    """The optimizer class at the dotted import `path` (module.optimizer.base)."""
    module_name, _, name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        found = None
    if not (isinstance(found, type) and issubclass(found, torch.optim.Optimizer)):
        raise UserError(
            f"{KEY}.base={path} is not an importable torch optimizer class. Fix: name one by "
            "its import path, e.g. +module.optimizer.base=torch.optim.AdamW"
        )
    return found


class SAM(torch.optim.Optimizer):
    """The base optimizer's step taken with the gradient at the worst weights within `rho`.

    `base` is an optimizer class or its dotted name (`torch.optim.AdamW`); `base_options`
    (lr, weight_decay, ...) go to it. Learning-rate schedulers see its param groups, and
    the checkpoint holds its state, so a resumed run continues the same moments.
    """

    # Its second pass re-runs only a step's last batch: summed gradients of several would
    # be perturbed by one batch's ascent (the module refuses trainer.accumulate_grad_batches).
    accumulates_gradients = False

    def __init__(
        self,
        params: Iterable[Any],
        base: str | Callable[..., torch.optim.Optimizer] | None = None,
        rho: float = 0.05,
        **base_options: Any,
    ) -> None:
        if not rho > 0:
            raise UserError(
                f"{KEY}.rho={rho} must be > 0 (the radius of SAM's ascent step, e.g. 0.05); "
                f"for plain training drop {KEY}._target_=mer_lightning.recipes.sam.SAM"
            )
        if base is None:
            raise UserError(
                f"{KEY}.base is not set: SAM needs the optimizer it steps with. Fix: add "
                "+module.optimizer.base=torch.optim.AdamW (or another torch optimizer)"
            )
        if isinstance(base, str):
            base = optimizer_class(base)
        self.base = base(params, **base_options)
        self.rho = rho
        super().__init__(self.base.param_groups, self.base.defaults)
        self._share_base()

    def _share_base(self) -> None:
        """Make this optimizer's groups and state the base's own objects, so that a
        scheduler's lr change or a loaded checkpoint reaches the optimizer that steps."""
        self.param_groups = self.base.param_groups
        self.state = self.base.state

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One SAM step; `closure` recomputes the loss and its gradients (zeroed first),
        as Lightning's automatic optimization passes it. Returns the loss at the weights."""
        if closure is None:
            raise RuntimeError(
                "SAM needs the closure that recomputes the loss and gradients: call "
                "optimizer.step(closure), as Lightning's automatic optimization does"
            )
        with torch.enable_grad():
            loss = closure()
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return loss
        grads = [p.grad for p in params]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        ascent = torch._foreach_mul(grads, self.rho / (norm + 1e-12))
        torch._foreach_add_(params, ascent)
        with torch.enable_grad():
            closure()
        torch._foreach_sub_(params, ascent)
        self.base.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state: SAM keeps nothing between steps."""
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the base optimizer's state (a resumed run's moments and lr)."""
        self.base.load_state_dict(state_dict)
        self._share_base()
