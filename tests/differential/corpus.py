"""The deterministic corpora of the verdict-soundness harness (docs/verdict-soundness.md).

    python3 tests/differential/corpus.py OUT_DIR        (or --keep: rewrite the kept corpora/*.gz)

writes, from a fixed seed and nothing else:
- `documents.json` — JSON documents of several shapes and sizes (catalogs of 100 to 500 items up to ~100 KB,
  an order, a weather forecast, a profile, metrics), the response bodies the claims are about;
- `differential.jsonl` — claims in SourceryKit's two modes (its list-form `field_extraction`, `range_threshold`
  scalar and list form), truthful and false, with the edge cases of numbers, strings, booleans, nulls, arrays and
  missing paths: run through HandoffRail and SourceryKit 1.5.0 and compared;
- `truthful.jsonl` — claims in all four modes whose values are read from the document (by a path other than the
  claim's) and written as a model would write them: each must PASS;
- `adversarial.jsonl` — false claims (off-by-one indices, near-miss numbers, case and inner-space changes, type
  confusions, neighbouring items, another document's values, tampered and untrusted evidence): none may PASS.

A line is `{"id", "document", "evidence", "kind", "claim"}`: `document` names the document the claim is about,
`evidence` which copy of it the claim cites (`genuine`, `untrusted`: served by a host no one trusts, `tampered`:
altered after it was sealed, `other`: another document), and `kind` says how the claim was made.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

SEED = 20261207
WORDS = ["alpha", "Bravo", "charlie", "delta", "Echo", "foxtrot", "golf", "hotel", "India", "juliet", "kilo",
         "lima", "Mike", "november", "oscar", "papa", "quebec", "Romeo", "sierra", "tango", "uniform", "victor"]

Path_ = tuple[Any, ...]


# ---------------------------------------------------------------------------------------------------- documents

def catalog(rng: random.Random, items: int) -> dict[str, Any]:
    rows = []
    for index in range(items):
        price = round(rng.uniform(0.5, 900), 2)
        rows.append({
            "id": index + 1,
            "sku": f"SKU-{rng.randrange(100000):05d}",
            "name": " ".join(rng.sample(WORDS, 2)),
            "price": float(round(price)) if index % 7 == 0 else price,
            "quantity": rng.randrange(0, 400),
            "in_stock": rng.random() < 0.7,
            "discontinued": None if index % 5 == 0 else rng.random() < 0.1,
            "tags": rng.sample(WORDS, rng.randrange(0, 4)),
            "rating": None if index % 9 == 0 else round(rng.uniform(1, 5), 1),
            "stats": {
                "daily_totals": [rng.randrange(0, 90) for _ in range(rng.randrange(1, 8))],
                "weekly_avg": round(rng.uniform(0, 60), 3),
                "returns": rng.randrange(0, 5),
            },
            "dimensions": {"w": rng.randrange(1, 120), "h": float(rng.randrange(1, 80)), "unit": "cm"},
        })
    return {
        "store": {"name": "Example Store", "region": "EU", "open": True},
        "items": rows,
        "summary": {"count": items, "total_value": round(sum(row["price"] * row["quantity"] for row in rows), 2),
                    "big_id": 9007199254740993, "currency": "EUR", "empty": [], "ratio": 0.1},
    }


def order(rng: random.Random) -> dict[str, Any]:
    return {
        "order": {
            "id": "ord_8d1f2c", "status": "shipped", "total": 89.5, "subtotal": 80.0, "tax": 9.5,
            "discount": 0, "negative_adjustment": -2.25, "exponent": 1.5e-7, "huge": 1e21,
            "note": "  leave at the door  ", "customer": {"name": "Ana María", "vip": False, "email": None},
            "items": [{"sku": "A-1", "qty": 2, "price": 12.0}, {"sku": "B-2", "qty": 1, "price": 65.5},
                      {"sku": "C-3", "qty": 3, "price": 0.5}],
            "flags": [True, False, None],
            "codes": ["01", "1", "1.0"],
        }
    }


def weather(rng: random.Random) -> dict[str, Any]:
    hours = 48
    return {
        "latitude": 51.5, "longitude": -0.120000124, "elevation": 23.0, "timezone": "GMT",
        "current": {"time": "2026-12-07T12:00", "interval": 900, "temperature_2m": 7.3, "is_day": 1},
        "hourly": {
            "time": [f"2026-12-07T{hour % 24:02d}:00" for hour in range(hours)],
            "temperature_2m": [round(rng.uniform(-3, 12), 1) for _ in range(hours)],
            "precipitation": [round(rng.uniform(0, 2), 2) for _ in range(hours)],
        },
    }


def profile(rng: random.Random) -> dict[str, Any]:
    node: dict[str, Any] = {"value": "deepest", "number": 42}
    for depth in range(12):
        node = {"level": depth, "child": node, "label": rng.choice(WORDS)}
    return {"user": {"id": 7, "handle": "ana", "verified": True, "score": 1e2, "ratio": 0.3333333333333333,
                     "balance": "1234.50", "zip": "02134", "nested": node, "roles": ["admin", "editor"]}}


def metrics(rng: random.Random) -> dict[str, Any]:
    return {"series": [{"name": rng.choice(WORDS), "points": [rng.randrange(-50, 50) for _ in range(10)],
                        "mean": None} for _ in range(20)],
            "matrix": [[rng.randrange(0, 9) for _ in range(4)] for _ in range(4)],
            "counters": {"ok": 1200, "failed": 3, "ratio": "0.0025"}}


def documents(rng: random.Random) -> dict[str, Any]:
    return {
        "catalog-100": catalog(rng, 100),
        "catalog-250": catalog(rng, 250),
        "catalog-500": catalog(rng, 500),
        "order": order(rng),
        "weather": weather(rng),
        "profile": profile(rng),
        "metrics": metrics(rng),
    }


# ---------------------------------------------------------------------------------------------------- paths

def nodes(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every node below the root with its path."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*path, key), child
            yield from nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*path, index), child
            yield from nodes(child, (*path, index))


def text(path: Path_) -> str:
    """`$.a.b[3].c`, the form SourceryKit's path walker and RFC 9535 both read."""
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def bracketed(path: Path_) -> str:
    """The same node in RFC 9535's bracket notation: another path to it."""
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f"['{part}']" for part in path)


