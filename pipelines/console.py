"""What a local run shows a person, and where the rest goes.

kfp.local prints every task's executor input, its whole log and its outputs: about a thousand
lines for one run. Here all of that goes to a log file under the work folder instead, captured at
the file-descriptor level too (task subprocesses, native libraries), and the terminal gets one
line per task (name, status, time, its key number) with a progress bar while images are generated
and epochs trained.

The task lines are read from kfp.local's own log records ("Executing task 'x'", "Task 'x' finished
with status ...", "Task 'x' outputs: ...") and the lines each task prints; a kfp that words them
differently loses the summaries, never the run or the log.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

LOG_FOLDER = "logs"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXECUTING = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
_RETRYING = re.compile(r"Task (\S+) failed \(attempt (\d+)/(\d+)\)\. Retrying in ([\d.]+)s")
_OUTPUTS = re.compile(r"Task '([^']+)' (?:outputs:\n(.*)|has no outputs)", re.S)
# A tqdm bar a task prints ("generate val/train:  40%|####  | 80/200 [00:04<00:04, 26.84img/s]").
_TQDM_COUNT = re.compile(r"(\d+)/(\d+) \[")
# wordocr.train's line per epoch.
_EPOCH = re.compile(r"epoch (\d+)/(\d+):.*?val word acc ([\d.]+)")
# A test grid cell's word accuracy in the evaluate task's metrics ("'heldout/hard': 0.9125").
_CELL_READING = re.compile(r"'(\w+/\w+)': ([\d.]+)\b")
_TAIL_LINES = 25

log = logging.getLogger(__name__)


def new_log_path(workdir: Path, kind: str = "run") -> Path:
    """``WORKDIR/logs/KIND-YYYYmmdd-HHMMSS.log``, created empty (a suffix if that second is taken)."""
    folder = workdir / LOG_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    for attempt in range(1000):
        path = folder / (f"{stem}.log" if attempt == 0 else f"{stem}-{attempt + 1}.log")
        try:
            path.open("x").close()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free log name for {stem} in {folder}")


def plain_text(text: str) -> str:
    """``text`` without the ANSI colour codes kfp.local puts in its messages."""
    return _ANSI.sub("", text)


def format_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s"


class LineTee(io.TextIOBase):
    """A text stream that writes whole lines to ``log`` (each thread its own, so the lines of tasks
    running side by side never mix) and hands each line to ``on_line`` in the writing thread."""

    encoding = "utf-8"

    def __init__(self, log: TextIO, on_line: Callable[[str], None] | None = None):
        super().__init__()
        self._log = log
        self.on_line = on_line
        self._partial: dict[int, str] = {}
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._log.fileno()

    def write(self, text: str) -> int:
        thread = threading.get_ident()
        with self._lock:
            *lines, rest = (self._partial.pop(thread, "") + text).split("\n")
            if rest:
                self._partial[thread] = rest
            if lines:
                self._log.write("".join(line + "\n" for line in lines))
                self._log.flush()
        if self.on_line is not None:
            for line in lines:
                self.on_line(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._log.flush()

    def finish(self) -> None:
        """Write what was left without a newline."""
        with self._lock:
            for rest in self._partial.values():
                self._log.write(rest + "\n")
            self._partial.clear()
            self._log.flush()


def console_for(stream: TextIO) -> tuple[TextIO, bool]:
    """A stream that still reaches what ``stream`` reaches once fds 1 and 2 point at the log, and
    whether it was opened here (a duplicate of its descriptor) and must be closed."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return stream, False  # an in-memory stream: no descriptor to move
    stream.flush()
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding=getattr(stream, "encoding", None) or "utf-8"), True


