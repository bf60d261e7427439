"""The job page's charts, laid out on the server as SVG (docs/web.md, "The job's charts"): the throughput over the
job's life and the mini-batch timeline, one lane per worker and one bar per try. A lane with more tries than fit
(``BARS_PER_LANE``, fewer when there are many workers: ``BARS`` in all) shows one bar per slice of time, holding
every try that started in it, so that a job of any size draws a bounded number of bars. Each bar and column
carries its numbers for the text alternatives (the tables after each chart, the bars' titles) and for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from batchpoint.web.job_view import TryState, TryView, by_lane, shown_file

WIDTH = 960
LABEL_WIDTH = 170
PLOT_WIDTH = WIDTH - LABEL_WIDTH - 10
LANE_HEIGHT = 24
BAR_HEIGHT = 16
AXIS_HEIGHT = 28
CHART_HEIGHT = 180
COLUMNS = 60
"""Slices of the job's life in the throughput chart, at most: a job of few mini-batches has one per two of them
(at least MIN_COLUMNS), so that its chart is no row of spikes."""
MIN_COLUMNS = 10
BARS_PER_LANE = 150
BARS = 1500
"""At most this many bars in all: a job of many workers has fewer per lane (but at least MIN_BARS_PER_LANE)."""
MIN_BARS_PER_LANE = 20
"""A lane with more tries than this shows one bar per slice of time (of the job's life, in this many slices)."""
TICKS = 6
FILES_NAMED = 5
MIN_BAR = 2.0
SEVERITY = (TryState.FAILED, TryState.TIMED_OUT, TryState.RETRIED, TryState.RUNNING, TryState.SUCCEEDED)
"""The state an aggregated bar shows: the first of these that one of its tries has."""
STATE_WORDS = {
    TryState.FAILED: "failed",
    TryState.TIMED_OUT: "timed out",
    TryState.RETRIED: "failed (tried again)",
    TryState.RUNNING: "running",
    TryState.SUCCEEDED: "succeeded",
}


def duration(seconds: float) -> str:
    """A length of time as the page writes it."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


@dataclass(frozen=True)
class Span:
    """The stretch of time the charts show: from the job's start (or its first try) to its end (or now)."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-3)

    def x(self, moment: float) -> float:
        return LABEL_WIDTH + (min(max(moment, self.start), self.end) - self.start) / self.seconds * PLOT_WIDTH

    def ticks(self) -> list[tuple[float, str]]:
        return [
            (self.x(self.start + self.seconds * n / TICKS), duration(self.seconds * n / TICKS))
            for n in range(TICKS + 1)
        ]


def span_of(tries: Sequence[TryView], started: float | None, ended: float | None, now: float) -> Span:
    starts = [attempt.started for attempt in tries if attempt.started is not None]
    start = min([*starts, *([started] if started is not None else [])], default=now)
    ends = [_end(attempt, now) for attempt in tries if attempt.started is not None]
    return Span(start, max([ended if ended is not None else now, *ends]))


def _end(attempt: TryView, now: float) -> float:
    assert attempt.started is not None
    return attempt.started + attempt.seconds if attempt.seconds is not None else max(now, attempt.started)


@dataclass(frozen=True)
class Bar:
    id: str
    """Stable across live updates, so that the keyboard focus stays on it when the timeline is redrawn."""
    x: float
    width: float
    state: TryState
    tries: int
    failed: int
    label: str


@dataclass(frozen=True)
class Lane:
    name: str
    y: float
    bars: list[Bar]
    tries: int
    failed: int
    running: int
    busy_seconds: float


@dataclass(frozen=True)
class Timeline:
    lanes: list[Lane]
    span: Span
    tries: int
    failed: int
    per_lane: int
    """A lane with more tries than this shows one bar per slice of time."""
    aggregated: bool

    @property
    def height(self) -> float:
        return len(self.lanes) * LANE_HEIGHT + AXIS_HEIGHT

    @property
    def axis_y(self) -> float:
        return len(self.lanes) * LANE_HEIGHT


def timeline(tries: Sequence[TryView], span: Span, now: float, inputs: Sequence[Path] = ()) -> Timeline:
    workers = list(by_lane(tries))
    per_lane = max(MIN_BARS_PER_LANE, min(BARS_PER_LANE, BARS // max(len(workers), 1)))
    lanes = []
    for number, (name, lane_tries) in enumerate(workers):
        if len(lane_tries) > per_lane:
            bars = _sliced(name, lane_tries, span, now, inputs, per_lane)
        else:
            bars = [_bar(attempt, span, now, inputs) for attempt in lane_tries]
        lanes.append(
            Lane(
                name,
                number * LANE_HEIGHT,
                bars,
                len(lane_tries),
                sum(attempt.failed for attempt in lane_tries),
                sum(attempt.state == TryState.RUNNING for attempt in lane_tries),
                sum(attempt.seconds or 0.0 for attempt in lane_tries),
            )
        )
    aggregated = any(lane.tries > per_lane for lane in lanes)
    return Timeline(
        lanes, span, sum(lane.tries for lane in lanes), sum(lane.failed for lane in lanes), per_lane, aggregated
    )


def _extent(attempts: Sequence[TryView], span: Span, now: float) -> tuple[float, float]:
    timed = [attempt for attempt in attempts if attempt.started is not None]
    if not timed:
        return span.x(span.end) - MIN_BAR, MIN_BAR
    left = span.x(min(attempt.started for attempt in timed if attempt.started is not None))
    right = span.x(max(_end(attempt, now) for attempt in timed))
    return left, max(right - left, MIN_BAR)


def _bar(attempt: TryView, span: Span, now: float, inputs: Sequence[Path]) -> Bar:
    x, width = _extent([attempt], span, now)
    took = _took(attempt, now)
    at = f", started at {duration(attempt.started - span.start)}" if attempt.started is not None else ""
    label = (
        f"Mini-batch {attempt.index}, try {attempt.try_number}, {attempt.lane}: {took}{at}; "
        f"files: {_named(attempt.files, inputs)}" + (f"; error: {attempt.error}" if attempt.error else "")
    )
    return Bar(f"try-{attempt.index}-{attempt.try_number}", x, width, attempt.state, 1, int(attempt.failed), label)


def _took(attempt: TryView, now: float) -> str:
    if attempt.state == TryState.RUNNING:
        return f"running for {duration(now - attempt.started)}" if attempt.started is not None else "running"
    words = STATE_WORDS[attempt.state]
    return f"{words} after {duration(attempt.seconds)}" if attempt.seconds is not None else words


def _sliced(
    name: str, attempts: Sequence[TryView], span: Span, now: float, inputs: Sequence[Path], count: int
) -> list[Bar]:
    """One bar per 1/count of the job's life, of the tries that started in it."""
    slices: dict[int, list[TryView]] = {}
    for attempt in attempts:
        offset = (attempt.started if attempt.started is not None else span.end) - span.start
        slices.setdefault(min(int(offset / span.seconds * count), count - 1), []).append(attempt)
    return [_slice_bar(name, number, group, span, now, inputs) for number, group in sorted(slices.items())]


def _slice_bar(name: str, number: int, attempts: list[TryView], span: Span, now: float, inputs: Sequence[Path]) -> Bar:
    x, width = _extent(attempts, span, now)
    states = {attempt.state for attempt in attempts}
    state = next(state for state in SEVERITY if state in states)
    counts = ", ".join(
        f"{sum(attempt.state == state for attempt in attempts)} {STATE_WORDS[state]}"
        for state in SEVERITY
        if state in states
    )
    errors = sorted({attempt.error for attempt in attempts if attempt.error})
    files = [file for attempt in attempts for file in attempt.files]
    label = (
        f"{len(attempts)} tries of {name} from {duration(x_seconds(x, span))} to "
        f"{duration(x_seconds(x + width, span))}: {counts}; files: {_named(files, inputs)}"
        + (f"; errors: {'; '.join(errors[:3])}" if errors else "")
    )
    lane_id = name.replace(" ", "-")
    return Bar(
        f"slice-{lane_id}-{number}", x, width, state, len(attempts), sum(attempt.failed for attempt in attempts), label
    )


def x_seconds(x: float, span: Span) -> float:
    return (x - LABEL_WIDTH) / PLOT_WIDTH * span.seconds


def _named(files: Sequence[str], inputs: Sequence[Path]) -> str:
    named = ", ".join(shown_file(file, inputs) for file in files[:FILES_NAMED])
    return named + (f" and {len(files) - FILES_NAMED} more" if len(files) > FILES_NAMED else "")


@dataclass(frozen=True)
class Column:
    x: float
    y: float
    width: float
    height: float
    start: float
    """Seconds since the job started."""
    end: float
    items: int
    per_second: float


@dataclass(frozen=True)
class Throughput:
    columns: list[Column]
    span: Span
    peak: float
    items: int

    @property
    def average(self) -> float:
        return self.items / self.span.seconds

    @property
    def axis_y(self) -> float:
        return CHART_HEIGHT

    @property
    def height(self) -> float:
        return CHART_HEIGHT + AXIS_HEIGHT


def throughput(tries: Sequence[TryView], span: Span) -> Throughput:
    """Items done per second in each slice of the job's life: a mini-batch's files count as done when its last try
    ended, whether it succeeded or failed for good."""
    finals = [attempt for attempt in tries if attempt.final and attempt.started is not None]
    slices = min(COLUMNS, max(MIN_COLUMNS, len(finals) // 2))
    done = [0] * slices
    for attempt in finals:
        finished = (attempt.started or 0.0) + (attempt.seconds or 0.0) - span.start
        done[min(max(int(finished / span.seconds * slices), 0), slices - 1)] += len(attempt.files)
    seconds = span.seconds / slices
    rates = [items / seconds for items in done]
    peak = max(rates, default=0.0)
    width = PLOT_WIDTH / slices
    columns = []
    for number, (items, rate) in enumerate(zip(done, rates, strict=True)):
        height = rate / peak * (CHART_HEIGHT - 10) if peak else 0.0
        columns.append(
            Column(
                LABEL_WIDTH + number * width, CHART_HEIGHT - height, max(width - 1, 1), height,
                number * seconds, (number + 1) * seconds, items, rate,
            )
        )  # fmt: skip
    return Throughput(columns, span, peak, sum(done))


TEMPLATE_GLOBALS = {
    "duration": duration,
    "width": WIDTH,
    "label_width": LABEL_WIDTH,
    "bar_height": BAR_HEIGHT,
}
"""What the chart templates (``_job_charts.html``) lay out with."""