def at(document: Any, path: Path_) -> Any:
    for part in path:
        document = document[part]
    return document


def number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------------- values

def written(rng: random.Random, value: Any) -> str:
    """A true value as a model might write it."""
    if isinstance(value, bool):
        return rng.choice(["true", "True", " true"] if value else ["false", "False", "false "])
    if value is None:
        return rng.choice(["null", "None"])
    if isinstance(value, int):
        forms = [str(value), f" {value} ", f"{value}.0", f"{value}.00"]
        if value and abs(value) < 10**15:
            forms.append(f"{Decimal(value):E}".replace("+", ""))
        return rng.choice(forms)
    if isinstance(value, float):
        plain = repr(value)
        forms = [plain, f" {plain}", f"{Decimal(plain).normalize():f}"]
        if value == int(value) and abs(value) < 10**15:
            forms.append(str(int(value)))
        if "e" not in plain and "." in plain:
            forms.append(plain + "0")
        return rng.choice(forms)
    if isinstance(value, str):
        return rng.choice([value, f"  {value}", f"{value}\n"])
    if rng.random() < 0.3:
        value = whole_floats_as_integers(value)
    return json.dumps(value, separators=(",", ":") if rng.random() < 0.5 else (", ", ": "))


def whole_floats_as_integers(value: Any) -> Any:
    """12.0 written 12, as a model rewriting JSON might."""
    if isinstance(value, float) and value == int(value) and abs(value) < 10**15:
        return int(value)
    if isinstance(value, list):
        return [whole_floats_as_integers(item) for item in value]
    if isinstance(value, dict):
        return {key: whole_floats_as_integers(item) for key, item in value.items()}
    return value


