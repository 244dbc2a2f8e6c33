"""Stand-in for the ``english_words`` package on the GPU machine, where nothing can be installed.

It answers with the project's final dictionary (saved by prepare.py from the real package), for
any source, so the intersection that ``wordocr.words`` takes is that same list.
"""

import gzip
import os
from pathlib import Path

_FILE = Path(os.environ.get("WORDOCR_WORDS_FILE", ".gpu/words.txt.gz"))
_WORDS = frozenset(gzip.decompress(_FILE.read_bytes()).decode().split("\n"))


def get_english_words_set(sources, lower=False, alpha=False) -> set[str]:
    return set(_WORDS)
