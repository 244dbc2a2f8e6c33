"""The few numbers the whole system agrees on: the model's input geometry and the alphabet.

Every other module reads them from here (or from a model artifact's spec, which is written
from here), so a change of input size is one edit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

ALPHABET = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class InputSpec:
    """Geometry of the images the model reads.

    Images are gray, ``height`` x ``width``, uint8 with dark ink on a light background
    (the preprocessing normalises polarity). The CRNN downsamples the width by
    ``width_downsample`` so it emits ``width // width_downsample`` CTC time steps; CTC needs
    at least ``2 * max_word_length + 1`` of them to spell doubled letters.
    """

    height: int = 32
    width: int = 192
    width_downsample: int = 4
    max_word_length: int = 16

    @property
    def time_steps(self) -> int:
        return self.width // self.width_downsample

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        fields = {f for f in cls.__dataclass_fields__}
        return cls(**{k: int(v) for k, v in data.items() if k in fields})


DEFAULT_INPUT_SPEC = InputSpec()
