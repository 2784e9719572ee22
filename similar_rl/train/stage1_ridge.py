"""Stage 1 of Triple-M (L_RG): ridge regression experts on frozen features, in closed form.

For each expert (a dimension, the optional ``all`` expert on ``total``, or the single ``total`` head of a
single-objective model) the rows with a label are used (missing labels are skipped per expert). The target is
the label times its scale (5*OS, 5*E, 3*H, TR, C; ``total`` unscaled). The penalty ``alpha`` is picked from a
grid by validation MSE on held-out tasks, then the expert is refit on all rows with it. Features are centred,
so the bias is not penalised.

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
from dataclasses import dataclass

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
        n, d = self.zc.shape
        self.dual = n < d
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

    Args:
        z: features (N, d).
        y: targets (N,), all finite.
        train: boolean mask (N,) of the rows used to fit while choosing alpha; the rest validates.
        alphas: penalties to try.
        solvers: precomputed (training-rows solver, all-rows solver) for these rows, shared between experts.
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
        solvers = (RidgeSolver(z[train]) if choose else None, RidgeSolver(z))  # type: ignore[assignment]
    if choose:
        solver = solvers[0]
        weights, mu_y = solver.weights(y[train], alphas)
        errors = [float(np.mean(((z[val] - solver.mu) @ w + mu_y - y[val]) ** 2)) for w in weights]
        best = int(np.argmin(errors))
        val_mse = errors[best]
        val_mse_zero = float(np.mean(y[val] ** 2))
        val_mse_mean = float(np.mean((y[val] - mu_y) ** 2))
    else:
        best, val_mse, val_mse_zero, val_mse_mean = 0, float("nan"), float("nan"), float("nan")
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


def feature_scales(
    z: np.ndarray, mode: str = "none", blocks: Sequence[tuple[int, int]] | None = None
) -> np.ndarray:
    """Per-column multipliers applied to ``z`` before the ridge fit (the weights are mapped back after).

    ``"none"``: all ones (the paper's plain ridge). ``"columns"``: 1 / std of each column. ``"blocks"``: every
    feature block (``blocks`` as ``(start, end)`` column ranges; columns outside them form one more block) is
    divided by its root-mean-square column std, so each block's columns have unit variance on average while the
    geometry inside a block is kept. One penalty then treats a 384-d embedding block and a handful of scalar
    features alike, instead of shrinking whichever block happens to have small raw values. Constant columns
    keep scale 1.

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
) -> tuple[np.ndarray, np.ndarray, dict[str, RidgeFit]]:
    """Fit every expert column of ``targets``; returns weight (n, d), bias (n,) and the fits by name.

    ``standardize``/``blocks`` rescale the features before fitting (see :func:`feature_scales`); the returned
    weights apply to the raw features. An expert with fewer than 2 labelled rows keeps zero weights (logged as
    a warning).
    """
    z = np.asarray(z, dtype=np.float64)
    scales = feature_scales(z, standardize, blocks)
    z = z * scales
    train = split_by_group(groups, val_fraction, seed)
    weight = np.zeros((len(names), z.shape[1]))
    bias = np.zeros(len(names))
    fits: dict[str, RidgeFit] = {}
    solvers: dict[bytes, tuple[RidgeSolver | None, RidgeSolver]] = {}
    for j, name in enumerate(names):
        rows = np.isfinite(targets[:, j])
        if rows.sum() < 2:
            logger.warning("expert %r has %d labelled rows; it keeps zero weights", name, int(rows.sum()))
            continue
        key = np.packbits(rows).tobytes()
        if key not in solvers:  # experts labelled on the same rows share one decomposition
            zr, tr = z[rows], train[rows]
            solvers[key] = (
                RidgeSolver(zr[tr]) if tr.sum() >= 2 and (~tr).sum() >= 1 else None,
                RidgeSolver(zr),
            )
        fit = fit_ridge(z[rows], targets[rows, j], train[rows], alphas, solvers[key])
        weight[j], bias[j] = fit.weight, fit.bias
        fits[name] = fit
        logger.info(
            "ridge %s: alpha=%g val_mse=%.4f (zero %.4f, mean %.4f) n=%d/%d",
            name,
            fit.alpha,
            fit.val_mse,
            fit.val_mse_zero,
            fit.val_mse_mean,
            fit.n_train,
            fit.n_val,
        )
    for fit in fits.values():
        fit.weight = fit.weight * scales  # bias = mean(y) - mean(z * scales) @ w is unchanged
    return weight * scales, bias, fits


def run_stage1(model, z, labels: np.ndarray, groups: Sequence[str], config) -> dict[str, dict[str, float]]:
    """Fit the model's experts on features ``z`` (N, z_dim) and step ``labels`` (N, 5); write them into
    ``model.experts``. Returns per-expert metrics (alpha, validation MSE and its zero/mean baselines)."""
    import torch

    names = list(model.config.expert_names)
    scales = list(model.config.target_scales())
    targets = expert_targets(labels, names, scales, model.config.total_weights)
    z_np = (
        z.detach().cpu().double().numpy() if isinstance(z, torch.Tensor) else np.asarray(z, dtype=np.float64)
    )
    standardize = getattr(config, "ridge_standardize", "none")
    blocks = getattr(getattr(model, "backbone", None), "z_blocks", None)
    weight, bias, fits = fit_experts(
        z_np,
        targets,
        names,
        groups,
        config.ridge_alphas,
        config.val_fraction,
        config.seed,
        standardize=standardize,
        blocks=blocks,
    )
    model.experts.set_weights(
        torch.as_tensor(weight, dtype=torch.float32), torch.as_tensor(bias, dtype=torch.float32)
    )
    return {
        name: {
            "alpha": f.alpha,
            "val_mse": f.val_mse,
            "val_mse_zero": f.val_mse_zero,
            "val_mse_mean": f.val_mse_mean,
            "val_r2": f.val_r2,
            "n_train": f.n_train,
            "n_val": f.n_val,
        }
        for name, f in fits.items()
    }
