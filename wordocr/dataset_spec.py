"""What a generated dataset is: one frozen value that the generator, its pipeline components and
the tools pass around instead of seven loose arguments.

A dataset's bytes are a pure function of its ``DatasetSpec`` (and the generator's version): the
same spec gives the same shards however many workers or pipeline tasks make them.
"""

from __future__ import annotations

from dataclasses import dataclass

from wordocr.config import DEFAULT_INPUT_SPEC, LOWER_CASE, WRITTEN, InputSpec
from wordocr.degrade import TIERS
from wordocr.fonts import FONT_SETS
from wordocr.words import SPLITS

# What text a dataset shows: ``lower``, lower-case dictionary words (every dataset made before
# the others existed); ``written``, words as people write them (``wordocr.written``: Title case,
# capitals, digits, apostrophes); ``title`` and ``upper``, every word in that one case (test cells).
TEXTS = ("lower", "written", "title", "upper")
TEXT_DESCRIPTIONS = {
    "lower": "lower-case words",
    "written": "words as written: capitals, digits, apostrophes",
    "title": "words in Title case",
    "upper": "words in capitals",
}


@dataclass(frozen=True)
class DatasetSpec:
    """``num_samples`` images of the ``split``'s words, drawn from ``seed``, in the faces of
    ``font_set`` with the degradations of ``tier``, stored in ``num_shards`` shards as
    ``input_spec`` model inputs. Refused on construction when a name is unknown or a count
    impossible."""

    split: str
    num_samples: int
    seed: int
    tier: str = "train"
    font_set: str = "train"
    num_shards: int = 4
    input_spec: InputSpec = DEFAULT_INPUT_SPEC
    text: str = "lower"

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; expected one of {SPLITS}")
        if self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}; expected one of {TIERS}")
        if self.font_set not in FONT_SETS:
            raise ValueError(f"unknown font set {self.font_set!r}; expected one of {FONT_SETS}")
        if self.text not in TEXTS:
            raise ValueError(f"unknown text {self.text!r}; expected one of {TEXTS}")
        if self.num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {self.num_shards}")
        if self.num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {self.num_samples}")

    @property
    def alphabet(self) -> str:
        """The characters the dataset's labels are written in (the model trained on it reads them)."""
        return LOWER_CASE if self.text == "lower" else WRITTEN

    def shard_sizes(self) -> list[int]:
        """How many samples each shard holds (the first shards take the remainder)."""
        base, extra = divmod(self.num_samples, self.num_shards)
        return [base + (i < extra) for i in range(self.num_shards)]

    def shard_size(self, shard_index: int) -> int:
        """How many samples shard ``shard_index`` holds; ValueError for a shard the dataset lacks."""
        if not 0 <= shard_index < self.num_shards:
            raise ValueError(f"shard {shard_index} of {self.num_shards} does not exist")
        return self.shard_sizes()[shard_index]
