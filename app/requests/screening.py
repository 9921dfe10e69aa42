"""Screening at submission (DESIGN.md, rules 2-4), as pure functions: the statutes read by the
citation grammar, immigration authorities, and the form of a court order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from app.requests import citations
from app.requests.agencies import ImmigrationAuthorities, normalise_name
from app.requests.citations import Citation, StatuteList


@dataclass(frozen=True)
class RequestPolicy:
    """The configurable lists behind rules 2-4, read by the same grammar as requests."""

    qualifying_crimes: frozenset[str]
    # Immigration violations (rule 3): by default the whole of Title 8 and every INA section.
    immigration_statutes: StatuteList
    # Offences elsewhere that make a request at least potentially immigration-related.
    immigration_related_statutes: StatuteList
    immigration_authorities: ImmigrationAuthorities
    # A court order signed longer ago than this is not taken as one (rule 4).
    court_order_max_age: timedelta


@dataclass(frozen=True)
class CourtOrderFacts:
    court: str
    judge: str
    signed_on: date


@dataclass(frozen=True)
class AgencyFacts:
    code: str
    name: str


@dataclass(frozen=True)
class Facts:
    """What screening reads from a request."""

    agency: AgencyFacts
    # The agency the information is for, when another asks on its behalf.
    information_for: AgencyFacts | None
    declared_immigration_authority: bool
    crime_category: str
    statutes: Sequence[str]
    court_order: CourtOrderFacts | None
    today: date


class ScreeningOutcome(StrEnum):
    passed = "passed"
    rejected = "rejected"


@dataclass(frozen=True)
class Screening:
    passed: bool
    rule: str
    reason: str
    immigration_authority: bool
    immigration_related: bool


# What a court or a judge is never called: blanks, placeholders, and the people and bodies
# whose signature is not a judge's (a clerk, an officer, an immigration judge of the
# executive branch, the requesting agency itself).
# Words that name nobody: blanks, placeholders, and an order that says it is not signed.
_PLACEHOLDER_WORDS = frozenset(
    (
        "na n a none nil null unknown tbd tba pending unsigned not applicable known no signed "
        "sign signature order various same see attached narrative redacted withheld x xx xxx"
    ).split()
)
# Who signs what is not a court order: a clerk, an officer, an attorney, an agency, an
# immigration judge (of the executive, not a court), with their usual abbreviations. Whole
# words or phrases of the court's or the judge's name.
_NOT_JUDICIAL = (
    "clerk clerks registrar administrator bailiff secretary notary officer ofc agent sa sac "
    "asac deportation enforcement director supervisor supervisory detective det sergeant sgt "
    "lieutenant lt captain capt cpl sheriff police investigator inspector attorney atty ausa "
    "prosecutor counsel administrative immigration imm immig immigr ij eoir bia"
).split() + ["field office", "executive office for immigration review"]
_JUDGE_TITLES = frozenset(
    {"hon", "honorable", "honourable", "judge", "justice", "magistrate", "the", "chief", "us"}
)


def _words(text: str) -> str:
    return f" {normalise_name(text)} "


def court_order_problem(
    order: CourtOrderFacts, today: date, max_age: timedelta, authorities: ImmigrationAuthorities
) -> str | None:
    """Why a court order does not look like one signed by a judge or magistrate, or None.
    Screening checks the form; the reviewers, who read the document, check the substance."""
    court, judge = normalise_name(order.court), normalise_name(order.judge)
    for what, text in (("court", court), ("judge", judge)):
        named = [w for w in text.split() if w not in _PLACEHOLDER_WORDS | _JUDGE_TITLES]
        if sum(c.isalpha() for w in named for c in w) < 2:
            return f"the order names no {what} ({getattr(order, what)!r})"
    for what, text in (("court", order.court), ("judge", order.judge)):
        official = next((w for w in _NOT_JUDICIAL if f" {w} " in _words(text)), None)
        if official is not None or authorities.recognises(text, text):
            return (
                f"the {what} named ({text!r}) is not a court's judge or magistrate: "
                "an order signed by a clerk, an officer, an attorney, an agency or an "
                "immigration judge is not a court order"
            )
    if order.signed_on > today:
        return f"the order is dated {order.signed_on}, in the future"
    if order.signed_on < today - max_age:
        return f"the order was signed on {order.signed_on}, more than {max_age.days} days ago"
    return None


def _listed(citations: Sequence[Citation]) -> str:
    return ", ".join(dict.fromkeys(str(c) for c in citations))


def screen(facts: Facts, policy: RequestPolicy) -> Screening:
    """Rules 2-4, in the order that gives the most specific reason for a rejection.

    Every statute is read by the citation grammar (app.citations). One it cannot read names
    no crime: it neither counts towards a specific crime nor pads an immigration-only
    request, and the request is rejected naming it.
    """
    read = {statute: citations.read(statute) for statute in facts.statutes}
    unreadable = [statute for statute, found in read.items() if not found]
    cited = [c for found in read.values() for c in found]
    specific = [c for c in cited if c.specific()]
    violations = [c for c in cited if policy.immigration_statutes.covers(c)]
    related_offences = [c for c in cited if policy.immigration_related_statutes.covers(c)]
    agencies = [facts.agency, *([facts.information_for] if facts.information_for else [])]
    authority = facts.declared_immigration_authority or any(
        policy.immigration_authorities.recognises(a.code, a.name) for a in agencies
    )
    related = authority or bool(violations or related_offences)

    def outcome(passed: bool, rule: str, reason: str) -> Screening:
        return Screening(passed, rule, reason, authority, related)

    if specific and all(policy.immigration_statutes.covers(c) for c in specific):
        return outcome(
            False,
            "3",
            f"every statute cited is an immigration violation ({_listed(specific)}); the crime "
            "cannot be solely an immigration violation",
        )
    if unreadable:
        return outcome(
            False,
            "2",
            f"{unreadable[0]!r} is not a statute citation (a code and a section number, such "
            "as RCW 69.50.401 or 21 U.S.C. 841), so it names no crime",
        )
    if facts.crime_category not in policy.qualifying_crimes:
        return outcome(
            False, "2", f"'{facts.crime_category}' is not a specific crime that qualifies"
        )
    if not specific:
        return outcome(False, "2", "no statute section is cited, so no specific crime is named")
    if related:
        if authority:
            why = "the request is from or for an immigration authority"
        else:
            why = f"it cites {_listed(violations + related_offences)}"
        problem = (
            court_order_problem(
                facts.court_order,
                facts.today,
                policy.court_order_max_age,
                policy.immigration_authorities,
            )
            if facts.court_order is not None
            else "there is no court order"
        )
        if problem is not None:
            return outcome(
                False,
                "4",
                f"potentially immigration-related ({why}) and not under a court order signed "
                f"by a judge or magistrate: {problem}",
            )
        return outcome(
            True,
            "4",
            f"potentially immigration-related ({why}) with a court order signed by a judge: "
            "needs the Director's and the Governor's Office's reviews after the internal "
            "three, and the order's document on file before the first",
        )
    return outcome(
        True, "2", f"a criminal investigation of a specific crime ({facts.crime_category})"
    )