def python_written(value: Any) -> str:
    """A value as Python's str() writes it (what SourceryKit compares with)."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def wrong(rng: random.Random, value: Any) -> str:
    """A value that does not state `value`."""
    if isinstance(value, bool):
        return rng.choice(["false", "False", "0"] if value else ["true", "True", "1"])
    if value is None:
        return rng.choice(["0", "", "none at all", "false"])
    if number(value):
        step = rng.choice([1, 0.01, 1e-6, 10, -1])
        changed = value + step
        return repr(changed) if isinstance(changed, float) else str(changed)
    if isinstance(value, str):
        if value.strip() and value.strip().upper() != value.strip():
            return rng.choice([value.upper(), value.replace(" ", "  ") if " " in value.strip() else value + "x"])
        return value + "x" if value.strip() else "x"
    if isinstance(value, list):
        return json.dumps(value[::-1] + [0] if value else [0])
    return json.dumps({**value, "extra": 1})


def differs(claimed: str, actual: Any) -> bool:
    """Whether `claimed` misstates `actual` by any reading (numbers by value, text trimmed, JSON canonically)."""
    text = claimed.strip()
    if isinstance(actual, bool) or actual is None:
        return text.lower() not in ({"true"} if actual is True else {"false"} if actual is False else {"null", "none"})
    if number(actual):
        try:
            return Decimal(text) != Decimal(repr(actual) if isinstance(actual, float) else str(actual))
        except ArithmeticError:
            return True
    if isinstance(actual, str):
        return text != actual.strip()
    try:
        return json.loads(text) != actual
    except ValueError:
        return True


# ---------------------------------------------------------------------------------------------------- corpora

def missing_path(rng: random.Random, document: Any, leaves: list[tuple[Path_, Any]]) -> Path_:
    path, _ = rng.choice(leaves)
    choice = rng.random()
    if choice < 0.4:
        return (*path[:-1], "no_such_key")
    parent = at(document, path[:-1]) if path[:-1] else document
    for depth in range(len(path) - 1, -1, -1):
        if isinstance(path[depth], int):
            container = at(document, path[:depth])
            return (*path[:depth], len(container) + rng.randrange(0, 3), *path[depth + 1:])
    del parent
    return ("no_such_key",)


class Nodes:
    """A document's nodes by kind, computed once."""

    def __init__(self, document: Any) -> None:
        self.every = list(nodes(document))
        self.scalars = [(path, value) for path, value in self.every if not isinstance(value, (list, dict))]
        self.numbers = [(path, value) for path, value in self.scalars if number(value)]
        self.numeric = self.numbers + [(path, value) for path, value in self.every if isinstance(value, list)
                                       and value and all(number(item) for item in value)]
        self.small_containers = [(path, value) for path, value in self.every if isinstance(value, (list, dict))
                                 and len(json.dumps(value)) < 200]
        self.by_text = {text(path): path for path, _ in self.scalars}
        # Strings Python's float() reads: "1234.50", "02134", "0.0025".
        self.number_texts = [(path, value) for path, value in self.scalars if isinstance(value, str)
                             and value.strip().replace(".", "", 1).isdigit()]


