"""Stage 1 of Triple-M (L_RG): ridge regression experts on frozen features, in closed form.

Each expert (a dimension, ``all`` or the single-objective ``total``) is fit on its labelled rows; the target
is the label times its scale (5*OS, 5*E, 3*H, TR, C; ``total`` unscaled). ``alpha`` is picked from a grid by
validation MSE on held-out tasks, then the expert is refit on all rows. Features are centred, so the bias is
not penalised.

``ridge_fit``: ``plain`` is one ridge of the target on all of ``z`` (the paper). ``advantage`` splits the
target into a state value plus an action advantage, as a dueling network does: the action columns are fit on
targets and features centred over the sibling actions of each state, then the state columns on what is left.
The expert is still one linear map ``r = W z``. The columns come from the backbone (``state_columns`` and
``action_columns``; columns in neither get no weight) or, for the action part, from ``ridge_action_blocks``;
a backbone that does not declare them (``hf``: its z mixes both) supports only ``plain``.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(200, 8))
    >>> y = z @ np.arange(8.0) + 1.0
    >>> fit = fit_ridge(z, y, train=np.arange(200) < 150, alphas=[1e-3, 1.0, 1e3])
    >>> fit.alpha, bool(np.allclose(fit.weight, np.arange(8.0), atol=1e-2)), round(fit.bias, 2)
    (0.001, True, 1.0)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from similar_rl.dimensions import DIMENSIONS

logger = logging.getLogger(__name__)


@dataclass
class RidgeFit:
    """One fitted expert and how it did on the validation split."""

    weight: np.ndarray
    bias: float
    alpha: float
    val_mse: float
    val_mse_zero: float  # MSE of predicting 0 on the validation rows
    val_mse_mean: float  # MSE of predicting the training mean
    n_train: int
    n_val: int
    alpha_action: float | None = None  # penalty of the action part of an ``advantage`` fit

    @property
    def val_r2(self) -> float:
        return 1.0 - self.val_mse / self.val_mse_mean if self.val_mse_mean > 0 else 0.0


class RidgeSolver:
    """Ridge solutions of centred features for any penalty and several targets, from one eigendecomposition.

    Uses the primal form (d x d Gram matrix) when there are more rows than features and the dual form
    (n x n kernel matrix) otherwise, so the cost is ``min(n, d)^3``.
    """

    def __init__(self, z: np.ndarray) -> None:
        self.mu = z.mean(axis=0)
        self.zc = z - self.mu
        self.dual = z.shape[0] < z.shape[1]
        gram = self.zc @ self.zc.T if self.dual else self.zc.T @ self.zc
        evals, self.evecs = np.linalg.eigh(gram)
        self.evals = np.clip(evals, 0.0, None)

    def weights(self, y: np.ndarray, alphas: Sequence[float]) -> tuple[list[np.ndarray], float]:
        """Weights (d,) for each alpha and the target mean (the intercept is the mean)."""
        mu_y = float(y.mean())
        yc = y - mu_y
        if self.dual:
            proj = self.evecs.T @ yc
            return [self.zc.T @ (self.evecs @ (proj / (self.evals + a))) for a in alphas], mu_y
        proj = self.evecs.T @ (self.zc.T @ yc)
        return [self.evecs @ (proj / (self.evals + a)) for a in alphas], mu_y


def fit_ridge(
    z: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    alphas: Sequence[float],
    solvers: tuple[RidgeSolver, RidgeSolver] | None = None,
) -> RidgeFit:
    """Fit one expert: choose ``alpha`` on rows where ``train`` is False, refit on all rows.

    ``z`` (N, d), ``y`` (N,) finite; ``solvers``: precomputed (training-rows, all-rows) solvers for these
    rows, shared between experts.
    """
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    train = np.asarray(train, dtype=bool)
    val = ~train
    if len(y) < 2:
        raise ValueError(f"ridge regression needs at least 2 labelled rows, got {len(y)}")
    alphas = [float(a) for a in alphas]
    choose = train.sum() >= 2 and val.sum() >= 1 and len(alphas) > 1
    if solvers is None:
        solvers = _solvers(z, train)
    best, val_mse, val_mse_zero, val_mse_mean = 0, float("nan"), float("nan"), float("nan")
    if choose:
        weights, mu_y = solvers[0].weights(y[train], alphas)
        errors = [float(np.mean(((z[val] - solvers[0].mu) @ w + mu_y - y[val]) ** 2)) for w in weights]
        best = int(np.argmin(errors))
        val_mse, val_mse_zero = errors[best], float(np.mean(y[val] ** 2))
        val_mse_mean = float(np.mean((y[val] - mu_y) ** 2))
    alpha = alphas[best]
    (weight,), mu_y = solvers[1].weights(y, [alpha])
    bias = mu_y - float(solvers[1].mu @ weight)
    return RidgeFit(
        weight, bias, alpha, val_mse, val_mse_zero, val_mse_mean, int(train.sum()), int(val.sum())
    )


def split_by_group(groups: Sequence[str], val_fraction: float, seed: int) -> np.ndarray:
    """Boolean train mask: whole groups (tasks) go to validation until ``val_fraction`` of them do.

    With a single group, rows are split at random instead.

    Example:
        >>> mask = split_by_group(["a", "a", "b", "c", "c"], 0.34, seed=0)
        >>> len(mask), int((~mask).sum()) in (1, 2)
        (5, True)
    """
    groups = list(groups)
    rng = np.random.default_rng(seed)
    unique = sorted(set(groups))
    if len(unique) < 2:
        mask = np.ones(len(groups), dtype=bool)
        n_val = max(1, round(val_fraction * len(groups))) if len(groups) > 1 else 0
        mask[rng.permutation(len(groups))[:n_val]] = False
        return mask
    n_val = min(len(unique) - 1, max(1, round(val_fraction * len(unique))))
    val_groups = set(rng.permutation(np.array(unique, dtype=object))[:n_val].tolist())
    return np.array([g not in val_groups for g in groups], dtype=bool)


def expert_targets(
    labels: np.ndarray, names: Sequence[str], scales: Sequence[float], total_weights: Mapping[str, float]
) -> np.ndarray:
    """Targets (N, n_experts) in expert units; NaN where a label is missing.

    ``labels`` is (N, 5) in DIMENSIONS order with NaN for missing; ``all``/``total`` experts regress the
    weighted total ``sum_k total_weights[k] * label_k`` and need all five labels.

    Example:
        >>> expert_targets(np.array([[1.0, 1.0, 0.0, 1.0, np.nan]]), ["helpfulness", "total"], [3.0, 1.0],
        ...                {"helpfulness": 3, "odds_of_success": 5, "efficiency": 5, "task_relevance": 1,
        ...                 "coherence": 1}).tolist()
        [[3.0, nan]]
    """
    labels = np.asarray(labels, dtype=np.float64)
    weighted = labels * np.asarray([float(total_weights[k]) for k in DIMENSIONS])
    out = np.full((labels.shape[0], len(names)), np.nan)
    for j, name in enumerate(names):
        if name in DIMENSIONS:
            out[:, j] = labels[:, DIMENSIONS.index(name)] * scales[j]
        elif name in ("all", "total"):
            out[:, j] = weighted.sum(axis=1) * scales[j]  # NaN if any label is missing
        else:
            raise ValueError(f"unknown expert name {name!r}")
    return out


STANDARDIZE = ("none", "blocks", "columns")
FITS = ("plain", "advantage")


def centre_by_state(z: np.ndarray, y: np.ndarray, states: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Subtract from every row of ``z`` and ``y`` the mean over the rows of its state (a lone row becomes 0).

    Example:
        >>> zc, yc = centre_by_state(np.array([[1.0], [3.0], [5.0]]), np.array([0.0, 2.0, 7.0]), ["s", "s", "t"])
        >>> zc.ravel().tolist(), yc.tolist()
        ([-1.0, 1.0, 0.0], [-1.0, 1.0, 0.0])
    """
    _, inverse = np.unique(np.asarray(states, dtype=str), return_inverse=True)
    counts = np.bincount(inverse).astype(np.float64)
    z_sums = np.zeros((len(counts), z.shape[1]))
    np.add.at(z_sums, inverse, z)
    y_sums = np.bincount(inverse, weights=y, minlength=len(counts))
    return z - z_sums[inverse] / counts[inverse, None], y - y_sums[inverse] / counts[inverse]


