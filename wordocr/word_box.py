"""The box of a word in a mask of ink pixels, past the clutter around it.

A crop of a word from a page brings along table rules, cell borders, specks and the cut-off
strokes of neighbouring lines. The box is grown from the word's core (its heaviest band of rows
and columns, found with full-width and full-height strokes masked out) over the ink that
belongs to letters, within reaches set by the text's height; the steps are in
``word_box_in_mask``'s docstring. Which pixels are ink is ``word_finder``'s job.
"""

from __future__ import annotations

import numpy as np

from wordocr.jit import compiled

# Rows/columns with no more than this many ink pixels count as empty (isolated noise pixels).
MIN_PROFILE_COUNT = 1
# Ink bands separated by less than this times the text height belong to the word (an i's dot,
# an underline, letters); farther ones are clutter (neighbouring lines, specks, table rules).
ROW_GAP = 0.3
COLUMN_GAP = 0.8
# Rows/columns holding ink across at least this share of the image are masked out while the
# word's core is looked for (table rules, cell borders); letters come back when the box grows.
RULE_SPAN = 0.9
# The core's rows hold at least this share of the fullest row's ink (ascender-only rows come
# back when the box grows along the strokes).
CORE_ROW_SHARE = 0.1
# A band of rows touching the top or bottom edge counts this much of its ink when the word's
# band is chosen (it is usually the cut-off neighbouring line).
EDGE_BAND_WEIGHT = 0.3
# Strokes hanging in from the top or bottom edge that end before the word's dense rows (those
# with at least DENSE_ROW_SHARE of the fullest row's ink) are a cut-off neighbouring line, and are
# dropped, unless every one of them is no bigger than DOT_SIZE times the dense rows' height (the
# i dots of a word cropped flush with its top: a bold face's dots are half its x-height).
DENSE_ROW_SHARE = 0.5
DOT_SIZE = 0.5
# Rows grown onto the core: at most this times its height beyond it on each side (ascenders,
# descenders and i dots that are not already in it; specks farther out are dropped).
ROW_REACH = 1.0
# Strokes above or below the text band grow the box sideways by at most this times its height.
SIDE_REACH = 0.3
# Full-height columns are a cell border only in runs at most this times the image height wide
# (plus the smoothing's two pixels): wider, they are a bold letter's stem in a crop flush with it.
TALL_RULE_WIDTH = 0.15
# A band of full-width rows is a rule only where a row next to it holds less than this share of
# its ink per row (a rule has paper, or a few descenders, on one side; a word's rows have more word).
RULE_SIDE_SHARE = 0.5
# A stroke at the end of the word is a rule if it is at most RULE_THIN times the text height
# wide and runs on RULE_REACH times the text height above and below the text, RULE_SOLID solid.
RULE_THIN = 0.25
RULE_REACH = 0.2
RULE_SOLID = 0.9
# Where the text comes closer to an image edge than that reach, a rule must still run on this
# many rows past the text, into the edge.
RULE_EDGE_ROWS = 1


