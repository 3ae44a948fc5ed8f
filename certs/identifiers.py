"""National identifiers: citizen ID numbers, social credit codes, e-certificate ids.

Pure functions, no I/O.

- GB 11643 公民身份号码: 6-digit division + 8-digit birth date + 3-digit order code
  (odd: male, even: female) + ISO 7064 MOD 11-2 check character (``0-9`` or ``X``).
- GB 32100 统一社会信用代码: registering department (1) + organisation kind (1) +
  6-digit registering division + 9-character organisation code + MOD 31 check.
- GB/T 36904 电子证照标识:
  ``1.2.156.3005.2.{type}.{issuer}.{serial}.{version}.{check}``, the check character
  being ISO/IEC 7064 hybrid MOD 37,36 over ``type + issuer + serial + version``.

Malformed text raises :class:`exchange.errors.MalformedError`; the message says what
was expected and what was found. ``is_valid_*`` never raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from exchange.errors import MalformedError

__all__ = [
    "ECERT_OID_PREFIX",
    "EcertIdentifier",
    "USCC_ALPHABET",
    "citizen_id_check",
    "citizen_id_division",
    "citizen_id_is_female",
    "iso7064_mod37_36_check",
    "is_valid_citizen_id",
    "is_valid_ecert_identifier",
    "is_valid_uscc",
    "make_citizen_id",
    "make_ecert_identifier",
    "make_uscc",
    "org_code_check",
    "parse_ecert_identifier",
    "uscc_check",
    "uscc_division",
]

# --------------------------------------------------------------------------- GB 11643

_CID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CID_CHECK = "10X98765432"
_CID_RE = re.compile(r"[0-9]{17}[0-9X]")
_DIGITS17_RE = re.compile(r"[0-9]{17}")
_DIVISION_RE = re.compile(r"[0-9]{6}")


def _show(value: object) -> str:
    """A short repr of a bad input for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def citizen_id_check(first17: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) for 17 digits."""
    if not isinstance(first17, str) or not _DIGITS17_RE.fullmatch(first17):
        raise MalformedError(
            f"citizen ID body: expected 17 ASCII digits, found {_show(first17)}"
        )
    total = sum(int(c) * w for c, w in zip(first17, _CID_WEIGHTS, strict=True))
    return _CID_CHECK[total % 11]


def is_valid_citizen_id(s: object) -> bool:
    """True for an 18-character ID number with a real birth date and right check.

    Strict: the check character ``X`` must be upper case.
    """
    if not isinstance(s, str) or not _CID_RE.fullmatch(s):
        return False
    try:
        date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    return citizen_id_check(s[:17]) == s[17]


def make_citizen_id(division: str, birth: date, sequence: int, *, female: bool) -> str:
    """Build an ID number: ``division`` + birth date + order code + check.

    ``sequence`` (0..999) forms the 3-digit order code; its parity carries the sex
    (odd male, even female), so it is moved to the next number of the right parity
    (999 steps down to 998 for a woman, 0 steps up to 1 for a man).
    """
    if not isinstance(division, str) or not _DIVISION_RE.fullmatch(division):
        raise MalformedError(f"division: expected 6 ASCII digits, found {_show(division)}")
    if not 0 <= sequence <= 999:
        raise MalformedError(f"order code: expected 0..999, found {sequence}")
    if not 1 <= birth.year <= 9999:  # pragma: no cover - date enforces it
        raise MalformedError(f"birth year out of range: {birth.year}")
    if (sequence % 2 == 0) != female:
        sequence = sequence - 1 if sequence == 999 else sequence + 1
    body = f"{division}{birth.year:04d}{birth.month:02d}{birth.day:02d}{sequence:03d}"
    return body + citizen_id_check(body)


def citizen_id_division(id_number: str) -> str:
    """The household-registration division (first 6 digits) of a valid ID number."""
    if not is_valid_citizen_id(id_number):
        raise MalformedError(
            "citizen ID: expected 18 characters (17 digits, a real birth date, "
            f"a GB 11643 check character), found {_show(id_number)}"
        )
    return id_number[:6]


def citizen_id_is_female(id_number: str) -> bool:
    """True if the order code (digits 15-17) of a valid ID number is even."""
    citizen_id_division(id_number)  # validates
    return int(id_number[16]) % 2 == 0


# --------------------------------------------------------------------------- GB 32100

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters of a social credit code (no I, O, S, V, Z)."""