def feature_scales(
    z: np.ndarray, mode: str = "none", blocks: Sequence[tuple[int, int]] | None = None
) -> np.ndarray:
    """Per-column multipliers applied to ``z`` before the ridge fit (the weights are mapped back after).

    ``"none"``: all ones. ``"columns"``: 1 / std of each column. ``"blocks"``: each block (``(start, end)``
    ranges; the other columns form one more) is divided by its RMS column std, so one penalty treats a 384-d
    embedding and a few scalars alike, keeping the geometry inside a block. Constant columns keep scale 1.

    Example:
        >>> z = np.c_[np.random.default_rng(0).normal(size=(50, 2)) * 10, np.random.default_rng(1).normal(size=50)]
        >>> s = feature_scales(z, "blocks", [(0, 2)])
        >>> bool(np.isclose(s[0], s[1])), bool(np.isclose(np.sqrt(((z[:, :2] * s[:2]).std(0) ** 2).mean()), 1.0))
        (True, True)
    """
    if mode not in STANDARDIZE:
        raise ValueError(f"ridge standardize mode must be one of {STANDARDIZE}, got {mode!r}")
    scales = np.ones(z.shape[1])
    if mode == "none" or len(z) < 2:
        return scales
    sd = z.std(axis=0)
    if mode == "columns":
        return np.where(sd > 1e-8, 1.0 / np.where(sd > 1e-8, sd, 1.0), 1.0)
    ranges = [(int(a), int(b)) for a, b in (blocks or [])]
    covered = np.zeros(z.shape[1], dtype=bool)
    for a, b in ranges:
        if not 0 <= a < b <= z.shape[1]:
            raise ValueError(f"feature block ({a}, {b}) is outside the {z.shape[1]} feature columns")
        covered[a:b] = True
    groups = [np.arange(a, b) for a, b in ranges]
    if not covered.all():
        groups.append(np.flatnonzero(~covered))
    for cols in groups:
        rms = float(np.sqrt(np.mean(sd[cols] ** 2)))
        if rms > 1e-8:
            scales[cols] = 1.0 / rms
    return scales


