"""Font faces for rendering: which families train the model and which are held out to test it.

Fonts come only from the installed ``fontpkg_<family>`` pip packages (Google Fonts, OFL), found
through importlib, never from the machine's font folders, so every machine and image renders
the same faces. A face is a font file plus, for variable fonts, a weight instance; italic and
bold come from the families' own files. Held-out families are never used for training: they
measure how well the model reads fonts it never saw, which is what the product needs.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from PIL import ImageFont

from wordocr.config import LOWER_CASE, WRITTEN

log = logging.getLogger(__name__)

# The last four are geometric sans whose u closes round like a U, with no stem down to the
# baseline: without one such face the model read that u as v or y in unseen fonts.
TRAIN_FAMILIES = (
    "roboto", "open-sans", "lato", "noto-sans", "noto-serif", "pt-serif", "merriweather", "lora",
    "roboto-slab", "arvo", "source-code-pro", "ibm-plex-mono", "fira-sans", "oswald",
    "barlow-condensed", "montserrat", "raleway", "libre-baskerville", "eb-garamond", "crimson-text",
    "inconsolata", "nunito", "work-sans", "bitter", "space-mono", "playfair-display", "josefin-sans",
    "archivo-narrow", "cabin", "exo-2", "karla", "zilla-slab", "dm-sans", "ibm-plex-serif", "kalam",
    "quicksand", "outfit", "dosis", "maven-pro",
)  # fmt: skip
# Held out to test: never trained on, never used to choose a model. Condensed and monospaced
# faces are the hardest to read (narrow letters, few pixels each), so the set has two of each
# beyond the ordinary faces.
HELDOUT_FAMILIES = (
    "arimo", "inter", "pt-sans", "jost", "source-serif-4", "literata", "vollkorn", "jetbrains-mono",
    "sanchez", "pt-sans-narrow", "saira-condensed", "dm-mono", "geist-mono",
)  # fmt: skip
# Held out to choose: experiments compare training changes on these faces (condensed and
# monospaced ones among them), so the held-out test faces stay unseen by every choice made.
VALIDATION_FAMILIES = (
    "encode-sans", "overpass", "roboto-condensed", "ibm-plex-sans-condensed", "fira-code", "roboto-mono",
)  # fmt: skip
CONDENSED_FAMILIES = frozenset({
    "barlow-condensed", "archivo-narrow", "oswald", "pt-sans-narrow", "saira-condensed", "roboto-condensed",
    "ibm-plex-sans-condensed",
})  # fmt: skip
MONOSPACED_FAMILIES = frozenset({
    "source-code-pro", "ibm-plex-mono", "inconsolata", "space-mono", "jetbrains-mono", "dm-mono", "geist-mono",
    "fira-code", "roboto-mono",
})  # fmt: skip
FONT_SETS = ("train", "heldout", "validation", "all")

# Weight instances taken from each variable font (clamped to the font's range): light to
# heavy strokes, without the hairline extremes that vanish at small sizes.
VARIABLE_WEIGHTS = (300, 400, 600, 800)
# The same rule for static fonts: files of these weights are skipped. Their one-pixel stems fade
# out when the word is scaled to the model's 32 px (a p without its stem, sadden read as sadder),
# so their images would carry labels they do not show.
HAIRLINE_STYLE = re.compile(r"(thin|hairline|extralight|ultralight)", re.IGNORECASE)
# Pillow names variable axes by their English name; faces record them by OpenType tag.
_AXIS_TAGS = {"weight": "wght", "width": "wdth", "optical size": "opsz", "slant": "slnt", "italic": "ital"}
_FONT_CACHE_SIZE = 256  # a loaded face at one size holds about 250 KB
_COVERAGE_SIZE = 24


@dataclass(frozen=True)
class FontFace:
    """One renderable face: a font file and, for variable fonts, axis settings such as weight."""

    family: str  # the fontpkg family slug, e.g. "roboto"
    path: str  # absolute path of the .ttf inside the installed package
    axes: tuple[tuple[str, float], ...] = ()  # e.g. (("wght", 700.0),); empty for static fonts

    @property
    def name(self) -> str:
        """Portable id (no machine path), recorded with every sample; see ``face_by_name``."""
        settings = ",".join(f"{tag}={value:g}" for tag, value in self.axes)
        return f"{self.family}/{Path(self.path).name}" + (f"@{settings}" if settings else "")

    @property
    def italic(self) -> bool:
        return "italic" in Path(self.path).name.lower()


def family_dir(family: str) -> Path | None:
    """The ``files`` folder of the family's installed package, or None if it is not installed."""
    spec = importlib.util.find_spec(f"fontpkg_{family.replace('-', '_')}")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)), "files")


