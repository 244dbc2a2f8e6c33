"""The project's Markdown renders as written: parsed as CommonMark (with tables, as Git hosts do).

Three mistakes a reader sees only once the file is rendered, each a rule below:

* a command or code outside a fence, where it reads as prose: a paragraph that starts like a
  shell line (``curl ...``, ``$ make ...``), or an indented code block made by accident (four
  spaces of indentation; the documents fence every block);
* a relative link to a file that is not there, or to a heading the target does not have (anchors
  as a Git host makes them: GitHub's slugs);
* a fence that swallows the text after it: one never closed, one whose intended closing line
  has text after the backticks (then it is content, and the fence runs on to the next one), or
  one whose content holds Markdown headings;
* a table row with more cells than the header, whose extra cells a renderer drops without a
  word (a header row written twice, a column added to the rows and not to the header).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(
    path.relative_to(ROOT).as_posix()
    for path in [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        ROOT / "manifests" / "README.md",
        ROOT / "tools" / "device_train" / "README.md",
    ]
    if path.exists()
)

# The first words of a shell line people paste: a paragraph that starts with one is a command
# that lost its fence. Lower case on purpose: a sentence starts with a capital.
COMMAND_START = re.compile(
    r"^(\$ |curl |make |python3? |\.venv/bin/|pip |kubectl |gcloud |gsutil |export |bash |docker |git |cd )"
)
# A fence's content line that is a Markdown heading: any level-2+ heading, or a level-1 heading
# in a block whose language does not use "#" for comments.
HEADING_IN_FENCE = re.compile(r"^#{2,6} \S")
LEVEL_ONE_HEADING = re.compile(r"^# [A-Z]")
HASH_COMMENT_LANGUAGES = {
    "bash", "sh", "shell", "console", "zsh", "python", "py", "yaml", "yml", "toml", "make", "makefile",
    "dockerfile", "ini", "conf", "r", "perl", "ruby",
}
MARKDOWN_LANGUAGES = {"markdown", "md"}  # a block that shows Markdown may show headings
URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
LINE_ANCHOR = re.compile(r"^L\d+(-L\d+)?$")  # a Git host's line anchors in a non-Markdown file


def parse(text: str) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(text)


# --------------------------------------------------------------------------- rule (a)


def code_outside_fences(text: str) -> list[str]:
    """Problems ``"line N: ..."`` for commands written as prose and unintended indented code blocks."""
    problems = []
    tokens = parse(text)
    for i, token in enumerate(tokens):
        line = token.map[0] + 1 if token.map else 0
        if token.type == "code_block":
            problems.append(f"line {line}: an indented code block (4+ spaces of indentation): fence it, or indent less")
        elif token.type == "inline" and i > 0 and tokens[i - 1].type == "paragraph_open":
            lines = token.content.splitlines()
            if lines and COMMAND_START.match(lines[0]):
                problems.append(f"line {line}: a paragraph starts like a command, outside a fence: {lines[0]!r}")
            for offset, content in enumerate(lines[1:], start=1):
                if content.startswith("$ "):
                    problems.append(f"line {line + offset}: a shell prompt line outside a fence: {content!r}")
    return problems


# --------------------------------------------------------------------------- rule (b)


def github_slug(heading: str) -> str:
    """The anchor a Git host (GitHub) gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def heading_anchors(text: str) -> set[str]:
    """Every heading's anchor; a repeated heading gets ``-1``, ``-2`` ... as on GitHub."""
    anchors: set[str] = set()
    counts: dict[str, int] = {}
    tokens = parse(text)
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        inline = tokens[i + 1]
        words = "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))
        slug = github_slug(words)
        anchors.add(f"{slug}-{counts[slug]}" if slug in counts else slug)
        counts[slug] = counts.get(slug, 0) + 1
    return anchors


def _targets(tokens: list[Token]):
    """(line, target) of every link and image, table cells included."""
    for token in tokens:
        for child in token.children or []:
            target = child.attrs.get("href") if child.type == "link_open" else child.attrs.get("src")
            if child.type in ("link_open", "image") and isinstance(target, str):
                yield (token.map[0] + 1 if token.map else 0), target


def broken_links(document: Path) -> list[str]:
    """Problems for relative links to missing files, or to anchors the target file has no heading for."""
    text = document.read_text(encoding="utf-8")
    problems = []
    for line, target in _targets(parse(text)):
        if URL_SCHEME.match(target) or target.startswith("//"):
            continue  # absolute: the network is not checked here
        path_part, _, anchor = target.partition("#")
        linked = (document.parent / unquote(path_part)).resolve() if path_part else document
        if not linked.exists():
            problems.append(f"line {line}: {target!r}: no such file {linked}")
            continue
        if not anchor:
            continue
        if linked.suffix.lower() != ".md":
            if not (linked.is_file() and LINE_ANCHOR.match(anchor)):
                problems.append(f"line {line}: {target!r}: an anchor into a file that has no headings")
        elif unquote(anchor).lower() not in heading_anchors(linked.read_text(encoding="utf-8")):
            problems.append(f"line {line}: {target!r}: {linked.name} has no heading with that anchor")
    return problems


