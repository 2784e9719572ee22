"""The trainable heads: linear regression experts ``r = W z + b`` and the gating network ``g(x)``.

Example:
    >>> import torch
    >>> experts = RegressionExperts(z_dim=4, n_experts=5)
    >>> experts(torch.zeros(2, 4)).shape
    torch.Size([2, 5])
    >>> gate = Gate(x_dim=3, n_out=5, hidden=8, layers=2, dropout=0.0, temperature=10.0)
    >>> w = gate(torch.zeros(2, 3))
    >>> w.shape, bool(torch.allclose(w.sum(-1), torch.ones(2)))
    (torch.Size([2, 5]), True)
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn


class RegressionExperts(nn.Linear):
    """One linear regression head per row: ``r = z @ W.T + b``, shape ``(B, n_experts)`` (stage 1's ridge fit
    sets ``weight`` and ``bias`` with :meth:`set_weights`)."""

    def __init__(self, z_dim: int, n_experts: int):
        super().__init__(z_dim, n_experts)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)

    @torch.no_grad()
    def set_weights(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Copy fitted weights in, checking shapes. ``weight``: ``(n_experts, z_dim)``; ``bias``: ``(n_experts,)``."""
        for name, value in (("weight", weight), ("bias", bias)):
            if value is None and name == "bias":
                continue
            value, target = torch.as_tensor(value), getattr(self, name)
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(
                    f"experts {name} must have shape {tuple(target.shape)}, got {tuple(value.shape)}"
                )
            target.copy_(value.to(target))


class Gate(nn.Module):
    """Gating network: ``softmax(MLP(x) / temperature) * scale`` with a learnable scalar ``scale`` (init 1).

    ``x_dim`` inputs, ``n_out`` gated experts; ``layers`` hidden layers of width ``hidden``, each followed by
    ReLU and dropout; ``learn_scale``: whether ``scale`` is trained.
    """

    def __init__(
        self,
        x_dim: int,
        n_out: int,
        hidden: int = 1024,
        layers: int = 3,
        dropout: float = 0.2,
        temperature: float = 10.0,
        learn_scale: bool = True,
    ):
        super().__init__()
        widths = [x_dim] + [hidden] * layers
        blocks = [m for a, b in pairwise(widths) for m in (nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout))]
        self.mlp = nn.Sequential(*blocks, nn.Linear(widths[-1], n_out))
        self.temperature = float(temperature)
        self.scale = nn.Parameter(torch.ones(()), requires_grad=learn_scale)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.mlp(x) / self.temperature, dim=-1) * self.scale
