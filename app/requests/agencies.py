"""Federal immigration authorities known by what they are (DESIGN.md, "The request rules",
rule 4), not by one exact spelling of their code: "I.C.E.", "DHS/HSI", "USCBP" and
"U.S. Immigration & Customs Enforcement" are all one thing to a reviewer, and so to screening.

Pure functions, standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.requests.citations import normalise

DEFAULT_IMMIGRATION_AGENCY_CODES: tuple[str, ...] = (
    "DHS", "ICE", "ERO", "HSI", "CBP", "USBP", "OBP", "OFO", "USCIS", "INS",
)  # fmt: skip
DEFAULT_IMMIGRATION_AGENCY_NAMES: tuple[str, ...] = (
    "homeland security",
    "immigration",
    "customs enforcement",
    "border protection",
    "border patrol",
    "naturalization",
    "enforcement and removal",
)
# Prefixes run into a code by some agencies' own spelling: "USICE", "DHSICE", "USCBP".
_PREFIXES = ("us", "dhs")


def normalise_name(text: str) -> str:
    """An agency name as words: "U.S. Immigration & Customs Enforcement" ->
    "us immigration and customs enforcement"."""
    text = normalise(text).replace("&", " and ").replace(".", "")
    text = re.sub(r"[^\w\s]|_", " ", text)
    return " ".join(text.lower().split())


_FOREIGN = re.compile(r"[^\x00-\x7f]")


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", normalise(text))


def _letter_runs(tokens: list[str]) -> list[str]:
    """Single characters spelt apart joined back together: "i c e seattle" -> "ice"."""
    runs: list[str] = []
    run = ""
    for token in tokens + [""]:
        if len(token) == 1:
            run += token
            continue
        if len(run) > 1:
            runs.append(run)
        run = ""
    return runs


def _unprefixed(candidate: str) -> list[str]:
    """The candidate, and the candidate with leading "us"/"dhs" prefixes taken off."""
    found = [candidate]
    while True:
        prefix = next((p for p in _PREFIXES if candidate.startswith(p)), None)
        if prefix is None or candidate == prefix:
            return found
        candidate = candidate[len(prefix) :]
        found.append(candidate)


class ImmigrationAuthorities:
    """The configured immigration authorities: codes (DHS, ICE, ...) and name phrases."""

    def __init__(self, codes: Sequence[str], names: Sequence[str]) -> None:
        self.codes = frozenset(self._entry("".join(_tokens(code)), code) for code in codes)
        self.names = tuple(self._entry(normalise_name(name), name) for name in names)
        self._phrases = [re.compile(rf"(?<!\S){re.escape(p)}(?!\S)") for p in self.names]

    @staticmethod
    def _entry(normalised: str, raw: str) -> str:
        if not normalised:
            raise ValueError(f"not an agency code or name: {raw!r}")
        return normalised

    def _listed(self, candidates: list[str]) -> bool:
        return any(u in self.codes for c in candidates for u in _unprefixed(c))

    def recognises(self, code: str, name: str) -> bool:
        """Whether the code or the name says it is an immigration authority. Whole tokens
        only: "ice" inside "police", "justice" or "office" never counts."""
        if _FOREIGN.search(normalise(code)):
            return True  # an agency code is ASCII: a look-alike letter ("ІСЕ") fails closed
        tokens = _tokens(code)
        if self._listed(tokens + ["".join(tokens)] + _letter_runs(tokens)):
            return True
        words = normalise_name(name)
        if any(phrase.search(words) for phrase in self._phrases):
            return True
        name_tokens = words.split()
        return self._listed(name_tokens + _letter_runs(name_tokens))
