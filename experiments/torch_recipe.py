"""cifar_improve's network and recipe in PyTorch (CPU), for a side-by-side comparison.

    python experiments/cifar_improve.py --framework torch [the same options]

Only the model, loss, optimiser and lookahead are PyTorch's: the data pipeline, augmentation,
schedules, test-time views and outputs are cifar_improve's own, and the network starts from
the tapegrad Net's initial weights (whitening filters included), so that the two frameworks
run the same computation. GELU is the tanh approximation, as in tapegrad. PyTorch is an
optional dependency (pip install torch==2.13.0).
"""

from __future__ import annotations

import numpy as np
import torch
from cifar_improve import EVAL_BATCH, normalise, sgd_groups
from torch import nn


class ConvGroup(nn.Module):
    """conv3x3 - maxpool2 - BN - GELU - conv3x3 - BN - GELU (as cifar_improve.ConvGroup)."""

    def __init__(self, in_channels: int, out_channels: int, bn_momentum: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = nn.BatchNorm2d(out_channels, eps=1e-12, momentum=1 - bn_momentum)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels, eps=1e-12, momentum=1 - bn_momentum)
        for norm in (self.norm1, self.norm2):
            norm.weight.requires_grad = False
        self.activation = nn.GELU(approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.norm1(self.pool(self.conv1(x))))
        return self.activation(self.norm2(self.conv2(x)))


class TorchNet(nn.Module):
    """cifar_improve.Net in PyTorch, with the same state-dict names."""

    def __init__(self, widths: tuple[int, int, int], bn_momentum: float, head_scale: float) -> None:
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
        self.whiten.weight.requires_grad = False
        self.groups = nn.ModuleList(
            [
                ConvGroup(24, widths[0], bn_momentum),
                ConvGroup(widths[0], widths[1], bn_momentum),
                ConvGroup(widths[1], widths[2], bn_momentum),
            ]
        )
        self.head = nn.Linear(widths[2], 10, bias=False)
        self.head_scale = head_scale
        self.activation = nn.GELU(approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.whiten(x))
        for group in self.groups:
            x = group(x)
        return self.head(x.amax(dim=(2, 3))) * self.head_scale


class TorchTrainer:
    """The recipe's loss, optimiser and lookahead around a TorchNet, with the methods of
    cifar_improve.TapegradTrainer; starts from a tapegrad Net's state dict."""

    def __init__(
        self,
        state: dict[str, np.ndarray],
        widths: tuple[int, int, int],
        batch_size: int,
        hyper: dict[str, float],
    ) -> None:
        self.model = TorchNet(widths, hyper["batchnorm_momentum"], hyper["head_scale"])
        self.load_state_dict(state)
        self.loss_fn = nn.CrossEntropyLoss(
            label_smoothing=hyper["label_smoothing"], reduction="sum"
        )
        if hyper["filter_optimizer"] != "sgd":
            raise ValueError("TorchTrainer trains the filters with SGD only (no Muon).")
        trained = [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]
        groups, momentum = sgd_groups(trained, batch_size, hyper)
        self.optimizer = torch.optim.SGD(groups, momentum=momentum, nesterov=True)
        self.base_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.average = {k: v.clone() for k, v in self.model.state_dict().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        own = self.model.state_dict()
        with torch.no_grad():
            for name, value in state.items():
                own[name].copy_(torch.from_numpy(np.asarray(value)))

    def state_dict(self) -> dict[str, np.ndarray]:
        """The weights and running statistics by tapegrad's names, as NumPy arrays."""
        return {
            name: value.detach().numpy().copy()
            for name, value in self.model.state_dict().items()
            if value.is_floating_point()
        }

    def set_lr_factor(self, factor: float) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[-1]["lr"]

    def train_whitening_bias(self, trained: bool) -> None:
        self.model.whiten.bias.requires_grad = trained

    def step(self, inputs: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        self.model.train()
        logits = self.model(torch.from_numpy(inputs))
        loss = self.loss_fn(logits, torch.from_numpy(np.asarray(labels, np.int64)))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item(), logits.detach().numpy()

    @torch.no_grad()
    def lookahead(self, decay: float) -> None:
        for average, current in zip(
            self.average.values(), self.model.state_dict().values(), strict=True
        ):
            if current.is_floating_point():
                average.lerp_(current, 1 - decay)
                current.copy_(average)

    @torch.no_grad()
    def use_average(self) -> None:
        self.lookahead(1.0)

    @torch.no_grad()
    def predict(self, images: np.ndarray) -> np.ndarray:
        self.model.eval()
        outputs = [
            self.model(torch.from_numpy(normalise(images[first : first + EVAL_BATCH]))).numpy()
            for first in range(0, len(images), EVAL_BATCH)
        ]
        self.model.train()
        return np.concatenate(outputs)

    def weight_decay_loss(self) -> float:
        """0.5 x weight_decay x |p|^2 summed over the trained parameters, as tapegrad logs it."""
        return sum(
            0.5 * group["weight_decay"] * float((p.detach() ** 2).sum())
            for group in self.optimizer.param_groups
            for p in group["params"]
        )
