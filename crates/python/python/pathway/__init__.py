"""Pathway from Python: rule-based treatment-pathway decision support.

Evaluate a patient in three lines::

    import pathway
    rules = pathway.RuleSet.ms_spasticity()
    result = pathway.evaluate_bundle(rules, open("bundle.json", "rb").read(), date="2026-11-22")

A result is a dict of the same shape as ``pathway evaluate --format json`` (plus ``patient``):
for each step of the ladder its ``status`` (continue, offer, caution, not-yet, excluded), the
``reasons`` (rules, texts, sources, facts and the records behind them) and the ``missing``
facts; the record's ``warnings`` and ``unrecognized`` records beside them.

A population goes faster as a table: :func:`evaluate_table` returns a ``pyarrow.Table`` with one
row per patient and step (``record``, ``patient``, ``step``, ``status``, ``rules``, ``missing``,
``error``), built in Rust on every core, so no Python object is made per patient::

    table = pathway.evaluate_table(rules, open("population.ndjson", "rb").read().splitlines(),
                                   date="2026-11-22")
"""

from __future__ import annotations

import contextlib
import gc
import json
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from . import _native
from ._native import (
    FhirError,
    PathwayError,
    ProfileError,
    RuleSet,
    RuleSetError,
    ValueSetError,
    ValueSets,
)

if TYPE_CHECKING:
    import pyarrow

__all__ = [
    "RuleSet",
    "ValueSets",
    "evaluate_bundle",
    "evaluate_profile",
    "evaluate_many",
    "evaluate_table",
    "PathwayError",
    "RuleSetError",
    "ValueSetError",
    "FhirError",
    "ProfileError",
]

Bundle = Union[bytes, str]


def evaluate_bundle(
    ruleset: RuleSet,
    bundle: Bundle,
    date: str,
    valuesets: Optional[ValueSets] = None,
    strict: bool = False,
    summary: bool = False,
) -> Dict[str, Any]:
    """Evaluates one FHIR R4 Bundle (its JSON, as bytes or str) on ``date`` (YYYY-MM-DD).

    ``summary=True`` gives, per step, only its status, decisive rule ids and missing facts
    (as ``pathway batch --detail summary``): a fraction of the cost of the full explanation.
    """
    return _dict(_native.evaluate_bundle(ruleset, bundle, date, valuesets, strict, summary))


def evaluate_profile(ruleset: RuleSet, profile: Dict[str, Any]) -> Dict[str, Any]:
    """Evaluates a Pathway profile (a dict, as ``pathway schema profile`` describes it)."""
    return json.loads(_native.evaluate_profile(ruleset, json.dumps(profile)))


def evaluate_many(
    ruleset: RuleSet,
    bundles: Iterable[Bundle],
    date: str,
    valuesets: Optional[ValueSets] = None,
    workers: Optional[int] = None,
    strict: bool = False,
    summary: bool = False,
) -> List[Tuple[Optional[Dict[str, Any]], Optional[str]]]:
    """Evaluates many Bundles on ``workers`` threads (default: every core), the GIL released.

    Returns, in input order, ``(result, None)`` or ``(None, why it could not be evaluated)``.
    ``summary`` as for :func:`evaluate_bundle`; summaries are built as dicts while the workers
    go on evaluating. For a population, :func:`evaluate_table` (no Python object per patient)
    is faster still.
    """
    with _collector_paused():
        out = _native.evaluate_many(ruleset, _population(bundles), date, valuesets, workers, strict, summary)
        return [(_dict(r) if r is not None else None, e) for r, e in out]


def evaluate_table(
    ruleset: RuleSet,
    bundles: Union[Iterable[Bundle], "pyarrow.Array", "pyarrow.ChunkedArray"],
    date: str,
    valuesets: Optional[ValueSets] = None,
    workers: Optional[int] = None,
    strict: bool = False,
) -> "pyarrow.Table":
    """Evaluates a population into a ``pyarrow.Table``: the fast path for many patients.

    ``bundles``: FHIR R4 Bundles as a list of ``bytes`` (read in place) or ``str`` (encoded
    once), or a pyarrow ``Array``/``ChunkedArray`` of strings or binary (read in place through
    the Arrow C data interface, e.g. a Spark ``mapInArrow`` batch's column). They are read and
    evaluated on ``workers`` threads (default: every core) with the GIL released, and the table
    is built in Rust. Needs ``pyarrow``.

    One row per patient and step, patients in input order and steps in ladder order, with the
    content of ``pathway batch --detail summary``:

    - ``record`` (int64): the Bundle's position in ``bundles``
    - ``patient`` (string): the Patient's id (``Patient/...``)
    - ``step``, ``status`` (string): the step and its status
    - ``rules`` (list<string>): the decisive rule ids
    - ``missing`` (list<string>): the facts whose absence could change the step
    - ``error`` (string): null, or why the record could not be evaluated: such a record has one
      row, with ``step`` and ``status`` null, empty lists, and ``patient`` when it was read
      (a bad record is reported there, as :func:`evaluate_many` reports it, never raised)
    """
    import pyarrow  # noqa: F401  (the table is a pyarrow object)

    return _native.evaluate_table(ruleset, _population(bundles), date, valuesets, workers, strict)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pauses Python's cyclic garbage collector while the results are built.

    A population's results are millions of new lists and dicts, and each 700 new containers
    set off a collection that walks the young ones (and, as they pile up, the older ones): that
    was half the cost of ``evaluate_many``. The results hold no reference cycles; the
    collector resumes as soon as they are built (the whole process's collector: another
    thread's cycles wait for it too, never longer than this call).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _dict(result: Any) -> Dict[str, Any]:
    """A full result comes as JSON text, a summary as a dict already."""
    return json.loads(result) if isinstance(result, str) else result


def _population(bundles: Any) -> Any:
    """Lists, tuples and Arrow arrays go to Rust as they are; other iterables become a list."""
    if isinstance(bundles, (str, bytes, bytearray)):
        raise PathwayError("one Bundle was given where a population is expected: pass a list of Bundles")
    if isinstance(bundles, (list, tuple)) or hasattr(bundles, "__arrow_c_array__") or hasattr(bundles, "chunks"):
        return bundles
    return list(bundles)
