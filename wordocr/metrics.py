"""How well a model reads: whole words right, and characters right (plain Python)."""

from __future__ import annotations

from collections.abc import Sequence


def _check_lengths(preds: Sequence[str], truths: Sequence[str]) -> None:
    if len(preds) != len(truths):
        raise ValueError(f"{len(preds)} predictions for {len(truths)} truths")


def word_accuracy(preds: Sequence[str], truths: Sequence[str]) -> float:
    """Fraction of words read exactly; 0.0 for no words."""
    _check_lengths(preds, truths)
    if not truths:
        return 0.0
    return sum(p == t for p, t in zip(preds, truths, strict=True)) / len(truths)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions that turn ``a`` into ``b``."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(preds: Sequence[str], truths: Sequence[str]) -> float:
    """Total edit distance over total truth characters (can exceed 1 when predictions are long)."""
    _check_lengths(preds, truths)
    edits = sum(edit_distance(p, t) for p, t in zip(preds, truths, strict=True))
    chars = sum(len(t) for t in truths)
    if chars == 0:
        return 0.0 if edits == 0 else float(edits)
    return edits / chars
