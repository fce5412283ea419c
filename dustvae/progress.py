"""Progress and timing of long jobs made of named stages (evaluation, figures).

Training and the transform show a tqdm bar per epoch or batch; a job made of
unlike stages (fitting PCA, scoring each compressor, regressing labels,
drawing a figure) gets one bar over its stages, the current stage's name
beside it, and the seconds each stage took, which the job records.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator, TextIO

from tqdm.auto import tqdm


class Stages:
    """Named stages of one job, timed and shown on one progress bar.

    Parameters
    ----------
    total : int or None
        Number of stages, when known (the bar then shows a fraction and an
        estimate of the time left).
    desc : str
        The bar's label.
    enabled : bool
        Show the bar when ``file`` is a terminal (timings are recorded
        either way): logs and captured output get no carriage-return lines.
    file : text stream, optional
        Where the bar goes [default: standard error].

    Examples
    --------
    >>> stages = Stages(2, "evaluate", enabled=False)
    >>> with stages.stage("PCA fits"):
    ...     pass
    >>> list(stages.seconds)
    ['PCA fits']
    """

    def __init__(self, total: int | None, desc: str, enabled: bool = True, file: TextIO | None = None):
        self.seconds: dict[str, float] = {}
        self._bar = tqdm(total=total, desc=desc, unit="stage", disable=None if enabled else True, file=file)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name`` (times of a repeated name add up) and advance the bar after it."""
        self._bar.set_postfix_str(name, refresh=True)
        tic = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - tic
            self._bar.update(1)

    def close(self) -> None:
        self._bar.set_postfix_str("done", refresh=False)
        self._bar.close()

    def __enter__(self) -> "Stages":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
