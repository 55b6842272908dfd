"""The by-design disagreements with SourceryKit 1.5.0 (docs/verdict-soundness.md, "Where we differ, and why").

`classify(claim, document, ours, theirs)` names the class a disagreement belongs to, from the claim and the
document alone (never from a label the generator attached), or None: a disagreement no class explains fails the
run. Each class is a rule of our contract (docs/evaluator.md) that SourceryKit does not follow; the docs give the
reason for each.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

MISSING = object()


def walk(document: Any, path: str) -> Any:
    """The node at a `$.a[1].b` path, or MISSING (indices are non-negative in the corpus)."""
    cursor = document
    for piece in path[1:].replace("[", ".[").split("."):
        if not piece:
            continue
        if piece.startswith("["):
            inner = piece[1:-1].strip("'")
            if inner.isdigit() and isinstance(cursor, list) and int(inner) < len(cursor):
                cursor = cursor[int(inner)]
                continue
            if not inner.isdigit() and isinstance(cursor, dict) and inner in cursor:
                cursor = cursor[inner]
                continue
            return MISSING
        if not isinstance(cursor, dict) or piece not in cursor:
            return MISSING
        cursor = cursor[piece]
    return cursor


def python_text(value: Any) -> str | None:
    """What SourceryKit compares a claimed value with: str() of a scalar, sorted compact JSON of a container."""
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def sourcerykit_states(claimed: str, actual: Any) -> bool:
    """SourceryKit's field_extraction rule for one entry."""
    expected = python_text(actual)
    if isinstance(actual, (list, dict)):
        try:
            parsed = json.loads(claimed.strip())
            if isinstance(parsed, (list, dict)):
                claimed = json.dumps(parsed, sort_keys=True, separators=(",", ":"))
        except ValueError:
            pass
    return expected is not None and claimed.strip() == expected.strip()


