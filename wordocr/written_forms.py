"""What a reading may be, given how people write words: a prior over the beam's candidates.

A model that reads capitals and digits can also read forms nobody writes: "mY", "scooP", "s0y".
People write a word in one case (lower, Title or CAPITALS) with digits, if any, before or after its
letters (``wordocr.written``). ``settle`` weighs the beam's candidates by that: a candidate in an
unwritten form keeps ``UNWRITTEN_FORM_WEIGHT`` of its probability, and the beam's probability is
shared out again, so "mr" behind "mY" and "mI" in the beam becomes the reading. Where every
candidate is in an unwritten form the order and probabilities stay as they were.

A lone letter whose capital is the same shape, only larger (c o s v w x z), has no case in the
image: once cropped and scaled to the model's height, "c" and "C" are the same picture. Such a
reading is given in lower case, the case most words are in, and its probability (both cases
together) is split by that share: about 0.6 of it, a confidence that says the case is a guess.
"""

from __future__ import annotations

from wordocr.written import CASE_SHARES

# Letters whose lower case is a smaller copy of the capital.
CASE_TWINS = frozenset("cosvwxz")
# How much of its probability a candidate in a form nobody writes keeps.
UNWRITTEN_FORM_WEIGHT = 0.05
# The share of lone letters set in lower case (a lone letter in Title case is a capital).
LONE_LETTER_LOWER_SHARE = CASE_SHARES[0]


def is_written_form(word: str) -> bool:
    """Letters in one case (lower, Title or all capitals), digits only before or after them."""
    letters = [c for c in word if c.isalpha()]
    if len(letters) > 1:
        rest = "".join(letters[1:])
        if not (rest.islower() or (letters[0].isupper() and rest.isupper())):
            return False
    first_letter = next((i for i, c in enumerate(word) if c.isalpha()), len(word))
    last_letter = max((i for i, c in enumerate(word) if c.isalpha()), default=-1)
    return not any(c.isdigit() for c in word[first_letter + 1 : last_letter])


def _lone_twins(candidates: list[tuple[str, float]]) -> list[tuple[str, float]]:
    merged: dict[str, float] = {}
    for word, probability in candidates:
        if len(word) == 1 and word.lower() in CASE_TWINS:
            merged[word.lower()] = merged.get(word.lower(), 0.0) + probability
    if not merged:
        return candidates
    out = [(w, p) for w, p in candidates if w.lower() not in merged or len(w) != 1]
    for letter, probability in merged.items():
        lower = probability * LONE_LETTER_LOWER_SHARE
        out += [(letter, lower), (letter.upper(), probability - lower)]
    return out


def settle(candidates: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """The beam's ``(word, probability)`` candidates of one image, weighed by the written-form
    prior and sorted again, best first (see the module notes); the probabilities keep their sum."""
    candidates = _lone_twins(candidates)
    weights = [1.0 if is_written_form(w) else UNWRITTEN_FORM_WEIGHT for w, _ in candidates]
    weighted = [p * weight for (_, p), weight in zip(candidates, weights, strict=True)]
    total, kept = sum(p for _, p in candidates), sum(weighted)
    if kept > 0 and min(weights) < max(weights):
        candidates = [(w, p * total / kept) for (w, _), p in zip(candidates, weighted, strict=True)]
    return sorted(candidates, key=lambda item: -item[1])
