"""Progress of long jobs, said once for every layer (data, features, training, evaluation, download).

A job that takes long shows a tqdm bar on stderr when stderr is a terminal, or when the user asks for
bars anyway (``CAPTIONER_PROGRESS=1``, e.g. in a CI log); a job may also be told not to show one
(``enabled=False``). Keras and the transformers Trainer get the same decision through
:func:`keras_verbosity` and :func:`showing_bars`.
"""

from __future__ import annotations

import sys

from captioner import environment


def showing_bars(enabled: bool = True) -> bool:
    """Whether a job that may show progress (``enabled``) draws bars here."""
    return enabled and (sys.stderr.isatty() or environment.current().progress)


def progress_bar(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it", enabled: bool = True,
                 **options):
    """A tqdm bar on stderr (usable as a context manager); silent where :func:`showing_bars` says no.
    ``options`` go to tqdm (``initial``, ``unit_scale``, ...)."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not showing_bars(enabled), file=sys.stderr,
                dynamic_ncols=True, **options)


def keras_verbosity(enabled: bool = True) -> int:
    """Keras ``fit(verbose=...)``: a bar per epoch where bars show, one line per epoch otherwise, 0 when off."""
    if not enabled:
        return 0
    return 1 if showing_bars() else 2
