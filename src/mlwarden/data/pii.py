"""Sensitive-data scan: columns whose values or names look like personal data.

Threat model: personal data in training rows can be memorised and extracted from the
model (ATLAS AML.T0024, AML.T0057; OWASP ML03, ML04), and the data set itself then
falls under data-protection law. The scan looks at a sample of every column and flags
those where at least ``min_fraction`` of the non-missing values match a detector.

Detectors by value (the whole value, trimmed, must match):

* ``email`` — ``local@domain.tld`` (RFC 5322 "dot-atom" subset);
* ``payment_card`` — 13 to 19 digits, optionally grouped by spaces or dashes, with a
  known issuer prefix (Visa, Mastercard, American Express, Discover, JCB, Diners Club,
  UnionPay, Maestro) and a valid Luhn check digit;
* ``iban`` — country code, the country's IBAN length (SWIFT registry) and ISO 7064
  mod-97 check digits;
* ``us_ssn`` — ``AAA-GG-SSSS`` (dashes or spaces) with the SSA's rules: area not 000,
  666 or 900-999, group not 00, serial not 0000, and not the two numbers published in
  advertising (078-05-1120, 219-09-9999). Nine digits without separators are not
  taken for an SSN (too many other ids look like that);
* ``nl_bsn`` — Dutch citizen service number: nine digits written as text that pass the
  "11-test" (9·d1 + 8·d2 + … + 2·d8 − d9 divisible by 11);
* ``ip_address`` — IPv4 dotted quads and IPv6, validated with :mod:`ipaddress`;
* ``phone`` — E.164 and international numbers (``+`` then 8-15 digits, separators
  allowed), North-American ``(415) 555-2671`` / ``415-555-2671``, and national numbers
  with a trunk ``0`` and separators (``020 7946 0958``, ``06-12345678``). A run of
  digits without ``+`` or separators is not a phone number: amounts and ids are not
  flagged.

Columns of bare integers are checked for card numbers, BSNs and ``+``-prefixed phone
numbers only, and flagged only when at least half of their values match (one random
number in ten passes the Luhn check, one in eleven the 11-test); so are BSNs anywhere.
Floating-point columns are never flagged (amounts, scores). Detectors by column name
(the values cannot tell): ``person_name`` (``name``, ``first_name``, ``surname``, …),
``date_of_birth`` (``dob``, ``birth_date``, …) and ``address`` (``address``,
``street``, ``postcode``, ``zip``, …; not ``ip_address`` or ``email_address``).

Examples are masked before they leave the scan (``j***@example.com``,
``**** **** **** 4242``); no value is stored or returned in the clear. No model is
downloaded: every detector is a pattern and a checksum.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlwarden.exceptions import DataFileError, InvalidParameterError

if TYPE_CHECKING:
    from mlwarden.findings.finding import Finding

__all__ = [
    "DETECTORS",
    "PiiColumn",
    "PiiReport",
    "column_name_kind",
    "is_email",
    "is_iban",
    "is_ip_address",
    "is_nl_bsn",
    "is_payment_card",
    "is_phone",
    "is_us_ssn",
    "luhn_valid",
    "mask",
    "pii_findings",
    "scan_pii",
]

_CHECK = "data.pii"

# ----------------------------------------------------------------------- detectors
_EMAIL = re.compile(
    r"^(?![.])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}(?<![.])@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)


def is_email(value: str) -> bool:
    """``local@domain.tld`` with a plausible local part and domain."""
    return ".." not in value and _EMAIL.match(value) is not None


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn (mod 10) check."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# (first prefix, last prefix, prefix length, allowed lengths)
_IIN: tuple[tuple[int, int, int, frozenset[int]], ...] = (
    (4, 4, 1, frozenset({13, 16, 19})),  # Visa
    (51, 55, 2, frozenset({16})),  # Mastercard
    (2221, 2720, 4, frozenset({16})),  # Mastercard 2-series
    (34, 34, 2, frozenset({15})),  # American Express
    (37, 37, 2, frozenset({15})),
    (6011, 6011, 4, frozenset(range(16, 20))),  # Discover
    (644, 649, 3, frozenset(range(16, 20))),
    (65, 65, 2, frozenset(range(16, 20))),
    (3528, 3589, 4, frozenset(range(16, 20))),  # JCB
    (300, 305, 3, frozenset(range(14, 20))),  # Diners Club
    (36, 36, 2, frozenset(range(14, 20))),
    (38, 39, 2, frozenset(range(16, 20))),
    (62, 62, 2, frozenset(range(16, 20))),  # UnionPay
    (50, 50, 2, frozenset(range(13, 20))),  # Maestro
    (56, 58, 2, frozenset(range(13, 20))),
    (63, 63, 2, frozenset(range(13, 20))),
    (67, 67, 2, frozenset(range(13, 20))),
)
_CARD_SHAPE = re.compile(r"^\d+(?:[ -]\d+)*$")


def is_payment_card(value: str) -> bool:
    """13-19 digits (spaces or dashes between groups), a known issuer prefix and Luhn."""
    if not _CARD_SHAPE.match(value):
        return False
    digits = value.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19:
        return False
    known = any(
        lo <= int(digits[:n]) <= hi and len(digits) in lengths for lo, hi, n, lengths in _IIN
    )
    return known and luhn_valid(digits)


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_SHAPE = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")


def is_iban(value: str) -> bool:
    """An IBAN: known country, that country's length and ISO 7064 mod-97 = 1."""
    compact = value.replace(" ", "").upper()
    if not _IBAN_SHAPE.match(compact) or _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