def differential(rng: random.Random, docs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    names = sorted(docs)
    per_document = {name: Nodes(docs[name]) for name in names}
    for _ in range(12000):
        name = rng.choice(names)
        document, known = docs[name], per_document[name]
        every, scalars = known.every, known.scalars
        roll = rng.random()
        if roll < 0.45:
            entries = []
            for _ in range(rng.randrange(1, 4)):
                pick = rng.random()
                if pick < 0.08:
                    path, value = rng.choice(known.small_containers or scalars)
                else:
                    path, value = rng.choice(scalars)
                if pick > 0.93:
                    path = missing_path(rng, document, scalars)
                    entries.append({"path": text(path), "value": written(rng, value)})
                    continue
                form = rng.random()
                claimed = (python_written(value) if form < 0.35 else written(rng, value) if form < 0.7
                           else wrong(rng, value))
                entries.append({"path": text(path), "value": claimed})
            claim: dict[str, Any] = {"action_name": "read", "verification_mode": "field_extraction",
                                     "claimed_value": entries}
            if rng.random() < 0.1:
                claim["json_path"] = rng.choice(["$.no_such_key", "$", text(rng.choice(every)[0])])
            if rng.random() < 0.01:
                claim["claimed_value"] = []
            yield {"document": name, "kind": "field_extraction", "claim": claim}
        elif roll < 0.95:
            numeric = known.numeric
            pick = rng.random()
            if pick < 0.75:
                path, value = rng.choice(numeric)
            elif pick < 0.8 and known.number_texts:
                path, value = rng.choice(known.number_texts)
            elif pick < 0.9:
                path, value = rng.choice(scalars)
            else:
                path, value = missing_path(rng, document, scalars), None
            if isinstance(value, list):
                actual: float | None = sum(value) / len(value)
            elif number(value) or (path, value) in known.number_texts:
                actual = float(value)
            else:
                actual = None
            claim = {"action_name": "read", "verification_mode": "range_threshold", "json_path": text(path)}
            base = actual if actual is not None else rng.uniform(-10, 10)
            bounds = rng.random()
            if bounds < 0.45:
                claim["range_min"], claim["range_max"] = round(base - rng.uniform(0, 5), 2), round(base + rng.uniform(0, 5), 2)
            elif bounds < 0.6:
                claim["range_min"] = round(base - rng.uniform(-2, 5), 2)
            elif bounds < 0.75:
                claim["range_max"] = round(base + rng.uniform(-2, 5), 2)
            elif bounds < 0.82:
                claim["range_min"], claim["range_max"] = round(base + 3, 2), round(base - 3, 2)
            form = rng.random()
            if form < 0.45 and actual is not None:
                claim["claimed_value"] = actual if isinstance(value, list) else value
            elif form < 0.65 and actual is not None:
                claim["claimed_value"] = written(rng, value) if not isinstance(value, list) else repr(actual)
            elif form < 0.9:
                claim["claimed_value"] = round(base + rng.choice([1, 0.5, -2, 1e-3]), 6)
            yield {"document": name, "kind": "range_threshold", "claim": claim}
        else:
            numeric = known.numbers
            entries = []
            for _ in range(rng.randrange(1, 3)):
                path, value = rng.choice(numeric)
                entries.append({"path": text(path), "value": written(rng, value) if rng.random() < 0.7
                                else wrong(rng, value)})
            claim = {"action_name": "read", "verification_mode": "range_threshold", "claimed_value": entries,
                     "range_min": -1e30, "range_max": 1e30}
            yield {"document": name, "kind": "range_threshold list form", "claim": claim}


def truthful(rng: random.Random, docs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    names = sorted(docs)
    per_document = {name: Nodes(docs[name]) for name in names}
    for _ in range(6000):
        name = rng.choice(names)
        known = per_document[name]
        every = known.every
        path, value = rng.choice(every)
        mode = rng.random()
        # The value is read from the document through the bracketed path, the claim cites the dotted one.
        read = at(docs[name], path)
        assert read == value
        if mode < 0.35:
            claim: dict[str, Any] = {"verification_mode": "field_extraction", "json_path": text(path),
                                     "claimed_value": written(rng, read)}
            kind = "field_extraction"
        elif mode < 0.5:
            scalars = known.scalars
            entries = [{"path": bracketed(p), "value": written(rng, v)}
                       for p, v in rng.sample(scalars, min(3, len(scalars)))]
            claim = {"verification_mode": "field_extraction", "claimed_value": entries}
            kind = "field_extraction list form"
        elif mode < 0.65:
            claim = {"verification_mode": "exact", "json_path": text(path),
                     "claimed_value": float(read) if number(read) and rng.random() < 0.3 else read}
            kind = "exact"
        elif mode < 0.75:
            claim = {"verification_mode": "presence", "json_path": bracketed(path)}
            if rng.random() < 0.5:
                claim["json_path"] = text((*path[:-1], "no_such_key")) if path else "$.no_such_key"
                claim["claimed_value"] = False
            kind = "presence"
        else:
            path, read = rng.choice(known.numeric)
            values = read if isinstance(read, list) else [read]
            mean = sum(values) / len(values)
            low, high = min(values), max(values)
            form = rng.random()
            if form < 0.4:
                claim = {"claimed_value": written(rng, read) if not isinstance(read, list) else repr(mean)}
            elif form < 0.6 and isinstance(read, list):
                claim = {"aggregate": rng.choice(["min", "max", "each", "count"])}
                if claim["aggregate"] == "count":
                    low = high = len(values)
            else:
                claim = {}
            # Bounds around the value, rounded outwards to two decimals.
            # (Beyond a float's precision, 1e21, rounding may cross the value: the value itself bounds then.)
            claim.update({"verification_mode": "range_threshold", "json_path": text(path),
                          "range_min": min(low, math.floor((low - rng.uniform(0, 3)) * 100) / 100),
                          "range_max": max(high, math.ceil((high + rng.uniform(0, 3)) * 100) / 100)})
            kind = "range_threshold"
        yield {"document": name, "kind": kind, "claim": {"action_name": "read", **claim}}


def adversarial(rng: random.Random, docs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    names = sorted(docs)
    per_document = {name: Nodes(docs[name]) for name in names}
    produced = 0
    while produced < 6000:
        name = rng.choice(names)
        document, known = docs[name], per_document[name]
        scalars = known.scalars
        path, value = rng.choice(scalars)
        kind = rng.choice(["wrong value", "neighbour", "off by one", "type confusion", "presence", "range",
                           "another document", "tampered", "untrusted", "list form"])
        evidence = "genuine"
        claim: dict[str, Any]
        if kind == "wrong value":
            claim = {"verification_mode": "field_extraction", "json_path": text(path), "claimed_value": wrong(rng, value)}
            if differs(claim["claimed_value"], value) is False:
                continue
        elif kind in ("neighbour", "off by one"):
            # The value of this node, claimed at a neighbouring item's path (or one index off).
            indices = [depth for depth, part in enumerate(path) if isinstance(part, int)]
            if not indices:
                continue
            depth = rng.choice(indices)
            shifted = (*path[:depth], path[depth] + rng.choice([1, -1]), *path[depth + 1:])
            if shifted[depth] < 0:
                continue
            try:
                there = at(document, shifted)
            except (IndexError, KeyError, TypeError):
                there = KeyError
            claimed = written(rng, value)
            if there is not KeyError and not differs(claimed, there):
                continue
            claim = {"verification_mode": "field_extraction", "json_path": text(shifted), "claimed_value": claimed}
        elif kind == "type confusion":
            if isinstance(value, str):
                try:
                    confused: Any = json.loads(value)
                except ValueError:
                    confused = [value]
                if confused == value:
                    continue
            elif isinstance(value, bool) or value is None:
                confused = json.dumps(value)
            else:
                confused = str(value)
            claim = {"verification_mode": "exact", "json_path": text(path), "claimed_value": confused}
        elif kind == "presence":
            if rng.random() < 0.5:
                claim = {"verification_mode": "presence", "json_path": text(path), "claimed_value": False}
            else:
                claim = {"verification_mode": "presence", "json_path": text(missing_path(rng, document, scalars))}
        elif kind == "range":
            path, value = rng.choice(known.numbers)
            if rng.random() < 0.5:
                claim = {"verification_mode": "range_threshold", "json_path": text(path),
                         "range_min": round(value + rng.choice([0.01, 1, 50]), 2)}
                if not claim["range_min"] > value:
                    continue  # beyond a float's precision (1e21 + 0.01 is 1e21)
            else:
                near = value + max(abs(value) * 1e-6, 1e-6) * rng.choice([1, -1])
                claim = {"verification_mode": "range_threshold", "json_path": text(path), "range_min": -1e30,
                         "claimed_value": repr(near)}
        elif kind == "another document":
            other = rng.choice([candidate for candidate in names if candidate != name])
            try:
                there = at(docs[other], path)
            except (IndexError, KeyError, TypeError):
                there = KeyError
            claimed = written(rng, value)
            if there is not KeyError and not differs(claimed, there):
                continue
            claim = {"verification_mode": "field_extraction", "json_path": text(path), "claimed_value": claimed}
            evidence, name = "other", other
        elif kind == "list form":
            entries = [{"path": text(p), "value": written(rng, v)} for p, v in rng.sample(scalars, 2)]
            victim = rng.randrange(len(entries))
            actual = at(document, known.by_text[entries[victim]["path"]])
            entries[victim]["value"] = wrong(rng, actual)
            if not differs(entries[victim]["value"], actual):
                continue
            claim = {"verification_mode": "field_extraction", "claimed_value": entries}
        else:
            # Evidence that cannot be believed, whatever it says: a copy altered after it was sealed so that it
            # states the claimed value, or a copy served by an endpoint no one trusts.
            claimed = wrong(rng, value) if kind == "tampered" else written(rng, value)
            if kind == "tampered" and not differs(claimed, value):
                continue
            claim = {"verification_mode": "field_extraction", "json_path": text(path), "claimed_value": claimed}
            evidence = kind
        produced += 1
        yield {"document": name, "evidence": evidence, "kind": kind, "claim": {"action_name": "read", **claim}}


def write(directory: Path) -> None:
    rng = random.Random(SEED)
    docs = documents(rng)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "documents.json").write_text(json.dumps(docs, separators=(",", ":"), sort_keys=True) + "\n")
    for name, claims in [("differential", differential(rng, docs)), ("truthful", truthful(rng, docs)),
                         ("adversarial", adversarial(rng, docs))]:
        with (directory / f"{name}.jsonl").open("w") as file:
            for index, line in enumerate(claims):
                line.setdefault("evidence", "genuine")
                file.write(json.dumps({"id": f"{name}-{index}", **line}, sort_keys=True) + "\n")


def keep(generated: Path) -> None:
    """Rewrites the labelled corpora kept in the repository (corpora/*.gz) from `generated`."""
    kept = Path(__file__).resolve().parent / "corpora"
    kept.mkdir(exist_ok=True)
    for name in ("documents.json", "truthful.jsonl", "adversarial.jsonl"):
        (kept / f"{name}.gz").write_bytes(gzip.compress((generated / name).read_bytes(), 9, mtime=0))


if __name__ == "__main__":
    if sys.argv[1:] == ["--keep"]:
        with tempfile.TemporaryDirectory() as scratch:
            write(Path(scratch))
            keep(Path(scratch))
    else:
        write(Path(sys.argv[1]))
