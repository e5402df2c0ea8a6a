"""The schedulers against PyTorch's: the same sequence of learning rates (and momenta).

Each case builds the same schedule over two parameter groups (lrs 0.1 and 0.02) in tapegrad
and in torch, steps both, and compares every group's lr, `get_last_lr()` and, for OneCycleLR,
the cycled momentum or beta1. A state dict taken halfway, sent through JSON, resumes the
schedule exactly.
"""

import json
import math
import warnings

import numpy as np
import pytest

from tapegrad import nn, optim

torch = pytest.importorskip("torch")

STEPS = 40


class Halving:
    """A callable object as lr_lambda: its attributes travel in the state dict."""

    def __init__(self, every):
        self.every = every

    def __call__(self, epoch):
        return 0.5 ** (epoch // self.every)


def _optimizers(kind="SGD"):
    ours = [nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))]
    theirs = [torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)]
    groups = lambda ps: [{"params": ps[:1]}, {"params": ps[1:], "lr": 0.02}]  # noqa: E731
    settings = {"lr": 0.1, "momentum": 0.9} if kind == "SGD" else {"lr": 0.1}
    return getattr(optim, kind)(groups(ours), **settings), getattr(torch.optim, kind)(
        groups(theirs), **settings
    )


def _build(module, optimizer, case):
    """The schedulers of `case` from `module` (tapegrad's or torch's lr_scheduler)."""
    s = module
    return {
        "lambda": lambda: [s.LambdaLR(optimizer, lambda e: 0.95**e)],
        "lambda-per-group": lambda: [s.LambdaLR(optimizer, [lambda e: 1 / (e + 1), Halving(4)])],
        "step": lambda: [s.StepLR(optimizer, step_size=3, gamma=0.5)],
        "multistep": lambda: [s.MultiStepLR(optimizer, milestones=[2, 5, 5, 9], gamma=0.3)],
        "exponential": lambda: [s.ExponentialLR(optimizer, gamma=0.9)],
        "cosine": lambda: [s.CosineAnnealingLR(optimizer, T_max=7, eta_min=0.001)],
        "linear": lambda: [s.LinearLR(optimizer)],
        "linear-down": lambda: [
            s.LinearLR(optimizer, start_factor=0.9, end_factor=0.1, total_iters=8)
        ],
        "onecycle": lambda: [s.OneCycleLR(optimizer, max_lr=[1.0, 0.5], total_steps=STEPS)],
        "onecycle-three-phase-linear": lambda: [
            s.OneCycleLR(
                optimizer,
                max_lr=0.8,
                epochs=4,
                steps_per_epoch=10,
                pct_start=0.25,
                anneal_strategy="linear",
                three_phase=True,
                base_momentum=0.8,
                max_momentum=[0.9, 0.95],
            )
        ],
        "sequential": lambda: [
            s.SequentialLR(
                optimizer,
                [
                    s.LinearLR(optimizer, start_factor=0.1, total_iters=4),
                    s.CosineAnnealingLR(optimizer, T_max=10),
                ],
                milestones=[5],
            )
        ],
        "sequential-three": lambda: [
            s.SequentialLR(
                optimizer,
                [
                    s.ExponentialLR(optimizer, gamma=0.8),
                    s.StepLR(optimizer, step_size=2, gamma=0.5),
                    s.CosineAnnealingLR(optimizer, T_max=6, eta_min=0.01),
                ],
                milestones=[4, 12],
            )
        ],
        "chained": lambda: [
            s.ExponentialLR(optimizer, gamma=0.95),
            s.MultiStepLR(optimizer, milestones=[10, 20], gamma=0.5),
        ],
    }[case]()


CASES = [
    "lambda",
    "lambda-per-group",
    "step",
    "multistep",
    "exponential",
    "cosine",
    "linear",
    "linear-down",
    "onecycle",
    "onecycle-three-phase-linear",
    "sequential",
    "sequential-three",
    "chained",
]


def _momenta(optimizer):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in optimizer.param_groups]


def _run(kind, case, steps=STEPS):
    """The lrs (and momenta) of both, step by step, with the schedulers."""
    mine, reference = _optimizers(kind)
    ours = _build(optim.lr_scheduler, mine, case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _build(torch.optim.lr_scheduler, reference, case)
    return mine, reference, ours, theirs


def _assert_same(mine, reference, ours, theirs):
    lrs = [g["lr"] for g in mine.param_groups]
    np.testing.assert_allclose(lrs, [g["lr"] for g in reference.param_groups], rtol=1e-12)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.get_last_lr(), b.get_last_lr(), rtol=1e-12)
        assert a.last_epoch == b.last_epoch
    np.testing.assert_allclose(_momenta(mine), _momenta(reference), rtol=1e-12)


def _step(optimizer, schedulers):
    optimizer.step()
    for scheduler in schedulers:
        scheduler.step()


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("case", CASES)
def test_the_learning_rates_follow_torchs(case, kind):
    mine, reference, ours, theirs = _run(kind, case)
    _assert_same(mine, reference, ours, theirs)  # after the constructor's step
    seen = set()
    for _ in range(STEPS - 1 if "onecycle" in case else STEPS):
        _step(mine, ours)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _step(reference, theirs)
        _assert_same(mine, reference, ours, theirs)
        seen.add(round(mine.param_groups[0]["lr"], 12))
    assert len(seen) > 2  # the schedule changed the lr