_SSN = re.compile(r"^(\d{3})([- ])(\d{2})\2(\d{4})$")
_SSN_ADVERTISED = {"078051120", "219099999"}


def is_us_ssn(value: str) -> bool:
    """``AAA-GG-SSSS`` with the SSA's area, group and serial rules."""
    m = _SSN.match(value)
    if not m:
        return False
    area, group, serial = m.group(1), m.group(3), m.group(4)
    if area in ("000", "666") or area >= "900" or group == "00" or serial == "0000":
        return False
    return area + group + serial not in _SSN_ADVERTISED


def is_nl_bsn(value: str) -> bool:
    """A Dutch BSN: nine digits passing the 11-test (not all zeros)."""
    if len(value) != 9 or not value.isdigit() or value == "000000000":
        return False
    total = sum((9 - i) * (ord(ch) - 48) for i, ch in enumerate(value[:8]))
    return (total - (ord(value[8]) - 48)) % 11 == 0


def is_ip_address(value: str) -> bool:
    """An IPv4 (dotted quad) or IPv6 address."""
    if "." not in value and ":" not in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_PHONE_INTL = re.compile(r"^\+[1-9][0-9 ().\-]{6,22}$")
_PHONE_NANP = re.compile(r"^(?:\+?1[ .\-]?)?(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4}$")
_PHONE_NATIONAL = re.compile(r"^0\d{1,4}(?:[ \-/]\d{2,8}){1,3}$")


def is_phone(value: str) -> bool:
    """A phone number with structure: ``+`` and 8-15 digits, North-American
    ``(415) 555-2671``, or a national number with trunk ``0`` and separators."""
    digits = sum(ch.isdigit() for ch in value)
    if _PHONE_INTL.match(value):
        return 8 <= digits <= 15 and "((" not in value
    if _PHONE_NANP.match(value):
        return True
    return bool(_PHONE_NATIONAL.match(value)) and 9 <= digits <= 12


DETECTORS: dict[str, Callable[[str], bool]] = {
    "email": is_email,
    "iban": is_iban,
    "payment_card": is_payment_card,
    "us_ssn": is_us_ssn,
    "nl_bsn": is_nl_bsn,
    "ip_address": is_ip_address,
    "phone": is_phone,
}
"""Value detectors, in the order they are tried (the first match wins)."""

_INTEGER_DETECTORS = ("payment_card", "nl_bsn", "phone")
_STRICT_FRACTION = 0.5
"""Share of values that must match in a column of bare integers, and for the BSN
11-test, which one random 9-digit number in 11 passes."""


# ------------------------------------------------------------------------ masking
def mask(value: str, detector: str) -> str:
    """``value`` with everything but a hint hidden (``j***@example.com``,
    ``**** **** **** 4242``, ``192.*.*.*``)."""
    if detector == "email" and "@" in value:
        local, domain = value.rsplit("@", 1)
        return f"{local[:1]}***@{domain}"
    if detector == "ip_address":
        if ":" in value:
            return value.split(":", 1)[0] + ":****"
        return value.split(".", 1)[0] + ".*.*.*"
    if detector in ("person_name", "address"):
        return (value[:1] + "***") if value else ""
    if detector == "date_of_birth":
        return re.sub(r"\d", "*", value)
    keep = {"phone": 2, "nl_bsn": 3}.get(detector, 4)
    alnum = [i for i, ch in enumerate(value) if ch.isalnum()]
    shown = set(alnum[-keep:])
    if detector == "iban":
        shown |= set(alnum[:2])
    return "".join(ch if (i in shown or not ch.isalnum()) else "*" for i, ch in enumerate(value))