def word_box_in_mask(mask: np.ndarray, sharp: np.ndarray | None = None) -> tuple[int, int, int, int] | None:
    """Box of the word in an ink mask, without table rules, far specks and neighbouring lines.

    0. Strokes of a cut-off neighbouring line, hanging in from the top or bottom edge, are
       taken out of the mask (they may come too close to the word for a gap to part them).
    1. The core: the heaviest band of rows, then of columns within it (twice), found with
       full-height columns and full-width rows masked out, so a cell border or table rule does
       not join every row or column into one band.
    2. Grown back over the whole mask, with gaps bounded by the core's height: columns within
       the core's rows (a tall letter masked out in 1 comes back), minus a thin stroke at
       either end that runs well past the text both above and below (a rule, never a letter),
       then rows within those columns (ascenders, descenders, i dots, an underline right below).

    ``sharp``, where given, is the ink mask of the unsmoothed image, for telling rules from letters.
    """
    core_mask = _without_rules(mask)
    cleaned = _without_hanging_strokes(mask, core_mask)
    if cleaned is not None:
        mask, core_mask = cleaned, _without_rules(cleaned)
    core = _core_box(core_mask)
    if core is None:
        return None
    top, bottom, left, right = core
    text = bottom - top
    left, right = _grow(mask[top:bottom].sum(axis=0), left, right, COLUMN_GAP * text, COLUMN_GAP * text)
    grown = left, right
    left, right = _drop_edge_rules(mask, top, bottom, left, right, sharp)
    gap, reach = max(2, round(ROW_GAP * text)), max(2, round(ROW_REACH * text))
    # The mean fades a small i's one-pixel dot below the threshold; unsmoothed it is still ink.
    # Upward only (below, a thin underline the mean faded is better left out), and only with
    # paper along the top edge: there, a cut-off line above would join in by its faint strokes.
    above = mask if sharp is None or sharp[0].any() else mask | sharp
    top = _follow_strokes(above[:, left:right], top, -1, gap, reach)
    bottom = _follow_strokes(mask[:, left:right], bottom - 1, 1, gap, reach) + 1
    # A stroke beyond the text band may reach past the word's ends (a y's tail swinging back
    # under the first letter): the columns grow again over the final rows, touching ink only,
    # not along a line across the word (an underline) and never back over a dropped rule.
    rows = mask[top:bottom]
    lines = rows[:, left:right].sum(axis=1) >= RULE_SPAN * (right - left)
    wider = _grow(rows[~lines].sum(axis=0), left, right, 0, SIDE_REACH * text)
    left = wider[0] if left == grown[0] else left
    right = wider[1] if right == grown[1] else right
    return top, bottom, left, right


def _without_rules(mask: np.ndarray) -> np.ndarray:
    """``mask`` without its full-height columns and full-width rows (unless that leaves nothing).

    Full-width rows count only in thin bands with little ink next to them on at least one side:
    a heavy word cropped flush with its ends fills rows of its x-height from edge to edge too,
    but those make up a good part of its height and have the rest of the word on both sides.
    """
    height, width = mask.shape
    tall = _thin_runs(mask.sum(axis=0) >= RULE_SPAN * height, TALL_RULE_WIDTH * height + 2)
    if tall.any():
        # The rest of the ink spans the height too: a crop flush with the word, whose l and j
        # stems reach both edges as a border would.
        rest = np.flatnonzero(mask[:, ~tall].any(axis=1))
        if rest.size and rest[-1] + 1 - rest[0] >= RULE_SPAN * height:
            tall[:] = False
    row_ink = mask.sum(axis=1)
    wide = row_ink >= RULE_SPAN * width
    if wide.any():
        inked = np.flatnonzero(row_ink)
        wide = _rule_bands(wide, row_ink, max(2, RULE_THIN * (inked[-1] + 1 - inked[0])) + 1)
    if not (tall.any() or wide.any()):
        return mask
    core_mask = mask & ~tall[None, :] & ~wide[:, None]
    return core_mask if core_mask.any() else mask


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of set entries in a 1-D bool array, in order."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], flags, [False]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _thin_runs(flags: np.ndarray, widest: float) -> np.ndarray:
    """``flags`` without its runs of more than ``widest`` set entries."""
    thin = flags.copy()
    for start, end in _runs(flags):
        if end - start > widest:
            thin[start:end] = False
    return thin


def _rule_bands(wide: np.ndarray, row_ink: np.ndarray, thickest: float) -> np.ndarray:
    """The runs of ``wide`` rows that look like a rule: at most ``thickest`` rows, and a row next
    to the run, above or below, with under RULE_SIDE_SHARE of the run's ink per row."""
    rules = np.zeros_like(wide)
    for start, end in _runs(wide):
        above = row_ink[start - 1] if start > 0 else 0
        below = row_ink[end] if end < len(row_ink) else 0
        if end - start <= thickest and min(above, below) < RULE_SIDE_SHARE * row_ink[start:end].mean():
            rules[start:end] = True
    return rules