def _solvers(z: np.ndarray, train: np.ndarray) -> tuple[RidgeSolver | None, RidgeSolver]:
    """(training-rows solver or None when alpha cannot be chosen, all-rows solver) for :func:`fit_ridge`."""
    choose = train.sum() >= 2 and (~train).sum() >= 1
    return (RidgeSolver(z[train]) if choose else None), RidgeSolver(z)


def _fit_advantage(
    z: np.ndarray,
    y: np.ndarray,
    za: np.ndarray,
    ya: np.ndarray,
    train: np.ndarray,
    state_cols: np.ndarray,
    action_cols: np.ndarray,
    alphas: Sequence[float],
    action_solvers: tuple[RidgeSolver | None, RidgeSolver],
    state_solvers: tuple[RidgeSolver | None, RidgeSolver],
) -> RidgeFit:
    """One expert as state value + action advantage (module docstring); the fit's weight spans all of ``z``.

    ``za``/``ya``: the action columns and the target centred by state. Each part's alpha is chosen with both
    parts fit on the training rows only (the validation error is the whole expert's); then both are refit.
    """
    advantage = fit_ridge(za, ya, train, alphas, action_solvers)
    w_train = advantage.weight
    if action_solvers[0] is not None:
        (w_train,), _ = action_solvers[0].weights(ya[train], [advantage.alpha])
    choice = fit_ridge(z[:, state_cols], y - z[:, action_cols] @ w_train, train, alphas, state_solvers)
    (w_state,), mu_y = state_solvers[1].weights(y - z[:, action_cols] @ advantage.weight, [choice.alpha])
    weight = np.zeros(z.shape[1])
    weight[state_cols] = w_state
    weight[action_cols] = advantage.weight
    zero = mean = float("nan")
    if np.isfinite(choice.val_mse):  # baselines on the target itself, not on the residual
        zero, mean = float(np.mean(y[~train] ** 2)), float(np.mean((y[~train] - y[train].mean()) ** 2))
    bias = mu_y - float(state_solvers[1].mu @ w_state)
    return replace(
        choice, weight=weight, bias=bias, val_mse_zero=zero, val_mse_mean=mean, alpha_action=advantage.alpha
    )