_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(r"[0-9A-HJ-NP-RTUW-Y]{18}")
_USCC17_RE = re.compile(r"[0-9A-HJ-NP-RTUW-Y]{17}")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def uscc_check(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a code."""
    if not isinstance(first17, str) or not _USCC17_RE.fullmatch(first17):
        raise MalformedError(
            f"social credit code body: expected 17 characters of {USCC_ALPHABET}, "
            f"found {_show(first17)}"
        )
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(s: object) -> bool:
    """True for an 18-character code over the GB 32100 alphabet with the right check."""
    if not isinstance(s, str) or not _USCC_RE.fullmatch(s):
        return False
    return uscc_check(s[:17]) == s[17]


def org_code_check(first8: str) -> str:
    """GB 11714 organisation-code check character for 8 characters (0-9A-Z)."""
    if not isinstance(first8, str) or not re.fullmatch(r"[0-9A-Z]{8}", first8):
        raise MalformedError(
            f"organisation code body: expected 8 characters 0-9A-Z, found {_show(first8)}"
        )
    total = sum(int(c, 36) * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    c9 = 11 - total % 11
    return "X" if c9 == 10 else "0" if c9 == 11 else str(c9)


_SERIAL_LIMIT = 31**6


def make_uscc(division: str, serial: int, *, dept: str = "9", kind: str = "1") -> str:
    """A synthetic social credit code registered in ``division``.

    ``dept`` is the registering department (``9`` market regulation, ``1`` 机构编制
    …), ``kind`` the organisation kind (``1`` enterprise / 机关 …). The 9-character
    organisation code is ``MA`` (``MB`` when ``dept`` is not ``9``) + ``serial`` in
    6 base-31 characters + its GB 11714 check character, so distinct serials give
    distinct codes. ``serial`` must be in ``0 .. 31**6 - 1``.
    """
    if not isinstance(division, str) or not _DIVISION_RE.fullmatch(division):
        raise MalformedError(f"division: expected 6 ASCII digits, found {_show(division)}")
    for label, ch in (("dept", dept), ("kind", kind)):
        if not isinstance(ch, str) or len(ch) != 1 or ch not in _USCC_VALUE:
            raise MalformedError(
                f"{label}: expected one character of {USCC_ALPHABET}, found {_show(ch)}"
            )
    if not 0 <= serial < _SERIAL_LIMIT:
        raise MalformedError(f"serial: expected 0..{_SERIAL_LIMIT - 1}, found {serial}")
    digits = []
    n = serial
    for _ in range(6):
        n, r = divmod(n, 31)
        digits.append(USCC_ALPHABET[r])
    org8 = ("MA" if dept == "9" else "MB") + "".join(reversed(digits))
    body = f"{dept}{kind}{division}{org8}{org_code_check(org8)}"
    return body + uscc_check(body)


def uscc_division(code: str) -> str:
    """The registering division (characters 3-8) of a valid social credit code."""
    if not is_valid_uscc(code):
        raise MalformedError(
            "social credit code: expected 18 characters of "
            f"{USCC_ALPHABET} with a GB 32100 check character, found {_show(code)}"
        )
    division = code[2:8]
    if not _DIVISION_RE.fullmatch(division):
        raise MalformedError(
            f"social credit code: expected 6 digits of division at positions 3-8, "
            f"found {division!r} in {code!r}"
        )
    return division


# --------------------------------------------------------------------------- GB/T 36904

ECERT_OID_PREFIX = "1.2.156.3005.2."
"""The OID arc every e-certificate identifier starts with."""

_A36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_A36_VALUE = {c: i for i, c in enumerate(_A36)}
# _STEP[p][v]: the MOD 37,36 state after feeding value v in state p.
_STEP: tuple[tuple[int, ...], ...] = tuple(
    tuple(((((p + v) % 36) or 36) * 2) % 37 for v in range(36)) for p in range(37)
)
_A36_RE = re.compile(r"[0-9A-Z]+")


def _mod37_36_state(s: str, p: int = 36) -> int:
    step = _STEP
    value = _A36_VALUE
    for c in s:
        p = step[p][value[c]]
    return p


def iso7064_mod37_36_check(s: str) -> str:
    """ISO/IEC 7064 hybrid MOD 37,36 check character over ``s`` (``0-9A-Z`` only)."""
    if not isinstance(s, str) or not _A36_RE.fullmatch(s):
        raise MalformedError(
            f"MOD 37,36 input: expected one or more characters 0-9A-Z, found {_show(s)}"
        )
    return _A36[(37 - _mod37_36_state(s)) % 36]


_TYPE_RE = re.compile(r"[0-9A-Z]{21}")
_ISSUER_RE = re.compile(r"[0-9A-Z]{18}|[0-9]{6}")
_SERIAL_RE = re.compile(r"[0-9A-Z]{1,64}")
_VERSION_RE = re.compile(r"[0-9]{3}")
_STRUCTURE = (
    "1.2.156.3005.2.{type: 21 chars 0-9A-Z}.{issuer: 18-char code or 6-digit area}"
    ".{serial: 1-64 chars 0-9A-Z}.{version: 3 digits}.{check: 1 char}"
)


@dataclass(frozen=True, slots=True)
class EcertIdentifier:
    """The parts of a GB/T 36904 e-certificate identifier."""

    type_code: str
    issuer_code: str
    serial: str
    version: str
    check: str

    def __str__(self) -> str:
        return (
            f"{ECERT_OID_PREFIX}{self.type_code}.{self.issuer_code}."
            f"{self.serial}.{self.version}.{self.check}"
        )


def _check_parts(type_code: str, issuer_code: str, serial: str, version: str) -> None:
    for label, value, pattern, expected in (
        ("type code", type_code, _TYPE_RE, "21 characters 0-9A-Z"),
        ("issuer code", issuer_code, _ISSUER_RE, "18 characters 0-9A-Z or 6 digits"),
        ("serial", serial, _SERIAL_RE, "1-64 characters 0-9A-Z"),
        ("version", version, _VERSION_RE, "3 digits"),
    ):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise MalformedError(
                f"e-certificate identifier {label}: expected {expected}, found {_show(value)}"
            )


def make_ecert_identifier(
    type_code: str, issuer_code: str, serial: str, version: str = "001"
) -> str:
    """``1.2.156.3005.2.{type}.{issuer}.{serial}.{version}.{check}``."""
    _check_parts(type_code, issuer_code, serial, version)
    check = iso7064_mod37_36_check(type_code + issuer_code + serial + version)
    return f"{ECERT_OID_PREFIX}{type_code}.{issuer_code}.{serial}.{version}.{check}"


def parse_ecert_identifier(s: str) -> EcertIdentifier:
    """Split and verify an identifier; MalformedError says what is wrong."""
    if not isinstance(s, str) or not s.startswith(ECERT_OID_PREFIX):
        raise MalformedError(
            f"e-certificate identifier: expected {_STRUCTURE}, found {_show(s)} "
            f"(does not start with {ECERT_OID_PREFIX!r})"
        )
    parts = s[len(ECERT_OID_PREFIX) :].split(".")
    if len(parts) != 5:
        raise MalformedError(
            f"e-certificate identifier: expected {_STRUCTURE}, found {_show(s)} "
            f"({len(parts)} dot-separated parts after the prefix, expected 5)"
        )
    type_code, issuer_code, serial, version, check = parts
    _check_parts(type_code, issuer_code, serial, version)
    if len(check) != 1 or check not in _A36_VALUE:
        raise MalformedError(
            f"e-certificate identifier check: expected 1 character 0-9A-Z, found {_show(check)}"
        )
    expected = iso7064_mod37_36_check(type_code + issuer_code + serial + version)
    if check != expected:
        raise MalformedError(
            f"e-certificate identifier check character: expected {expected!r}, "
            f"found {check!r} in {s!r}"
        )
    return EcertIdentifier(type_code, issuer_code, serial, version, check)


def is_valid_ecert_identifier(s: object) -> bool:
    """True if ``s`` parses as a GB/T 36904 identifier with the right check."""
    try:
        parse_ecert_identifier(s)  # type: ignore[arg-type]
    except MalformedError:
        return False
    return True


def mod37_36_prefix_state(prefix: str, state: int = 36) -> int:
    """Internal speed-up for bulk generation: the MOD 37,36 state after ``prefix``.

    ``state`` continues from an earlier prefix's state (36 is the initial state).
    """
    return _mod37_36_state(prefix, state)


def mod37_36_finish(state: int, rest: str) -> str:
    """Internal speed-up: check character for ``prefix + rest`` given the prefix state."""
    return _A36[(37 - _mod37_36_state(rest, state)) % 36]