# ---------------------------------------------------------------- column names
_NAME_WORDS = {
    "surname", "firstname", "lastname", "fullname", "forename", "givenname",
    "familyname", "middlename", "maidenname", "username", "cardholder",
}  # fmt: skip
_NAME_QUALIFIERS = {
    "first", "last", "full", "given", "family", "middle", "maiden", "customer", "client",
    "patient", "person", "user", "employee", "holder", "account", "contact", "owner",
    "legal", "sur", "fore", "applicant", "member",
}  # fmt: skip
_DOB_WORDS = {"dob", "birthdate", "birthday", "dateofbirth"}
_ADDRESS_WORDS = {
    "address", "addr", "street", "streetaddress", "postcode", "postalcode", "zipcode",
    "zip", "housenumber",
}  # fmt: skip
_NOT_ADDRESS = {"ip", "ipv4", "ipv6", "email", "mail", "mac", "wallet", "url", "web", "server"}


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [t for t in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if t]


def column_name_kind(name: str) -> str | None:
    """``person_name``, ``date_of_birth``, ``address`` or None, from a column name."""
    tokens = _tokens(name)
    words = set(tokens)
    if words & _DOB_WORDS or ("birth" in words and words & {"date", "day", "dt"}):
        return "date_of_birth"
    if words & _NAME_WORDS or (
        "name" in words and (tokens == ["name"] or words & _NAME_QUALIFIERS)
    ):
        return "person_name"
    if (words & _ADDRESS_WORDS or {"postal", "code"} <= words) and not words & _NOT_ADDRESS:
        return "address"
    return None


# ------------------------------------------------------------------------ results
@dataclass(frozen=True)
class PiiColumn:
    """A column that looks like personal data.

    Parameters
    ----------
    column : str
        Column name.
    detector : str
        Which detector fired (a key of :data:`DETECTORS`, or ``person_name``,
        ``date_of_birth``, ``address`` for column names).
    by : str
        ``value`` or ``column_name``.
    matches : int
        Sampled values that matched (for column names: non-missing sampled values).
    checked : int
        Non-missing sampled values looked at.
    examples : list of str
        Up to three masked examples.
    rows : list of int
        The first rows (0-based) that matched.
    """

    column: str
    detector: str
    by: str
    matches: int
    checked: int
    examples: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """Share of the checked values that matched."""
        return self.matches / self.checked if self.checked else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "column": self.column,
            "detector": self.detector,
            "by": self.by,
            "matches": self.matches,
            "checked": self.checked,
            "fraction": round(self.fraction, 4),
            "examples": list(self.examples),
            "rows": list(self.rows),
        }


@dataclass(frozen=True)
class PiiReport:
    """What :func:`scan_pii` found in one table.

    Parameters
    ----------
    path : str
        The data scanned.
    rows : int
        Rows in the table.
    sampled_rows : int
        Rows looked at (all of them unless the table is larger than the sample cap).
    columns : list of str
        Every column scanned.
    found : list of PiiColumn
        Columns that look like personal data.
    """

    path: str
    rows: int
    sampled_rows: int
    columns: list[str]
    found: list[PiiColumn] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 1 when personal data was found, else 0."""
        return 1 if self.found else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``mlwarden data pii --format json``)."""
        return {
            "path": self.path,
            "rows": self.rows,
            "sampled_rows": self.sampled_rows,
            "columns": list(self.columns),
            "found": [c.to_dict() for c in self.found],
        }


# --------------------------------------------------------------------------- scan
def _values(col: Any) -> tuple[list[str], list[int], str]:
    """Non-missing values as text, their row positions, and the column's kind:
    ``text``, ``integer``, ``float`` or ``other``."""
    import pyarrow.types as pt

    t = col.type
    if pt.is_dictionary(t):
        col = col.dictionary_decode()
        t = col.type
    raw = col.to_pylist()
    rows = [i for i, v in enumerate(raw) if v is not None]
    if pt.is_string(t) or pt.is_large_string(t):
        vals = [str(raw[i]).strip() for i in rows]
        kind = "text"
        if vals and all(_NUMERIC.match(v) for v in vals):
            kind = "float" if any(ch in v for v in vals for ch in ".eE") else "integer"
        return vals, rows, kind
    if pt.is_integer(t):
        return [str(raw[i]) for i in rows], rows, "integer"
    if pt.is_floating(t):
        return [], [], "float"
    return [str(raw[i]) for i in rows], rows, "other"


_NUMERIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _scan_column(
    name: str, col: Any, min_fraction: float, max_examples: int, row_index: list[int]
) -> list[PiiColumn]:
    vals, rows, kind = _values(col)
    out: list[PiiColumn] = []
    by_name = column_name_kind(name)
    if by_name is not None and rows:
        out.append(
            PiiColumn(
                column=name,
                detector=by_name,
                by="column_name",
                matches=len(rows),
                checked=len(rows),
                examples=[mask(v, by_name) for v in vals[:max_examples]],
                rows=[row_index[r] for r in rows[:max_examples]],
            )
        )
    if kind == "float" or not vals:
        return out
    names = list(DETECTORS) if kind in ("text", "other") else list(_INTEGER_DETECTORS)
    hits: dict[str, list[int]] = {}
    for k, v in enumerate(vals):
        if not v or len(v) > 254:
            continue
        for det in names:
            if DETECTORS[det](v):
                hits.setdefault(det, []).append(k)
                break
    for det, ks in hits.items():
        need = min_fraction
        if kind == "integer" or det == "nl_bsn":
            need = max(min_fraction, _STRICT_FRACTION)
        if len(ks) / len(vals) >= need:
            out.append(
                PiiColumn(
                    column=name,
                    detector=det,
                    by="value",
                    matches=len(ks),
                    checked=len(vals),
                    examples=[mask(vals[k], det) for k in ks[:max_examples]],
                    rows=[row_index[rows[k]] for k in ks[:max_examples]],
                )
            )
    return out


def scan_pii(
    data: str | Path | Any,
    *,
    sample_rows: int = 20_000,
    min_fraction: float = 0.1,
    max_examples: int = 3,
    random_state: int = 0,
) -> PiiReport:
    """Look for personal data in a table's values and column names.

    Parameters
    ----------
    data : str, Path, pandas.DataFrame or pyarrow.Table
        A CSV/TSV (optionally ``.gz``) or Parquet file, or an in-memory table. CSV
        columns are read as text, exactly as written (a phone number keeps its
        leading ``0`` or ``+``).
    sample_rows : int, default=20_000
        Rows looked at, at most; larger tables are sampled at random (seeded).
    min_fraction : float, default=0.1
        A column is flagged when at least this share of its non-missing sampled values
        match one detector.
    max_examples : int, default=3
        Masked examples kept per column.
    random_state : int, default=0
        Seed of the row sample.

    Returns
    -------
    PiiReport

    Raises
    ------
    InvalidParameterError
        For a ``sample_rows`` below 1 or a ``min_fraction`` outside (0, 1].
    DataFileError, DataError
        As :func:`~mlwarden.data.manifest.read_arrow_table`; also a table without rows.
    """
    from mlwarden.data.manifest import _as_table, read_arrow_table

    if isinstance(sample_rows, bool) or not isinstance(sample_rows, int) or sample_rows < 1:
        raise InvalidParameterError(f"sample_rows must be a positive integer, got {sample_rows!r}")
    if not 0 < float(min_fraction) <= 1:
        raise InvalidParameterError(f"min_fraction must be in (0, 1], got {min_fraction!r}")
    if isinstance(data, str | Path):
        table = read_arrow_table(data, text=True)[0]
        where = str(data)
    else:
        table, where = _as_table(data), "table"
    n = table.num_rows
    if n == 0:
        raise DataFileError(f"{where}: no data rows; there is nothing to scan")
    if n > sample_rows:
        idx = np.sort(np.random.default_rng(random_state).choice(n, sample_rows, replace=False))
        table = table.take(idx)
        row_index = idx.tolist()
    else:
        row_index = list(range(n))
    found: list[PiiColumn] = []
    for name in table.column_names:
        found.extend(
            _scan_column(name, table.column(name), float(min_fraction), max_examples, row_index)
        )
    return PiiReport(
        path=where,
        rows=n,
        sampled_rows=table.num_rows,
        columns=list(table.column_names),
        found=found,
    )


# ------------------------------------------------------------------------ findings
def pii_findings(report: PiiReport, *, target: str | None = None) -> list[Finding]:
    """MLW-DAT-001 (values) and MLW-DAT-002 (column names) for one scan.

    Each rule gives one finding: failed with the flagged columns as evidence
    (metric ``pii_columns``, threshold 0), or passed when none was flagged.
    """
    from mlwarden.data.rules import RULE_PII_COLUMN_NAME, RULE_PII_VALUES
    from mlwarden.findings.finding import Finding

    out = []
    for rule, by in ((RULE_PII_VALUES, "value"), (RULE_PII_COLUMN_NAME, "column_name")):
        cols = [c for c in report.found if c.by == by]
        if cols:
            listed = ", ".join(
                f"{c.column!r} ({c.detector}, {c.matches}/{c.checked})" for c in cols[:10]
            )
            description = f"{len(cols)} column(s) look like personal data: {listed}. "
            description += rule.description
        else:
            description = (
                f"No column of the {report.sampled_rows} row(s) scanned looks like personal "
                f"data by {'value' if by == 'value' else 'name'}."
            )
        out.append(
            Finding.from_rule(
                rule,
                target=target or report.path,
                check=_CHECK,
                metric="pii_columns",
                value=float(len(cols)),
                threshold=0.0,
                higher_is_better=False,
                description=description,
                evidence={
                    "rows": report.rows,
                    "sampled_rows": report.sampled_rows,
                    "columns": [c.to_dict() for c in cols],
                },
                location=report.path if report.path != "table" else None,
            )
        )
    return out