@contextlib.contextmanager
def output_into(log: TextIO, on_line: Callable[[str], None] | None = None) -> Iterator[LineTee]:
    """Send everything written to stdout and stderr into ``log`` while the block runs: Python's
    ``sys.stdout``/``sys.stderr`` (through a ``LineTee`` that also feeds ``on_line``) and file
    descriptors 1 and 2 (subprocesses, native code). The root logger's handlers and level are put
    back afterwards, whatever a library did to them meanwhile."""
    root = logging.getLogger()
    saved_root = root.handlers[:], root.level
    saved_streams = sys.stdout, sys.stderr
    saved_fds: dict[int, int] = {}
    for stream in saved_streams:
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    tee = LineTee(log, on_line)
    try:
        for fd in (1, 2):
            try:
                saved_fds[fd] = os.dup(fd)
            except OSError:  # not open (a daemon): nothing to move
                continue
            os.dup2(log.fileno(), fd)
        sys.stdout = sys.stderr = tee
        yield tee
    finally:
        tee.finish()
        sys.stdout, sys.stderr = saved_streams
        for fd, saved in saved_fds.items():
            os.dup2(saved, fd)
            os.close(saved)
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])


@dataclass
class _Task:
    name: str
    started: float
    status: str = "running"
    elapsed: float = 0.0
    progress: int = 0  # images so far, from the task's own progress bar
    epochs_seen: int = 0
    tail: deque = field(default_factory=lambda: deque(maxlen=_TAIL_LINES))


@dataclass(frozen=True)
class RunPlan:
    """What the run is expected to do, for the progress bars."""

    images: int  # generated by the generate tasks (training and validation data)
    epochs: int