def _without_hanging_strokes(mask: np.ndarray, core_mask: np.ndarray) -> np.ndarray | None:
    """``mask`` without the strokes of a cut-off neighbouring line at the top or bottom edge, or
    None when there are none.

    Such strokes hang in from the edge and end before the word's dense rows; they often come so
    close to the word (or touch its ascenders) that no empty row parts them from it, so they are
    told apart by connection: a letter touching the edge (a crop flush with an l) runs on into
    the dense rows.
    """
    if not (mask[0].any() or mask[-1].any()):
        return None
    rows = core_mask.sum(axis=1)
    # The heaviest band of dense rows (not one cut by the edge: a neighbouring line's strokes can
    # be as dense where the crop cuts them).
    dense = _main_span(np.where(rows >= DENSE_ROW_SHARE * rows.max(), rows, 0), 0.0, height=None)
    if dense is None:
        return None
    top, bottom = dense
    dot = max(2.0, DOT_SIZE * (bottom - top))
    cleaned = mask
    for flipped, limit in ((False, top), (True, mask.shape[0] - bottom)):
        view = cleaned[::-1] if flipped else cleaned
        hanging = _hanging(view, limit, dot)
        if hanging is not None:
            view = view & ~hanging
            cleaned = view[::-1] if flipped else view
    return None if cleaned is mask or not cleaned.any() else cleaned


def _hanging(mask: np.ndarray, limit: int, dot: float) -> np.ndarray | None:
    """Ink reached from ``mask``'s first row going down (to a pixel below or diagonally below)
    without reaching row ``limit``, where some piece of it is bigger than ``dot`` (a stroke,
    not an i's dot); None if there is none."""
    if limit < 2 or not mask[0].any():
        return None
    # Rows as Python ints (one bit a column): the walk down costs a few integer operations a row.
    width = mask.shape[1]
    packed = np.packbits(mask[: limit + 1], axis=1)
    reached = [int.from_bytes(packed[0].tobytes(), "big")]
    for row in packed[1:]:
        above = reached[-1]
        reached.append(int.from_bytes(row.tobytes(), "big") & (above | above << 1 | above >> 1))
        if not reached[-1]:
            break
    # Ink reached in row ``limit`` (the word's dense rows), then the rows above it as a mask.
    into_word = _unpack(reached.pop() if len(reached) > limit else 0, packed.shape[1], width)
    walked = np.stack([_unpack(r, packed.shape[1], width) for r in reached])
    # Pieces: runs of the walked columns; one that goes on into row ``limit`` is part of the word.
    hanging = np.zeros_like(mask)
    big = False
    for start, end in _runs(walked.any(axis=0)):
        if into_word[max(0, start - 1) : end + 1].any():
            continue
        depth = np.flatnonzero(walked[:, start:end].any(axis=1))[-1] + 1
        # The piece's whole box: the walk down may miss the bottom of a loop.
        hanging[:depth, start:end] = mask[:depth, start:end]
        big = big or max(depth, end - start) > dot
    return hanging if big else None


def _unpack(bits: int, nbytes: int, width: int) -> np.ndarray:
    """A row packed into an int (first column in the highest bit) as a bool array."""
    return np.unpackbits(np.frombuffer(bits.to_bytes(nbytes, "big"), np.uint8))[:width].astype(bool)


@compiled
def _follow_strokes(mask: np.ndarray, row: int, step: int, gap: int, reach: int) -> int:
    """The last row, going from ``row`` in direction ``step``, with ink that continues the ink
    of the row before it (same or next column), allowing breaks of up to ``gap`` rows (an i's
    dot, an underline right below) and going at most ``reach`` rows. Specks that do not sit
    on a letter's stroke, and rules or lines farther than ``gap``, are not reached.

    Each column carries how many more rows a stroke may break there (``alive``): ``gap`` where
    the row has ink next to a live column, one less per row without. Compiled: as numpy calls
    per row this loop was a quarter of all preprocessing."""
    height, width = mask.shape
    alive = np.zeros(width, np.int64)
    near = np.zeros(width, np.int64)
    for column in range(width):
        if mask[row, column]:
            alive[column] = gap
    edge = row
    stop = min(row + reach + 1, height) if step > 0 else max(row - reach - 1, -1)
    for r in range(row + step, stop, step):
        for column in range(width):
            level = alive[column]
            if column > 0 and alive[column - 1] > level:
                level = alive[column - 1]
            if column < width - 1 and alive[column + 1] > level:
                level = alive[column + 1]
            near[column] = level
        hit = False
        any_alive = False
        for column in range(width):
            if mask[r, column] and near[column] > 0:
                alive[column] = gap
                hit = True
            else:
                alive[column] = max(near[column] - 1, 0)
            any_alive = any_alive or alive[column] > 0
        if hit:
            edge = r
        if not any_alive:
            break
    return edge


