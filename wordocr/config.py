"""The few numbers the whole system agrees on: the model's input geometry, its width and the alphabet.

Every other module reads them from here (or from a model artifact's spec, which is written
from here), so a change of input size is one edit. Plain values only: this module imports
neither Keras nor TensorFlow, so recipes, pipelines and the predictor can read it cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

LOWER_CASE = "abcdefghijklmnopqrstuvwxyz"
# Words as people write them: capitals, digits and the apostrophe, after the lower-case letters so
# that each lower-case letter keeps the class index it has in a lower-case model.
WRITTEN = LOWER_CASE + LOWER_CASE.upper() + "0123456789'"
# The lower-case alphabet, every artifact's before the written one (an artifact names its own).
ALPHABET = LOWER_CASE


@dataclass(frozen=True)
class InputSpec:
    """Geometry of the images the model reads.

    Images are gray, ``height`` x ``width``, uint8 with dark ink on a light background
    (the preprocessing normalises polarity). The CRNN downsamples the width by
    ``width_downsample`` and emits ``frames_per_step`` CTC frames for each remaining column:
    ``width // width_downsample * frames_per_step`` time steps. CTC needs at least
    ``2 * max_word_length + 1`` of them to spell doubled letters, and a doubled thin letter needs
    three (letter, blank, letter) within the few columns it spans: two frames a column give it
    those without running the convolutions and LSTMs on twice the columns (1: what every
    artifact without the field was trained with).

    ``max_widen``: a word narrower than the input is widened, up to this factor, towards filling
    it, so narrow letters (condensed faces, i, l, t, doubled letters) span more time steps; 1
    keeps the word's aspect ratio (what every artifact without the field was trained on).
    """

    height: int = 32
    width: int = 192
    width_downsample: int = 4
    max_word_length: int = 16
    max_widen: float = 1.0
    frames_per_step: int = 1

    @property
    def columns(self) -> int:
        """Feature columns the convolutions leave, each read by the LSTMs as one step."""
        return self.width // self.width_downsample

    @property
    def time_steps(self) -> int:
        return self.columns * self.frames_per_step

    def check_time_steps(self) -> None:
        """ValueError unless ``width_downsample`` is a power of two dividing the width and leaves the
        ``2 * max_word_length + 1`` time steps CTC needs to spell the longest word."""
        factor = self.width_downsample
        if factor < 1 or factor & (factor - 1) or self.width % factor:
            raise ValueError(f"width_downsample must be a power of two dividing the width {self.width}, got {factor}")
        needed = 2 * self.max_word_length + 1
        if self.time_steps < needed:
            raise ValueError(
                f"width_downsample {factor} leaves {self.time_steps} time steps for a {self.width}-pixel input; "
                f"CTC needs {needed} to spell a {self.max_word_length}-letter word"
            )

    def same_images(self, other: InputSpec) -> bool:
        """Whether images made for ``other`` are images made for this spec: everything but
        ``width_downsample``, which says how a network reads the images, not what they are."""
        return asdict(self) | {"width_downsample": 0} == asdict(other) | {"width_downsample": 0}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        fields = cls.__dataclass_fields__
        return cls(**{k: float(v) if k == "max_widen" else int(v) for k, v in data.items() if k in fields})


DEFAULT_INPUT_SPEC = InputSpec()


@dataclass(frozen=True)
class ModelSize:
    """How wide the network is. The default is about 1.3 M parameters (CPU friendly)."""

    conv_filters: tuple[int, ...] = (32, 64, 128, 128, 256)
    lstm_units: int = 128
    dropout: float = 0.25
    # Depthwise-separable convolutions (a 3x3 per channel, then a 1x1 across channels) in every
    # block but the first, which sees one channel and would save nothing: about an eighth of the
    # multiplications of a full 3x3, the most of a CRNN's inference time on a CPU.
    separable_convs: bool = False

    @property
    def filters_text(self) -> str:
        """``conv_filters`` as the CLIs and the pipeline take them: ``"32,64,128,128,256"``."""
        return ",".join(str(f) for f in self.conv_filters)

    @staticmethod
    def parse_filters(text: str) -> tuple[int, ...]:
        """``"32,64"`` -> ``(32, 64)``; ValueError for anything but positive integers."""
        filters = tuple(int(f) for f in text.split(","))
        if not filters or min(filters) < 1:
            raise ValueError(f"conv filters must be positive integers separated by commas, got {text!r}")
        return filters

    def to_dict(self) -> dict:
        return {
            "conv_filters": list(self.conv_filters),
            "lstm_units": self.lstm_units,
            "dropout": self.dropout,
            "separable_convs": self.separable_convs,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelSize:
        # Artifacts written before separable convolutions existed have full ones.
        return cls(
            tuple(int(f) for f in data["conv_filters"]),
            int(data["lstm_units"]),
            float(data["dropout"]),
            bool(data.get("separable_convs", False)),
        )