# --------------------------------------------------------------------------- rule (c)


def fences_that_swallow_text(text: str) -> list[str]:
    """Problems for fences left open, closing lines with text after them, and headings inside fences."""
    lines = text.splitlines()
    problems = []
    for token in parse(text):
        if token.type != "fence" or not token.map:
            continue
        start, end = token.map
        opened = f"the fence opened at line {start + 1}"
        closing = lines[end - 1].strip() if end - start >= 2 else ""
        char, length = token.markup[0], len(token.markup)
        if not (closing and set(closing) == {char} and len(closing) >= length):
            problems.append(f"line {start + 1}: {opened} is never closed: it runs to the end of the file")
        language = token.info.strip().split(" ")[0].lower()
        for number, content in enumerate(token.content.splitlines(), start=start + 2):
            stripped = content.lstrip(" ")
            indent = len(content) - len(stripped)
            if indent <= 3 and stripped.startswith(char * length) and stripped.strip(char).strip():
                problems.append(
                    f"line {number}: {content[:40]!r} would close {opened} but has text after it; "
                    "a closing fence must be alone on its line"
                )
            if language in MARKDOWN_LANGUAGES:
                continue
            if HEADING_IN_FENCE.match(content) or (
                language not in HASH_COMMENT_LANGUAGES and LEVEL_ONE_HEADING.match(content)
            ):
                problems.append(f"line {number}: the heading {content!r} is inside {opened}")
    return problems


# --------------------------------------------------------------------------- rule (d)

# A cell boundary: a pipe not escaped and not inside a code span (pipes in code spans must be
# escaped in GFM tables too, so only the escape is looked at).
CELL_PIPE = re.compile(r"(?<!\\)\|")


def _cells(line: str) -> int:
    row = line.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return len(CELL_PIPE.split(row))


def tables_with_dropped_cells(text: str) -> list[str]:
    """Problems for table rows with more cells than their table's header (the renderer drops them)."""
    lines = text.splitlines()
    problems = []
    for token in parse(text):
        if token.type != "table_open" or not token.map:
            continue
        start, end = token.map
        header = _cells(lines[start])
        for number in range(start + 2, end):
            cells = _cells(lines[number])
            if cells > header:
                problems.append(
                    f"line {number + 1}: {cells} cells under a header of {header} (line {start + 1}): "
                    "the extra ones are not shown"
                )
    return problems


# --------------------------------------------------------------------------- the documents


