"""Characters the model can read and their CTC class indices.

Convention (stored in every model artifact, checked by tests on hand-made logits): character
``i`` of the alphabet is class ``i`` and the CTC blank is the *last* class, ``len(alphabet)``.
That is the convention of ``tf.nn.ctc_beam_search_decoder`` and of the old Keras
``image_ocr.py`` example; Keras 3's ``ctc_loss``/``ctc_decode`` are called with
``mask_index=blank_index`` to match.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wordocr.config import ALPHABET


class InvalidWordError(ValueError):
    """A word the model cannot be asked to spell (empty, too long, or foreign characters)."""


@dataclass(frozen=True)
class Alphabet:
    chars: str = ALPHABET

    @property
    def blank_index(self) -> int:
        return len(self.chars)

    @property
    def num_classes(self) -> int:
        """Characters plus the CTC blank."""
        return len(self.chars) + 1

    @property
    def has_capitals(self) -> bool:
        return any(c.isupper() for c in self.chars)

    def encode(self, word: str) -> list[int]:
        lookup = {c: i for i, c in enumerate(self.chars)}
        return [lookup[c] for c in word]

    def decode(self, indices: Iterable[int]) -> str:
        """Indices to text, skipping blanks and anything out of range (padding)."""
        return "".join(self.chars[i] for i in indices if 0 <= i < len(self.chars))

    def validate(self, word: str, max_length: int) -> str:
        """Return ``word`` if the model can spell it, else raise with a message a client can act on."""
        if not isinstance(word, str):
            raise InvalidWordError(f"word must be a string, got {type(word).__name__}")
        if not word:
            raise InvalidWordError("word is empty")
        if len(word) > max_length:
            raise InvalidWordError(
                f"word is {len(word)} characters long; the model reads at most {max_length}"
            )
        foreign = sorted({c for c in word if c not in self.chars})
        if foreign:
            raise InvalidWordError(
                f"word contains characters outside the alphabet ({self.describe()}): {''.join(foreign)!r}"
            )
        return word

    def describe(self) -> str:
        """The characters as a person reads a list of them: runs as ranges, "a-z, A-Z, 0-9, '"."""
        runs: list[list[str]] = []
        for char in self.chars:
            if runs and ord(char) == ord(runs[-1][-1]) + 1:
                runs[-1].append(char)
            else:
                runs.append([char])
        return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 2 else "".join(run) for run in runs)

    def is_valid(self, word: str, max_length: int) -> bool:
        try:
            self.validate(word, max_length)
        except InvalidWordError:
            return False
        return True

    def to_list(self) -> Sequence[str]:
        return list(self.chars)


DEFAULT_ALPHABET = Alphabet()
