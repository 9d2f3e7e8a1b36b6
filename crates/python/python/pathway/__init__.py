"""Pathway from Python: rule-based treatment-pathway decision support.

Evaluate a patient in three lines::

    import pathway
    rules = pathway.RuleSet.ms_spasticity()
    result = pathway.evaluate_bundle(rules, open("bundle.json", "rb").read(), date="2026-11-22")

A result is a dict of the same shape as ``pathway evaluate --format json`` (plus ``patient``):
for each step of the ladder its ``status`` (continue, offer, caution, not-yet, excluded), the
``reasons`` (rules, texts, sources, facts and the records behind them) and the ``missing``
facts; the record's ``warnings`` and ``unrecognized`` records beside them.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

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

__all__ = [
    "RuleSet",
    "ValueSets",
    "evaluate_bundle",
    "evaluate_profile",
    "evaluate_many",
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
    return json.loads(_native.evaluate_bundle(ruleset, bundle, date, valuesets, strict, summary))


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
    ``summary`` as for :func:`evaluate_bundle`.
    """
    out = _native.evaluate_many(ruleset, list(bundles), date, valuesets, workers, strict, summary)
    return [(json.loads(r) if r is not None else None, e) for r, e in out]
