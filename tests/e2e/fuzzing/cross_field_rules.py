"""Rules of the API that JSON Schema cannot state, for ``schemathesis run``.

The OpenAPI document states every rule a single field can carry; these span several
fields, and each is written in the operation's description. A positive case that
breaks one is not a valid request, so it is not offered as one; negative cases are
left alone (they test the refusals). Loaded through ``SCHEMATHESIS_HOOKS``.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any

import schemathesis


def _positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is None or meta.generation.mode.is_positive


def _distinct(values: list[Any]) -> bool:
    keys = [v for v in values if isinstance(v, Hashable)]
    return len(keys) == len(set(keys))


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


@schemathesis.hook("filter_case").apply_to(method="POST", path="/api/venues")
def area_ids_and_rows_are_distinct(_: Any, case: Any) -> bool:
    """Area ids are unique within a seat map, row labels within their area."""
    body = case.body
    if not _positive(case) or not isinstance(body, dict):
        return True
    seat_map = body.get("seat_map")
    areas = _dicts(seat_map.get("areas") if isinstance(seat_map, dict) else None)
    if not _distinct([a.get("area_id") for a in areas]):
        return False
    return all(_distinct([r.get("row") for r in _dicts(a.get("rows"))]) for a in areas)


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


@schemathesis.hook("filter_case").apply_to(method="POST", path="/api/events/{event_id}/sessions")
def session_times_follow_each_other(_: Any, case: Any) -> bool:
    """``start_time < end_time``, ``sale_start_time < sale_end_time <= end_time``, and a
    ``challenge_required`` session has ``queue_enabled`` (the challenge guards its queue)."""
    body = case.body
    if not _positive(case) or not isinstance(body, dict):
        return True
    if body.get("challenge_required") is True and body.get("queue_enabled") is not True:
        return False
    start, end, opens, closes = (
        _time(body.get(k)) for k in ("start_time", "end_time", "sale_start_time", "sale_end_time")
    )
    if start is None or end is None or opens is None or closes is None:
        return True
    return start < end and opens < closes <= end


@schemathesis.hook("filter_case").apply_to(method="POST", path="/api/orders")
def seats_of_one_area(_: Any, case: Any) -> bool:
    """An order's seats are all in one area (one partition)."""
    body = case.body
    if not _positive(case) or not isinstance(body, dict):
        return True
    if not isinstance(body.get("seat_ids"), list):
        return True
    return len({str(s).split("-", 1)[0] for s in body["seat_ids"]}) <= 1