@pytest.mark.parametrize("case", CASES)
def test_a_state_dict_through_json_resumes_the_schedule(case):
    mine, _, ours, _ = _run("SGD", case)
    for _ in range(STEPS // 2):
        _step(mine, ours)
    saved_optimizer = mine.state_dict()
    saved = json.loads(json.dumps([s.state_dict() for s in ours]))
    resumed, _ = _optimizers()
    resumed.load_state_dict(saved_optimizer)
    schedulers = _build(optim.lr_scheduler, resumed, case)
    for scheduler, state in zip(schedulers, saved, strict=True):
        scheduler.load_state_dict(state)
    resumed.load_state_dict(saved_optimizer)  # the constructors set the lrs anew
    for _ in range(STEPS // 2 - 1):
        _step(mine, ours)
        _step(resumed, schedulers)
        assert [g["lr"] for g in resumed.param_groups] == [g["lr"] for g in mine.param_groups]
        assert schedulers[-1].get_last_lr() == ours[-1].get_last_lr()


def test_lambda_state_dict_keeps_callable_objects_only():
    mine, _ = _optimizers()
    scheduler = optim.lr_scheduler.LambdaLR(mine, [lambda e: 1.0, Halving(4)])
    assert scheduler.state_dict()["lr_lambdas"] == [None, {"every": 4}]
    scheduler.load_state_dict({**scheduler.state_dict(), "lr_lambdas": [None, {"every": 2}]})
    assert scheduler.lr_lambdas[1].every == 2


METRICS = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.9, 0.89, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95]


@pytest.mark.parametrize(
    "settings",
    [
        {"patience": 2},
        {"patience": 1, "cooldown": 2, "factor": 0.5},
        {"mode": "max", "patience": 1, "threshold_mode": "abs", "threshold": 0.01},
        {"patience": 0, "min_lr": [0.05, 0.001], "factor": 0.2},
        {"patience": 0, "min_lr": 0.0999999999, "eps": 1e-8},
    ],
)
def test_reduce_on_plateau_follows_torch(settings):
    mine, reference = _optimizers()
    ours = optim.lr_scheduler.ReduceLROnPlateau(mine, **settings)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(reference, **settings)
    for metric in METRICS * 2:
        ours.step(metric)
        theirs.step(torch.tensor(metric))
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
        assert (ours.best, ours.num_bad_epochs, ours.cooldown_counter, ours.last_epoch) == (
            pytest.approx(theirs.best),
            theirs.num_bad_epochs,
            theirs.cooldown_counter,
            theirs.last_epoch,
        )
    state = json.loads(json.dumps(ours.state_dict()))
    assert state["best"] == ours.best and state["mode_worse"] in (math.inf, -math.inf)
    resumed = optim.lr_scheduler.ReduceLROnPlateau(_optimizers()[0])
    resumed.load_state_dict(state)
    assert resumed.is_better(ours.best - 1, ours.best) == (ours.mode == "min")


def test_scheduler_errors_say_what_is_wrong():
    mine, _ = _optimizers()
    s = optim.lr_scheduler
    with pytest.raises(ValueError, match="2 lr_lambdas"):
        s.LambdaLR(mine, [lambda e: 1.0])
    with pytest.raises(ValueError, match="total_steps"):
        s.OneCycleLR(mine, max_lr=1.0)
    with pytest.raises(ValueError, match="cycle_momentum=False"):
        s.OneCycleLR(optim.Adagrad([nn.Parameter(np.ones(1))]), max_lr=1.0, total_steps=5)
    with pytest.raises(ValueError, match="beyond total_steps"):
        cycle = s.OneCycleLR(mine, max_lr=1.0, total_steps=2)
        for _ in range(3):
            cycle.step()
    with pytest.raises(ValueError, match="milestones"):
        s.SequentialLR(mine, [s.StepLR(mine, 2), s.StepLR(mine, 3)], milestones=[])
    with pytest.raises(KeyError, match="initial_lr"):
        s.StepLR(optim.SGD([nn.Parameter(np.ones(1))]), 2, last_epoch=3)
    with pytest.raises(ValueError, match="factor must be < 1"):
        s.ReduceLROnPlateau(mine, factor=1.0)


def test_old_lrscheduler_is_a_lambdalr():
    mine, _ = _optimizers()
    scheduler = optim.LRScheduler(mine, optim.triangular(10, peak_fraction=0.5, start=0.0))
    assert isinstance(scheduler, optim.lr_scheduler.LambdaLR)
    for _ in range(5):
        scheduler.step()
    assert scheduler.steps == scheduler.last_epoch == 5
    assert scheduler.get_last_lr() == pytest.approx([0.1, 0.02])


@pytest.mark.parametrize("case", ["lambda", "step", "multistep", "exponential", "cosine", "linear"])
def test_resuming_with_last_epoch_follows_torch(case):
    mine, reference = _optimizers()
    for group in [*mine.param_groups, *reference.param_groups]:
        group["initial_lr"] = group["lr"]
    build = {
        "lambda": lambda s, o: s.LambdaLR(o, lambda e: 0.9**e, last_epoch=4),
        "step": lambda s, o: s.StepLR(o, step_size=3, gamma=0.5, last_epoch=4),
        "multistep": lambda s, o: s.MultiStepLR(o, milestones=[6, 9], last_epoch=4),
        "exponential": lambda s, o: s.ExponentialLR(o, gamma=0.8, last_epoch=4),
        "cosine": lambda s, o: s.CosineAnnealingLR(o, T_max=9, last_epoch=4),
        "linear": lambda s, o: s.LinearLR(o, start_factor=0.2, total_iters=8, last_epoch=4),
    }[case]
    ours = build(optim.lr_scheduler, mine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = build(torch.optim.lr_scheduler, reference)
        for _ in range(12):
            _assert_same(mine, reference, [ours], [theirs])
            _step(mine, [ours])
            _step(reference, [theirs])