def _core_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Rows, then columns, then rows again over those columns (so ink far to the side no longer
    stretches the rows), then columns again. The rows are one unbroken band (a word's rows are;
    dots and specks join later, within reach)."""
    top, bottom, left, right = 0, mask.shape[0], 0, mask.shape[1]
    for _ in range(2):
        rows = mask[:, left:right].sum(axis=1)
        # Only rows with a fair share of the word's ink: scattered specks do not join them.
        rows = np.where(rows >= CORE_ROW_SHARE * rows.max(), rows, 0)
        rows = _main_span(rows, 0.0, height=None)
        if rows is None:
            return None
        top, bottom = rows
        columns = _main_span(mask[top:bottom].sum(axis=0), COLUMN_GAP, height=bottom - top)
        if columns is None:
            return None
        left, right = columns
    return top, bottom, left, right


def _grow(profile: np.ndarray, start: int, end: int, gap: float, reach: float) -> tuple[int, int]:
    """[start, end) grown over non-empty ``profile`` entries at most ``gap`` away (chained), by
    at most ``reach`` on each side."""
    filled = profile > MIN_PROFILE_COUNT
    tolerance = max(2, int(gap))
    bounds = []
    for step, first, stop in ((-1, start - 1, max(0, start - max(2, int(reach))) - 1),
                              (1, end, min(len(profile), end + max(2, int(reach))))):  # fmt: skip
        edge, empty = None, 0
        for i in range(first, stop, step):
            if filled[i]:
                edge, empty = i, 0
            else:
                empty += 1
                if empty > tolerance:
                    break
        bounds.append(edge)
    low = start if bounds[0] is None else bounds[0]
    high = end if bounds[1] is None else bounds[1] + 1
    return low, high


def _drop_edge_rules(
    mask: np.ndarray, top: int, bottom: int, left: int, right: int, sharp: np.ndarray | None = None
) -> tuple[int, int]:
    """Shrink [left, right) past a thin stroke at either end that crosses the text band [top,
    bottom) and runs on past it by a good part of its height both above and below: a table
    rule or cell border. A letter never does both (an l stops at the baseline, a j's dot is
    apart from its stem, an italic f is wide).

    A rule that touches the first or last letter (blur, or a tight cell) leaves no gap to
    split at; then the run of columns inked over (almost) the whole image height at that end
    is the candidate.
    """
    tall = mask.sum(axis=0) >= RULE_SPAN * mask.shape[0]
    for _ in range(4):
        columns = np.flatnonzero(mask[top:bottom, left:right].any(axis=0))
        if columns.size == 0:
            return left, right
        start, end = left + columns[0], left + columns[-1] + 1
        # Candidates (begin, end, where the box resumes if it is a rule) at each end: the ink up
        # to the first (from the last) gap, the piece after it (a speck outside a cell border
        # would hide the border), else the tall run of columns there.
        gaps = np.flatnonzero(np.diff(columns) > 1)
        starts = left + np.concatenate(([columns[0]], columns[gaps + 1]))
        ends = left + np.concatenate((columns[gaps], [columns[-1]])) + 1
        n = len(starts)
        firsts = [(starts[i], ends[i], starts[i + 1]) for i in range(min(2, n - 1))]
        lasts = [(starts[i], ends[i], ends[i - 1]) for i in range(n - 1, max(0, n - 3), -1)]
        # The tall run at the end, or just inside it (a speck touching a border on its outer side).
        speck = round(RULE_THIN * (bottom - top))
        inner = start + np.argmax(tall[start : start + speck + 1])
        stop = inner + _run_length(tall, inner, 1)
        firsts.append((inner, stop, stop))
        inner = end - 1 - np.argmax(tall[max(start, end - 1 - speck) : end][::-1])
        begin = inner + 1 - _run_length(tall, inner, -1)
        lasts.append((begin, inner + 1, begin))
        cut = next((resume for b, e, resume in firsts if e > b and _is_rule(mask, top, bottom, b, e, sharp)), None)
        if cut is not None:
            left = cut
            continue
        cut = next((resume for b, e, resume in lasts if e > b and _is_rule(mask, top, bottom, b, e, sharp)), None)
        if cut is None:
            break
        right = cut
    # The box starts and ends on ink (a cut tall run may be followed by paper).
    columns = np.flatnonzero(mask[top:bottom, left:right].any(axis=0))
    if columns.size:
        left, right = left + columns[0], left + columns[-1] + 1
    return left, right


def _run_length(flags: np.ndarray, start: int, step: int) -> int:
    """How many ``flags`` are set in a row from index ``start`` going in direction ``step``."""
    count, i = 0, start
    while 0 <= i < len(flags) and flags[i]:
        count, i = count + 1, i + step
    return count


def _is_rule(mask: np.ndarray, top: int, bottom: int, left: int, right: int, sharp: np.ndarray | None = None) -> bool:
    text = bottom - top
    # The smoothing before thresholding widens every stroke by a pixel on each side.
    if right - left > max(2, RULE_THIN * text) + 2:
        return False
    reach = max(2, round(RULE_REACH * text))
    above, below, height = top - reach, bottom + reach, mask.shape[0]
    # Closer to an image edge than ``reach``: the stroke must still pass the band by
    # RULE_EDGE_ROWS and run into that edge, as a rule cut by the crop does; a letter stops
    # short of it (an l ends at the baseline, and a crop flush with the baseline leaves no
    # rows to pass). At least one side must show the full ``reach``.
    if above < 0:
        if below > height or top < RULE_EDGE_ROWS or not mask[0, left:right].any():
            return False
        above = 0
    if below > height:
        if height - bottom < RULE_EDGE_ROWS or not mask[height - 1, left:right].any():
            return False
        below = height
    # Ink without a break from ``reach`` above the band to ``reach`` below it, on each side by
    # itself too: a tall letter's stem (a d's) runs far past the band on one side, and on noisy
    # ink may poke out by a row or two on the other.
    run = mask[above:below, left:right].any(axis=1)
    past = min(run[: top - above].mean(), run[bottom - above :].mean())
    if run.mean() < RULE_SOLID or past < RULE_SOLID:
        return False
    if sharp is None:
        return True
    # The whole stroke as the smoothed mask joins it, out from the band: unsmoothed, a rule has
    # ink in every row of it; an i or j has paper between its dot and its stem.
    inked = mask[:, left:right].any(axis=1)
    start, end = top - _run_length(inked, top - 1, -1), bottom + _run_length(inked, bottom, 1)
    return bool(sharp[start:end, left:right].any(axis=1).all())


def _main_span(profile: np.ndarray, gap: float, height: int | None) -> tuple[int, int] | None:
    """[start, end) of the heaviest run of non-zero ``profile`` entries, grown over neighbouring
    runs whose gap is at most ``gap`` times the text height (``height``; None: the heaviest
    run's own length) or two entries, whichever is more."""
    filled = np.flatnonzero(profile > MIN_PROFILE_COUNT)
    if filled.size == 0:
        return None
    breaks = np.flatnonzero(np.diff(filled) > 1)
    starts = np.concatenate(([filled[0]], filled[breaks + 1]))
    ends = np.concatenate((filled[breaks], [filled[-1]])) + 1
    cumulative = np.concatenate(([0], np.cumsum(profile)))
    masses = (cumulative[ends] - cumulative[starts]).astype(np.float64)
    if height is None and len(starts) > 1:
        # Rows: a band cut by the image edge is more likely the next line than the word.
        masses[(starts == 0) | (ends == len(profile))] *= EDGE_BAND_WEIGHT
    first = last = int(np.argmax(masses))
    tolerance = max(2.0, gap * (height if height is not None else ends[first] - starts[first]))
    while True:
        grow_left = first > 0 and starts[first] - ends[first - 1] <= tolerance
        grow_right = last < len(starts) - 1 and starts[last + 1] - ends[last] <= tolerance
        if not (grow_left or grow_right):
            return int(starts[first]), int(ends[last])
        first -= grow_left
        last += grow_right