def decimal(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        return None


def json_number_text(text: str) -> bool:
    """Whether `text` (trimmed) is a JSON number, the only text our evaluator reads as a number."""
    try:
        value = json.loads(text.strip())
    except ValueError:
        return False
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def entries_sourcerykit_refuses(claim: dict[str, Any], document: Any) -> list[tuple[str, Any]]:
    """The list-form entries SourceryKit's rule does not accept: (each one's value, the actual at its path)."""
    refused = []
    for entry in claim["claimed_value"]:
        actual = walk(document, entry["path"])
        if actual is MISSING or not sourcerykit_states(entry["value"], actual):
            refused.append((entry["value"], actual))
    return refused


def same_by_value(claimed: str, actual: Any) -> bool:
    """`claimed` (JSON text) and `actual` are equal when numbers are compared by value."""
    try:
        return bool(json.loads(claimed, parse_float=Decimal, parse_int=Decimal) == json.loads(
            json.dumps(actual), parse_float=Decimal, parse_int=Decimal))
    except ValueError:
        return False


def entry_kind(claimed: str, actual: Any) -> str | None:
    """Why an entry SourceryKit refuses states its actual by our rules, or None if it does not."""
    if isinstance(actual, bool):
        return "boolean" if claimed.strip() == json.dumps(actual) else None
    if actual is None:
        return "null" if claimed.strip() in ("null", "None") else None
    if isinstance(actual, (int, float)):
        return "number" if decimal(claimed) == decimal(repr(actual)) else None
    if isinstance(actual, (list, dict)):
        return "container" if same_by_value(claimed, actual) else None
    return None


def refused_entry_kind(claim: dict[str, Any], document: Any, ours: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    """For a list-form field_extraction claim we PASS and SourceryKit CAUGHT: why its first refused entry states
    the actual by our rules — provided every entry it refuses does (else None: unexplained)."""
    if not (ours["result"] == "PASS" and theirs["result"] == "CAUGHT"
            and claim["verification_mode"] == "field_extraction" and isinstance(claim.get("claimed_value"), list)):
        return None
    kinds = [entry_kind(claimed, actual) for claimed, actual in entries_sourcerykit_refuses(claim, document)]
    if not kinds or None in kinds:
        return None
    return kinds[0]


# --- the classes: name -> (rule, reason). Rules see the claim, the document, our result and SourceryKit's.

def raises_on_unresolvable_entry(claim: dict[str, Any], document: Any, ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    return (theirs["result"] == "RAISES" and isinstance(claim.get("claimed_value"), list)
            and any(walk(document, entry["path"]) is MISSING for entry in claim["claimed_value"])
            and ours["result"] == "CAUGHT" and ours["reason"] == "path_not_found")


def booleans_as_json(*args: Any) -> bool:
    return refused_entry_kind(*args) == "boolean"


def null_stated(*args: Any) -> bool:
    return refused_entry_kind(*args) == "null"


def numbers_by_value(*args: Any) -> bool:
    return refused_entry_kind(*args) == "number"


def containers_by_value(*args: Any) -> bool:
    return refused_entry_kind(*args) == "container"


def invalid_bounds(claim: dict[str, Any], document: Any, ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    low, high = claim.get("range_min"), claim.get("range_max")
    return (claim["verification_mode"] == "range_threshold" and ours["result"] == "ERROR"
            and ours["reason"] == "invalid_claim" and theirs["result"] == "CAUGHT"
            and ((low is None and high is None) or (low is not None and high is not None and low > high)))


def range_without_claimed_value(claim: dict[str, Any], document: Any, ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    return (claim["verification_mode"] == "range_threshold" and claim.get("claimed_value") is None
            and ours["result"] == "PASS" and theirs["result"] == "CAUGHT"
            and theirs["detail"] == "claimed_value does not match indexed numeric at path")


def range_list_form(claim: dict[str, Any], document: Any, ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    return (claim["verification_mode"] == "range_threshold" and isinstance(claim.get("claimed_value"), list)
            and theirs["result"] == "CAUGHT" and ours["result"] == "PASS")


def float_text(value: Any) -> bool:
    """A string Python's float() reads that is not JSON number text ("02134", " 01")."""
    return isinstance(value, str) and not json_number_text(value) and decimal(value) is not None


def text_that_is_not_a_json_number(claim: dict[str, Any], document: Any, ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """The actual or the claimed value is a string Python's float() reads (a zip code "02134") but that is not
    JSON number text: SourceryKit compares it as a number; we do not read it as one."""
    if claim["verification_mode"] != "range_threshold":
        return False
    actual = walk(document, claim.get("json_path") or "$")
    return ((float_text(actual) and ours["result"] == "CAUGHT" and ours["reason"] == "not_numeric")
            or (float_text(claim.get("claimed_value")) and ours["result"] == "ERROR"
                and ours["reason"] == "invalid_claim"))


def claims_nothing(claim: dict[str, Any], document: Any, ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    return (claim.get("claimed_value") == [] and theirs["result"] == "PASS" and ours["result"] != "PASS")


CLASSES: dict[str, tuple[Callable[..., bool], str]] = {
    "SourceryKit raises on an entry whose path does not resolve": (
        raises_on_unresolvable_entry,
        "an out-of-range index or a missing key escapes SourceryKit's evaluator as an exception; a claim about a "
        "value that is not there is CAUGHT path_not_found"),
    "booleans written as JSON": (
        booleans_as_json,
        "SourceryKit compares with Python's text (True); a model writes JSON (true), which states the same boolean"),
    "null stated as null": (
        null_stated,
        "SourceryKit never accepts a claim about a null; null (or None) states it"),
    "numbers compared by value": (
        numbers_by_value,
        "SourceryKit compares number text (12.0 vs 12, 8.95E1 vs 89.5); a number is its value, exactly"),
    "arrays and objects compared by value": (
        containers_by_value,
        "SourceryKit compares canonical text, in which 12 and 12.0 differ; containers are equal when their "
        "members are"),
    "range bounds missing or min above max": (
        invalid_bounds,
        "a range with no bounds or an empty one cannot be checked: ERROR invalid_claim, not a verdict on the agent"),
    "range claim without a claimed value": (
        range_without_claimed_value,
        "SourceryKit requires claimed_value to equal the value; a range claim that states only bounds holds when "
        "the value lies within them"),
    "range claims in list form": (
        range_list_form,
        "SourceryKit answers CAUGHT to every list-form range claim; each entry is checked"),
    "text that is not a JSON number": (
        text_that_is_not_a_json_number,
        "Python's float() reads \"02134\" (a zip code) as 2134; only JSON number text is read as a number"),
    "a claim that claims nothing": (
        claims_nothing,
        "SourceryKit passes a list-form claim with no entries; a claim that states nothing verifies nothing"),
}


def classify(claim: dict[str, Any], document: Any, ours: dict[str, Any], theirs: dict[str, Any]) -> str | None:
    for name, (rule, _reason) in CLASSES.items():
        if rule(claim, document, ours, theirs):
            return name
    return None
