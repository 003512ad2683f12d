"""mer_lightning.recipes.sam.SAM: the base optimizer steps with the gradient at the worst nearby
weights, under Lightning's loop, schedulers and checkpoints."""

import pytest
import torch
from torch import nn

from mer_lightning.core.errors import UserError
from mer_lightning.recipes.sam import SAM
from mer_lightning.runs.build import build
from tests.helpers import compose_config, fast_overrides

SAM_OVERRIDES = (
    "module.optimizer._target_=mer_lightning.recipes.sam.SAM",
    "+module.optimizer.base=torch.optim.AdamW",
    "+module.optimizer.rho=0.05",
)


def test_the_step_uses_the_gradient_at_the_ascent_point_and_keeps_the_weights():
    weights = nn.Parameter(torch.tensor([1.0, -2.0]))
    curvature = torch.tensor([3.0, 0.5])
    calls = []

    def closure():
        calls.append(weights.detach().clone())
        weights.grad = None
        loss = (curvature * weights**4).sum()
        loss.backward()
        return loss

    optimizer = SAM([weights], base=torch.optim.SGD, rho=0.1, lr=0.01)
    loss = optimizer.step(closure)

    start = torch.tensor([1.0, -2.0])
    gradient = 4 * curvature * start**3
    ascent = start + 0.1 * gradient / gradient.norm()
    assert [c.tolist() for c in calls] == [start.tolist(), pytest.approx(ascent.tolist())]
    expected = start - 0.01 * (4 * curvature * ascent**3)
    torch.testing.assert_close(weights.detach(), expected)
    assert loss.item() == pytest.approx((curvature * start**4).sum().item())


def test_schedulers_and_checkpoints_reach_the_base_optimizer():
    net = nn.Linear(3, 2)
    optimizer = SAM(net.parameters(), base="torch.optim.AdamW", lr=0.1, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

    def closure():
        optimizer.zero_grad()
        loss = net(torch.ones(4, 3)).pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    scheduler.step()
    assert optimizer.base.param_groups[0]["lr"] == pytest.approx(0.05)

    restored = SAM(nn.Linear(3, 2).parameters(), base=torch.optim.AdamW, lr=0.1)
    restored.load_state_dict(optimizer.state_dict())
    assert restored.param_groups[0]["lr"] == pytest.approx(0.05)
    assert restored.param_groups is restored.base.param_groups
    moments = [state["exp_avg"] for state in restored.base.state.values()]
    assert len(moments) == 2 and all(m.abs().sum() > 0 for m in moments)


def test_bad_settings_name_the_key_and_the_fix():
    params = [nn.Parameter(torch.zeros(1))]
    with pytest.raises(UserError, match=r"module.optimizer.rho=0 must be > 0"):
        SAM(params, base=torch.optim.SGD, rho=0, lr=0.1)
    with pytest.raises(UserError, match=r"module.optimizer.base=torch.optim.Nope .*AdamW"):
        SAM(params, base="torch.optim.Nope", lr=0.1)
    with pytest.raises(
        UserError, match=r"module.optimizer.base is not set.*\+module.optimizer.base="
    ):
        SAM(params, lr=0.1)
    with pytest.raises(RuntimeError, match="closure"):
        SAM(params, base=torch.optim.SGD, lr=0.1).step()


@pytest.mark.slow
def test_a_run_trains_with_sam_on_one_blend_per_batch_counted_once(synthetic_root, tmp_path):
    overrides = fast_overrides("cnn1", synthetic_root, *SAM_OVERRIDES, "data.mixup_alpha=0.2")
    datamodule, module, trainer = build(compose_config(overrides, tmp_path))
    training_inputs = []

    def record(net, args, output):
        if net.training:
            training_inputs.append(args[0].detach().clone())

    module.net.register_forward_hook(record)
    trainer.fit(module, datamodule=datamodule)

    assert isinstance(trainer.optimizers[0], SAM)
    assert trainer.global_step > 0 and len(training_inputs) == 2 * trainer.global_step
    for first, second in zip(training_inputs[::2], training_inputs[1::2], strict=True):
        assert torch.equal(first, second)  # the ascent pass sees the step's own blend
    assert module.train_images_seen.item() == 7 * 13  # each training image once per epoch


def test_gradient_accumulation_is_refused_naming_both_keys(synthetic_root, tmp_path):
    overrides = fast_overrides(
        "cnn1", synthetic_root, *SAM_OVERRIDES, "+trainer.accumulate_grad_batches=2"
    )
    datamodule, module, trainer = build(compose_config(overrides, tmp_path))
    with pytest.raises(UserError, match=r"trainer.accumulate_grad_batches=2 .*data.batch_size"):
        trainer.fit(module, datamodule=datamodule)