def fit_experts(
    z: np.ndarray,
    targets: np.ndarray,
    names: Sequence[str],
    groups: Sequence[str],
    alphas: Sequence[float],
    val_fraction: float = 0.2,
    seed: int = 0,
    standardize: str = "none",
    blocks: Sequence[tuple[int, int]] | None = None,
    fit: str = "plain",
    states: Sequence[str] | None = None,
    state_columns: Sequence[int] | None = None,
    action_columns: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, RidgeFit]]:
    """Fit every expert column of ``targets``; returns weight (n, d), bias (n,) and the fits by name.

    ``standardize``/``blocks``: see :func:`feature_scales` (the weights returned apply to raw features).
    ``fit="advantage"`` needs ``states`` (one per row), ``state_columns`` and ``action_columns``. An expert
    with fewer than 2 labelled rows keeps zero weights (with a warning).
    """
    if fit not in FITS:
        raise ValueError(f"ridge fit must be one of {FITS}, got {fit!r}")
    z = np.asarray(z, dtype=np.float64)
    d = z.shape[1]
    if fit == "advantage":
        if states is None or len(states) != len(z):
            raise ValueError("the advantage ridge fit needs one state key per row (states)")
        state_cols = np.asarray(state_columns if state_columns is not None else [], dtype=np.int64)
        action_cols = np.asarray(action_columns if action_columns is not None else [], dtype=np.int64)
        for label, cols in (("state", state_cols), ("action", action_cols)):
            if cols.size == 0 or cols.min() < 0 or cols.max() >= d or len(np.unique(cols)) != cols.size:
                raise ValueError(
                    f"{label} columns must be distinct indices of the {d} feature columns, got {cols.tolist()[:8]}"
                )
        if np.intersect1d(state_cols, action_cols).size:
            raise ValueError("state and action columns overlap; a column belongs to one part or neither")
        state_keys = np.asarray(states, dtype=str)
    scales = feature_scales(z, standardize, blocks)
    z = z * scales
    train = split_by_group(groups, val_fraction, seed)
    weight, bias = np.zeros((len(names), d)), np.zeros(len(names))
    fits: dict[str, RidgeFit] = {}
    solvers: dict[bytes, Any] = {}  # experts labelled on the same rows share their decompositions
    for j, name in enumerate(names):
        rows = np.isfinite(targets[:, j])
        if rows.sum() < 2:
            logger.warning("expert %r has %d labelled rows; it keeps zero weights", name, int(rows.sum()))
            continue
        key = np.packbits(rows).tobytes()
        zr, yr, tr = z[rows], targets[rows, j], train[rows]
        if fit == "plain":
            if key not in solvers:
                solvers[key] = _solvers(zr, tr)
            result = fit_ridge(zr, yr, tr, alphas, solvers[key])
        else:
            za, ya = centre_by_state(zr[:, action_cols], yr, state_keys[rows])
            if key not in solvers:
                solvers[key] = _solvers(za, tr), _solvers(zr[:, state_cols], tr)
            result = _fit_advantage(zr, yr, za, ya, tr, state_cols, action_cols, alphas, *solvers[key])
        weight[j], bias[j] = result.weight, result.bias
        fits[name] = result
        logger.info(
            "ridge %s: alpha=%g%s val_mse=%.4f (zero %.4f, mean %.4f) n=%d/%d",
            name,
            result.alpha,
            "" if result.alpha_action is None else f" (action part {result.alpha_action:g})",
            result.val_mse,
            result.val_mse_zero,
            result.val_mse_mean,
            result.n_train,
            result.n_val,
        )
    for result in fits.values():
        result.weight = result.weight * scales  # bias = mean(y) - mean(z * scales) @ w is unchanged
    return weight * scales, bias, fits