def load_font(face: FontFace, size: int) -> ImageFont.FreeTypeFont:
    """The face loaded at ``size`` pixels, cached: callers must not change its variation."""
    return _load_font(face.path, int(size), face.axes)


@lru_cache(maxsize=_FONT_CACHE_SIZE)
def _load_font(path: str, size: int, axes: tuple[tuple[str, float], ...]) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(path, size)
    if axes:
        wanted = dict(axes)
        values = []
        for axis in font.get_variation_axes():
            tag = _AXIS_TAGS.get(_axis_name(axis), "")
            values.append(wanted.get(tag, axis["default"]))
        font.set_variation_by_axes(values)
    return font


def _axis_name(axis: dict) -> str:
    name = axis["name"]
    return (name.decode() if isinstance(name, bytes) else str(name)).lower()


@cache
def covers_alphabet(path: str) -> bool:
    """Whether the font has a visible glyph for every character a model reads (the written
    alphabet: a-z, A-Z, 0-9 and the apostrophe), the lower-case letters each distinct. Capitals
    and digits may repeat a glyph: Oswald's I is its l, as in many sans faces, and a reader tells
    them apart by their place in the word, as a person does."""
    font = ImageFont.truetype(path, _COVERAGE_SIZE)

    def glyph(char: str) -> tuple:
        mask = font.getmask(char)
        return mask.size, bytes(mask)

    missing = glyph("\uffff")  # a noncharacter: renders as the font's .notdef glyph
    glyphs = [glyph(c) for c in WRITTEN]
    visible = all(size[0] * size[1] and any(data) and (size, data) != missing for size, data in glyphs)
    lower = [glyph(c) for c in LOWER_CASE]
    return visible and len(set(lower)) == len(lower)


def _family_faces(family: str) -> list[FontFace]:
    folder = family_dir(family)
    if folder is None or not folder.is_dir():
        log.warning("font family %r is not installed (pip package fontpkg_%s)", family, family.replace("-", "_"))
        return []
    faces = []
    for path in sorted(folder.glob("*.ttf")):
        if HAIRLINE_STYLE.search(path.stem.rpartition("-")[2]):
            continue
        if not covers_alphabet(str(path)):
            log.warning("skipping %s: it cannot render a-z, A-Z, 0-9 and the apostrophe", path.name)
            continue
        font = ImageFont.truetype(str(path), _COVERAGE_SIZE)
        weight_axis = _weight_axis(font)
        if weight_axis is None:
            faces.append(FontFace(family, str(path)))
            continue
        low, high = weight_axis["minimum"], weight_axis["maximum"]
        weights = sorted({float(min(max(w, low), high)) for w in VARIABLE_WEIGHTS})
        faces.extend(FontFace(family, str(path), (("wght", w),)) for w in weights)
    return faces


def _weight_axis(font: ImageFont.FreeTypeFont) -> dict | None:
    try:
        axes = font.get_variation_axes()
    except OSError:  # not a variable font
        return None
    return next((a for a in axes if _AXIS_TAGS.get(_axis_name(a)) == "wght"), None)


def families(font_set: str) -> tuple[str, ...]:
    if font_set == "train":
        return TRAIN_FAMILIES
    if font_set == "heldout":
        return HELDOUT_FAMILIES
    if font_set == "validation":
        return VALIDATION_FAMILIES
    if font_set == "all":
        return TRAIN_FAMILIES + HELDOUT_FAMILIES + VALIDATION_FAMILIES
    raise ValueError(f"unknown font set {font_set!r}; expected one of {FONT_SETS}")


def family_style(family: str) -> str:
    """"condensed", "monospaced" or "regular": the kind of face, for reports per kind."""
    if family in CONDENSED_FAMILIES:
        return "condensed"
    if family in MONOSPACED_FAMILIES:
        return "monospaced"
    return "regular"


def font_faces(font_set: str) -> list[FontFace]:
    """Every renderable face of the set's families, in a stable order (by family, then file)."""
    return list(_font_faces(font_set))


@lru_cache(maxsize=len(FONT_SETS))
def _font_faces(font_set: str) -> tuple[FontFace, ...]:
    faces = tuple(face for family in families(font_set) for face in _family_faces(family))
    if not faces:
        raise RuntimeError(f"no usable fonts for font set {font_set!r}: install the fontpkg-* packages")
    return faces


def face_by_name(name: str) -> FontFace:
    """The face a sample's recorded ``font`` name refers to."""
    for face in _font_faces("all"):
        if face.name == name:
            return face
    raise KeyError(f"no installed font face named {name!r}")