class TaskConsole(logging.Filter):
    """Turns kfp.local's task records and the tasks' own lines into one console line per task and
    two progress bars. Install it as a filter on the root logger (kfp.local swaps the root's
    handlers per task, never its filters) and make ``on_line`` the ``LineTee``'s."""

    def __init__(self, console: TextIO, plan: RunPlan, bars: bool | None = None):
        super().__init__()
        self.console = console
        self.plan = plan
        self.lines: list[str] = []
        self._bars = console.isatty() if bars is None else bars
        self._lock = threading.RLock()
        self._running: dict[int, _Task] = {}  # by the thread kfp.local runs the task in
        self._finished: dict[int, _Task] = {}  # finished, waiting for its outputs record
        self._images_done = 0
        self._generate_bar: tqdm | None = None
        self._train_bar: tqdm | None = None
        self.failed: list[_Task] = []

    # -- the console ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """A line above the bars, also kept in the log."""
        with self._lock:
            self.lines.append(text)
            tqdm.write(text, file=self.console)
            self.console.flush()
        log.info("%s", text.strip())

    def _bar(self, total: int, desc: str, unit: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit=unit, file=self.console, leave=False, disable=not self._bars,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} "
                    "[{elapsed}<{remaining}]{postfix}")  # fmt: skip

    # -- kfp.local's records -------------------------------------------------------------------

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._read_record(record)
        except Exception:  # a summary is never worth a failed run
            log.debug("could not read %r", record.msg, exc_info=True)
        return True

    def _read_record(self, record: logging.LogRecord) -> None:
        message = plain_text(record.getMessage())
        with self._lock:
            if match := _EXECUTING.match(message):
                self._start(record.thread, match[1], record.created)
            elif match := _FINISHED.match(message):
                task = self._running.pop(record.thread, None) or _Task(match[1], record.created)
                task.status = match[2]
                elapsed = record.created - task.started
                if task.status == "SUCCESS":
                    task.elapsed = elapsed
                    self._finished[record.thread] = task
                else:
                    self._task_line(task, "FAILED", elapsed, "")
                    self.failed.append(task)
            elif match := _RETRYING.match(message):
                attempt, attempts, delay = int(match[2]), int(match[3]), float(match[4])
                self.say(f"  {match[1]:<26} {'retry':<6} {format_duration(delay):>12}  "
                         f"attempt {attempt + 1} of {attempts} after this pause")  # fmt: skip
            elif match := _OUTPUTS.match(message):
                task = self._finished.pop(record.thread, None)
                if task is not None:
                    self._task_line(task, "done", task.elapsed, self._summary(task, match[2] or ""))

    def _start(self, thread: int, name: str, created: float) -> None:
        self._running[thread] = _Task(name, created)
        if name.startswith("generate") and self._generate_bar is None and self.plan.images:
            self._generate_bar = self._bar(self.plan.images, "generating images", "img")
        if name.startswith("train"):
            self._close_generate_bar()
            self._train_bar = self._bar(self.plan.epochs, "training", "epochs")

    def _close_generate_bar(self) -> None:
        if self._generate_bar is not None:
            self._generate_bar.close()
            self._generate_bar = None

    def _task_line(self, task: _Task, status: str, elapsed: float, summary: str) -> None:
        if task.name.startswith("train") and self._train_bar is not None:
            self._train_bar.close()
            self._train_bar = None
        self.say(f"  {task.name:<26} {status:<6} {format_duration(elapsed):>12}  {summary}".rstrip())

    def _summary(self, task: _Task, outputs: str) -> str:
        """The task's key number, from its outputs (kfp.local prints artifact metadata as a dict)."""
        def number(key: str) -> float | None:
            found = re.search(rf"'?{key}'?: ([-\d.e]+)", outputs)
            return float(found[1]) if found else None

        count, split = number("count"), re.search(r"'split': '(\w+)'", outputs)
        best = number("best_val_word_accuracy")
        cells = _CELL_READING.findall(outputs)
        if best is not None:
            epochs = f" ({task.epochs_seen} epoch{'' if task.epochs_seen == 1 else 's'})" if task.epochs_seen else ""
            return f"best val word accuracy {best:.4f}{epochs}"
        if cells:
            per_cell = number("images per cell")
            lowest, reading = min(cells, key=lambda found: float(found[1]))
            counted = f" of {per_cell:,.0f} images" if per_cell is not None else ""
            return f"{len(cells)} cells{counted}, the lowest {lowest} {float(reading):.4f}"
        if decision := re.search(r"decision: '(\w+)'", outputs):
            return "passed: publish" if decision[1] == "publish" else "refused: nothing published (table below)"
        if count is not None:
            if task.name.startswith("generate"):
                with self._lock:
                    self._images_done += int(count)
                    task.progress = 0
                    self._update_generate_bar()
            return f"{count:,.0f} {split[1] + ' ' if split else ''}images"
        if items := re.search(r"Output: \[(.*?)\]", outputs):
            return f"{len(items[1].split(','))} shards" if "shard" in task.name else ""
        if "reject" in task.name:
            return "refused by the gate: nothing published"
        if published := re.search(r"Output: '([^']+)'", outputs):
            return f"published {Path(published[1]).name}"
        return ""

    # -- the tasks' own lines -------------------------------------------------------------------

    def on_line(self, line: str) -> None:
        """A line a task printed (kfp.local prints them from the thread that runs the task)."""
        try:
            self._read_line(line)
        except Exception:  # a progress bar is never worth a failed run
            log.debug("could not read %r", line, exc_info=True)

    def _read_line(self, line: str) -> None:
        with self._lock:
            task = self._running.get(threading.get_ident())
            if task is None:
                return
            task.tail.append(line)
            if task.name.startswith("generate") and (counts := _TQDM_COUNT.findall(line)):
                task.progress = int(counts[-1][0])
                self._update_generate_bar()
            elif match := _EPOCH.search(line):
                task.epochs_seen = int(match[1])
                if self._train_bar is not None:
                    self._train_bar.total = int(match[2])
                    self._train_bar.set_postfix_str(f"val word acc {float(match[3]):.4f}", refresh=False)
                    self._train_bar.update(int(match[1]) - self._train_bar.n)

    def _update_generate_bar(self) -> None:
        if self._generate_bar is None:
            return
        running = sum(t.progress for t in self._running.values() if t.name.startswith("generate"))
        self._generate_bar.update(min(self._images_done + running, self.plan.images) - self._generate_bar.n)
        if self._images_done >= self.plan.images:
            self._close_generate_bar()

    # -- the end --------------------------------------------------------------------------------

    def interrupted(self, now: float | None = None) -> list[_Task]:
        """Tasks that started and never finished (the run was stopped): each gets its line."""
        now = time.time() if now is None else now
        with self._lock:
            self._close_generate_bar()
            left = list(self._running.values())
            self._running.clear()
            for task in left:
                self._task_line(task, "ended", now - task.started, "did not finish")
            if self._train_bar is not None:
                self._train_bar.close()
                self._train_bar = None
        return left

    def close(self) -> None:
        with self._lock:
            self._close_generate_bar()
            if self._train_bar is not None:
                self._train_bar.close()
                self._train_bar = None
