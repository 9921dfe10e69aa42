"""Federal immigration authorities known by what they are (DESIGN.md, "The request rules",
rule 4), not by one exact spelling of their code: "I.C.E.", "DHS/HSI", "USCBP" and
"U.S. Immigration & Customs Enforcement" are all one thing to a reviewer, and so to screening.

Pure functions, standard library only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from app.requests.citations import normalise

DEFAULT_IMMIGRATION_AGENCY_CODES: tuple[str, ...] = (
    "DHS", "ICE", "ERO", "HSI", "CBP", "USBP", "OBP", "OFO", "USCIS", "INS",
)  # fmt: skip
DEFAULT_IMMIGRATION_AGENCY_NAMES: tuple[str, ...] = (
    "homeland security",
    "immigration",
    "immigr",
    "immig",
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
# A code run on into more letters or digits is still the code: "HSI2", "ICEERO", "DHSOIG".
_SHORTEST_RUN_ON = 3
# A word of a name cut short with a full stop ("Sec.", "Prot.") stands for the phrase's word.
_SHORTEST_ABBREVIATION = 3


def _scripts(text: str) -> set[str]:
    """The writing systems a text's letters come from (LATIN, CYRILLIC, GREEK, ...)."""
    return {unicodedata.name(c, "UNKNOWN").split()[0] for c in text if c.isalpha()}


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

    @staticmethod
    def _entry(normalised: str, raw: str) -> str:
        if not normalised:
            raise ValueError(f"not an agency code or name: {raw!r}")
        return normalised

    def _listed(self, candidates: list[str], run_on: bool = False) -> bool:
        """Whether a candidate, with its US/DHS prefix or without, is a listed code; with
        `run_on`, also one that goes on past a listed code of three letters or more."""
        for candidate in candidates:
            for bare in _unprefixed(candidate):
                if bare in self.codes:
                    return True
                if run_on and any(
                    len(code) >= _SHORTEST_RUN_ON and bare.startswith(code) for code in self.codes
                ):
                    return True
        return False

    def _named(self, words: list[str]) -> bool:
        """Whether the name's words hold a listed phrase: word for word, with words cut
        short ("homeland sec", "border prot"), or run together ("homelandsecurity")."""
        compact = "".join(words)
        for phrase in self.names:
            wanted = phrase.split()
            if "".join(wanted) in compact:
                return True
            for start in range(len(words) - len(wanted) + 1):
                found = words[start : start + len(wanted)]
                if all(
                    have == want
                    or (
                        len(wanted) > 1
                        and len(have) >= _SHORTEST_ABBREVIATION
                        and want.startswith(have)
                    )
                    for have, want in zip(found, wanted, strict=True)
                ):
                    return True
        return False

    def recognises(self, code: str, name: str) -> bool:
        """Whether the code or the name says it is an immigration authority. Whole tokens
        only: "ice" inside "police", "justice" or "office" never counts."""
        if _FOREIGN.search(normalise(code)):
            return True  # an agency code is ASCII: a look-alike letter ("ІСЕ") fails closed
        if len(_scripts(normalise(name))) > 1:
            return True  # letters of two scripts in one name ("Homeland Sеcurity") fail closed
        tokens = _tokens(code)
        if self._listed(tokens + ["".join(tokens)] + _letter_runs(tokens), run_on=True):
            return True
        words = normalise_name(name).split()
        return self._named(words) or self._listed(words + _letter_runs(words))
