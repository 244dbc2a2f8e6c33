"""Confidence that means something: of readings with confidence about p, about p are right.

A reading's raw confidence is the share of the beam's probability its word holds (``wordocr.decode``):
a CTC model trained to be sure of its training faces is surer than it is right in faces and
degradations it never saw. A ``Calibration`` maps raw confidence to the probability of being right
with Platt scaling on the log-odds, ``p' = sigmoid(slope * logit(p) + offset)``: two numbers,
monotone (readings keep their order, a top-3 list stays sorted), fitted at the end of training on
the validation images (``fit``) and kept in the artifact's spec.json. An artifact without one
reads with its raw confidences, as every artifact before calibration did.

``reliability`` is the check: readings binned by confidence, each bin's mean confidence beside its
accuracy, and the expected calibration error (ECE), their gap weighted by the bins' counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

BINS = 10
# Raw confidences are clipped this far from 0 and 1 before their log-odds are taken: a beam's
# share can be exactly 1.0.
EPSILON = 1e-6


@dataclass(frozen=True)
class Calibration:
    slope: float = 1.0
    offset: float = 0.0
    fitted_on: int = 0  # readings the fit saw

    def apply(self, confidences: np.ndarray | list[float] | float) -> np.ndarray:
        return _sigmoid(self.slope * _logit(np.asarray(confidences, np.float64)) + self.offset)

    def invert(self, calibrated: float) -> float:
        """The raw confidence that ``apply`` maps to ``calibrated`` (0 and 1 map to themselves)."""
        if calibrated <= 0.0 or calibrated >= 1.0 or self.slope <= 0.0:
            return float(min(max(calibrated, 0.0), 1.0))
        return float(_sigmoid((_logit(np.float64(calibrated)) - self.offset) / self.slope))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> Calibration | None:
        if not data:
            return None
        return cls(float(data["slope"]), float(data["offset"]), int(data.get("fitted_on", 0)))


def fit(confidences: np.ndarray | list[float], correct: np.ndarray | list[bool], iterations: int = 50) -> Calibration:
    """The slope and offset that minimise the log loss of ``correct`` given ``confidences``
    (Newton's method on the two parameters with step halving; a small ridge towards the identity
    keeps them finite when every reading is right)."""
    x = _logit(np.asarray(confidences, np.float64))
    y = np.asarray(correct, np.float64)
    if x.shape != y.shape or x.ndim != 1 or not len(x):
        raise ValueError(f"need as many confidences as outcomes, at least one; got {x.shape} and {y.shape}")
    features = np.stack([x, np.ones_like(x)], axis=1)
    prior = np.array([1.0, 0.0])
    ridge = 1e-3 * len(x) ** 0.5

    def loss(params: np.ndarray) -> float:
        z = features @ params
        # log(1 + e^z) - y z, computed without overflow
        return float((np.logaddexp(0, z) - y * z).sum() + ridge / 2 * ((params - prior) ** 2).sum())

    params, current = prior.copy(), loss(prior)
    for _ in range(iterations):
        p = _sigmoid(features @ params)
        gradient = features.T @ (p - y) + ridge * (params - prior)
        hessian = (features * (p * (1 - p))[:, None]).T @ features + ridge * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-4 and loss(params - scale * step) > current:  # Newton may overshoot: halve it
            scale /= 2
        params = params - scale * step
        previous, current = current, loss(params)
        if previous - current < 1e-10 * max(1.0, abs(current)):
            break
    return Calibration(float(params[0]), float(params[1]), len(x))


def reliability(confidences: np.ndarray | list[float], correct: np.ndarray | list[bool], bins: int = BINS) -> dict:
    """``{"ece", "count", "bins": [{"low", "high", "count", "mean_confidence", "accuracy"}]}`` over
    ``bins`` equal-width bins of confidence (empty bins left out)."""
    p = np.asarray(confidences, np.float64)
    y = np.asarray(correct, np.float64)
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows, gap = [], 0.0
    for b in range(bins):
        mask = index == b
        if not mask.any():
            continue
        mean_p, accuracy = float(p[mask].mean()), float(y[mask].mean())
        gap += mask.sum() * abs(accuracy - mean_p)
        rows.append({"low": b / bins, "high": (b + 1) / bins, "count": int(mask.sum()),
                     "mean_confidence": round(mean_p, 4), "accuracy": round(accuracy, 4)})  # fmt: skip
    return {"ece": round(gap / max(len(p), 1), 4), "count": len(p), "bins": rows}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPSILON, 1 - EPSILON)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -z))