@pytest.mark.parametrize("name", DOCUMENTS)
def test_no_command_is_left_outside_a_fence(name):
    assert code_outside_fences((ROOT / name).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_relative_link_resolves_to_a_file_and_heading(name):
    assert broken_links(ROOT / name) == []


@pytest.mark.parametrize("name", DOCUMENTS)
def test_no_fence_swallows_the_text_after_it(name):
    assert fences_that_swallow_text((ROOT / name).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("name", DOCUMENTS)
def test_no_table_row_has_more_cells_than_its_header(name):
    assert tables_with_dropped_cells((ROOT / name).read_text(encoding="utf-8")) == []


# A page describes word-ocr as it is; what a change was for belongs in its commit, not in
# a pointer to a tracker entry that a reader of the page cannot follow.
TRACKER_REFERENCE = re.compile(r"\b(?:issue|ticket|pr)s? #?\d+\b|(?<![\w/&])#\d+\b", re.IGNORECASE)


@pytest.mark.parametrize("name", DOCUMENTS)
def test_no_page_points_at_tracker_entries(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    assert TRACKER_REFERENCE.findall(text) == [] and "the issue" not in text.lower()


def test_a_tracker_reference_is_flagged_and_a_heading_anchor_is_not():
    for flagged in ("as issue 18 asks", "see #17", "Issues #3"):
        assert TRACKER_REFERENCE.search(flagged), flagged
    for fine in ("[limits](model.md#limits)", "`Q&#39;`", "a 1 # comment", "GitHub's #L10 anchors"):
        assert not TRACKER_REFERENCE.search(fine), fine


def test_the_front_door_and_the_docs_folder_are_checked():
    assert "README.md" in DOCUMENTS
    assert any(name.startswith("docs/") for name in DOCUMENTS)


# --------------------------------------------------------------------------- each rule can fail

FENCE = "```"


def test_a_command_written_as_a_paragraph_is_flagged_and_a_sentence_is_not():
    problems = code_outside_fences("Start it:\n\ncurl -s localhost:8080/\n\nThen:\n\n$ make run\n")
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 7"]
    assert code_outside_fences(f"Make sure it runs:\n\n{FENCE}bash\nmake run\n{FENCE}\n\n`make run` serves.\n") == []


def test_a_prompt_line_inside_a_paragraph_is_flagged():
    assert code_outside_fences("Run these:\n$ make test\n") == [
        "line 2: a shell prompt line outside a fence: '$ make test'"
    ]


def test_an_indented_block_is_flagged_where_a_fence_is_not():
    indented = "1. Build it:\n\n       python tools/prepare.py\n\n2. Run it.\n"
    assert code_outside_fences(indented) == [
        "line 3: an indented code block (4+ spaces of indentation): fence it, or indent less"
    ]
    fenced = f"1. Build it:\n\n   {FENCE}bash\n   python tools/prepare.py\n   {FENCE}\n\n2. Run it.\n"
    assert code_outside_fences(fenced) == []


def test_github_slugs_drop_punctuation_keep_hyphens_and_number_repeats():
    assert github_slug("What the model is") == "what-the-model-is"
    assert github_slug("1. Bucket and image registry") == "1-bucket-and-image-registry"
    assert github_slug("Local run versus cluster run (`make run`)") == "local-run-versus-cluster-run-make-run"
    assert github_slug("word_ocr: v1/v2 & more") == "word_ocr-v1v2--more"
    assert heading_anchors("# A\n\n## Usage\n\n## Usage\n\n### `make test`\n") == {
        "a", "usage", "usage-1", "make-test"
    }


def test_a_link_to_a_missing_file_or_heading_is_flagged(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "api.md").write_text("# API\n\n## Errors\n", encoding="utf-8")
    (tmp_path / "code.py").write_text("x = 1\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\n## Calling it\n\n"
        "[ok](docs/api.md) [ok](docs/api.md#errors) [ok](#calling-it) [ok](code.py#L1) "
        "[ok](https://example.com/missing) [ok](docs/)\n\n"
        "| a | b |\n|---|---|\n| [gone](docs/gone.md) | ![gone](pic.png) |\n\n"
        "[no heading](docs/api.md#limits) [no heading here](#calling) [no headings](code.py#top)\n",
        encoding="utf-8",
    )
    problems = broken_links(readme)
    assert [p.split(": ")[1] for p in problems] == [
        "'docs/gone.md'", "'pic.png'", "'docs/api.md#limits'", "'#calling'", "'code.py#top'"
    ]


def test_a_closing_fence_with_text_after_it_is_flagged():
    text = f"## Call it\n\n{FENCE}bash\ncurl -s localhost:8080/\n{FENCE} Words are trimmed.\n\nMore prose.\n"
    problems = fences_that_swallow_text(text)
    assert any("line 5" in p and "a closing fence must be alone on its line" in p for p in problems), problems


def test_a_fence_never_closed_is_flagged():
    problems = fences_that_swallow_text(f"# T\n\n{FENCE}\nlayout\n\n## Next\n\nprose\n")
    assert "line 3: the fence opened at line 3 is never closed: it runs to the end of the file" in problems


def test_a_heading_inside_a_fence_is_flagged_but_a_shell_comment_is_not():
    assert fences_that_swallow_text(f"{FENCE}text\n# Title\nbody\n{FENCE}\n") == [
        "line 2: the heading '# Title' is inside the fence opened at line 1"
    ]
    assert fences_that_swallow_text(f"{FENCE}bash\n# Promote: all traffic\nkubectl patch\n{FENCE}\n") == []
    assert fences_that_swallow_text(f"````markdown\n## Usage\n{FENCE}bash\nmake\n{FENCE}\n````\n") == []


def test_a_section_swallowed_by_a_code_block_is_flagged():
    """The shape of a real mistake: text glued to a closing fence turned the rest into code."""
    text = (
        "## Calling the predictor\n\n"
        f"{FENCE}bash\ncurl -s -H \"Host: word-ocr.example.com\" http://$INGRESS_IP/v1/models/word-ocr:predict\n"
        f"{FENCE} Words are trimmed and lower-cased.\n\n"
        "## What the model is\n\n- **Data**: words.\n\n"
        f"## Layout\n\n{FENCE}\nwordocr/   the core\n{FENCE}\n\n"
        "## Measured\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    problems = fences_that_swallow_text(text)
    assert any("a closing fence must be alone" in p for p in problems), problems
    assert any("'## What the model is' is inside" in p for p in problems), problems
    assert any("never closed" in p for p in problems), problems


def test_a_row_wider_than_its_header_is_flagged_and_escaped_pipes_are_not_cells():
    doubled_header = (
        "| what | a | target |\n|---|---|---|\n| what | a | b | target |\n|---|---|---|---|\n| x | 1 | 2 | 3 |\n"
    )
    problems = tables_with_dropped_cells(doubled_header)
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 5"], problems
    assert tables_with_dropped_cells("| a | b |\n|---|---|\n| `x \\| y` | 2 |\n| 1 |\n") == []