def advantage_columns(model, action_blocks: Sequence[str] | None = None) -> tuple[list[int], list[int]]:
    """The (state, action) columns of ``z`` for ``ridge_fit: advantage``: the backbone's declared ones, or, with
    ``action_blocks``, the columns of those named blocks of z (``backbone.z_block_names``) as the action part.

    Raises:
        ValueError: the backbone does not declare them, a block name is unknown, or a block is a state block.
    """
    backbone = getattr(model, "backbone", None)
    state, action = getattr(backbone, "state_columns", None), getattr(backbone, "action_columns", None)
    kind = getattr(backbone, "kind", type(backbone).__name__)
    if state is None or action is None or len(state) == 0 or len(action) == 0:
        raise ValueError(
            f"ridge_fit 'advantage' needs a backbone that says which columns of z describe the state and which "
            f"the action; backbone {kind!r} does not (its z mixes both). Use ridge_fit: plain"
        )
    if action_blocks is None:
        return list(state), list(action)
    names = list(getattr(backbone, "z_block_names", None) or [])
    unknown = [b for b in action_blocks if b not in names]
    if unknown:
        raise ValueError(
            f"ridge_action_blocks {unknown} are not blocks of backbone {kind!r}; its blocks: {names}"
        )
    action = sorted(set(backbone.block_columns(action_blocks)))
    in_state = [b for b in action_blocks if set(backbone.block_columns([b])) & set(state)]
    if in_state:
        raise ValueError(
            f"ridge_action_blocks {in_state} describe the state alone and cannot be action blocks"
        )
    return list(state), action


def run_stage1(
    model, z, labels: np.ndarray, groups: Sequence[str], config, states: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """Fit the model's experts on features ``z`` (N, z_dim) and step ``labels`` (N, 5); write them into
    ``model.experts``. ``states`` (a state key per row) is needed by ``config.ridge_fit == "advantage"``.
    Returns per-expert metrics (alpha, validation MSE and its zero/mean baselines)."""
    import torch

    names = list(model.config.expert_names)
    targets = expert_targets(labels, names, model.config.target_scales(), model.config.total_weights)
    if isinstance(z, torch.Tensor):
        z = z.detach().cpu().double().numpy()
    fit = getattr(config, "ridge_fit", "plain")
    state_columns = action_columns = None
    if fit == "advantage":
        state_columns, action_columns = advantage_columns(model, getattr(config, "ridge_action_blocks", None))
    weight, bias, fits = fit_experts(
        z,
        targets,
        names,
        groups,
        config.ridge_alphas,
        config.val_fraction,
        config.seed,
        standardize=getattr(config, "ridge_standardize", "none"),
        blocks=getattr(getattr(model, "backbone", None), "z_blocks", None),
        fit=fit,
        states=states,
        state_columns=state_columns,
        action_columns=action_columns,
    )
    model.experts.set_weights(
        torch.as_tensor(weight, dtype=torch.float32), torch.as_tensor(bias, dtype=torch.float32)
    )
    keys = ("alpha", "alpha_action", "val_mse", "val_mse_zero", "val_mse_mean", "val_r2", "n_train", "n_val")
    return {name: {k: getattr(f, k) for k in keys if getattr(f, k) is not None} for name, f in fits.items()}
