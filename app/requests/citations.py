"""Statute citations read the way a lawyer reads them (DESIGN.md, "The request rules", rule 3).

Screening must tell an immigration statute from any other however an agency spells it, so the
grammar is written once: `read` uses it on a request's statutes and `StatuteList` on the
configured lists, and the two cannot disagree. It fails closed: text that might name federal
immigration law but does not parse, or that holds look-alike characters, is not a citation.

Pure functions, standard library only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

USC: Final = "USC"
INA: Final = "INA"


@dataclass(frozen=True, order=True)
class Section:
    """A section number as the Code numbers it: 1324a sorts after 1324 and before 1325."""

    number: int
    suffix: str = ""

    def __str__(self) -> str:
        return f"{self.number}{self.suffix}"


Range = tuple[Section, Section]


@dataclass(frozen=True)
class Citation:
    """One citation: a U.S. Code title and sections, INA sections, or another code's section.

    `code_words` keeps another code's words (dots removed, upper case) so that a list entry's
    code can match a longer spelling of it; it takes no part in equality.
    """

    code: str
    title: int | None
    sections: tuple[Range, ...]
    section_text: str | None
    code_words: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def specific(self) -> bool:
        """Whether a specific crime can be read from it: it names at least one section."""
        if self.code in (USC, INA):
            return bool(self.sections)
        return self.section_text is not None

    def usc(self) -> Citation | None:
        """The Title 8 equivalent of an INA citation, when every section of it is mapped."""
        if self.code == USC:
            return self
        if self.code != INA or not self.sections:
            return None
        ranges: list[Range] = []
        for low, high in self.sections:
            a, b = INA_TO_USC.get(str(low)), INA_TO_USC.get(str(high))
            if a is None or b is None:
                return None
            first, last = sorted((Section(*a), Section(*b)))
            ranges.append((first, last))
        return Citation(USC, 8, tuple(ranges), None)

    def __str__(self) -> str:
        if self.code == USC:
            head = f"{'' if self.title is None else self.title} U.S.C.".lstrip()
            return f"{head} {_sections_text(self.sections)}" if self.sections else head
        if self.code == INA:
            if not self.sections:
                return "INA"
            text = f"INA {_sections_text(self.sections, upper=True)}"
            equivalent = self.usc()
            return f"{text} ({equivalent})" if equivalent else text
        parts = [] if self.title is None else [str(self.title)]
        parts.append(" ".join(self.code_words) or self.code)
        if self.section_text:
            base, paren, rest = self.section_text.partition("(")
            parts.append(base.upper() + paren + rest)
        return " ".join(parts)


def _sections_text(sections: tuple[Range, ...], upper: bool = False) -> str:
    def one(section: Section) -> str:
        return str(section).upper() if upper else str(section)

    items = [one(lo) if lo == hi else f"{one(lo)}-{one(hi)}" for lo, hi in sections]
    single = len(sections) == 1 and sections[0][0] == sections[0][1]
    return ("§ " if single else "§§ ") + ", ".join(items)


# --- Normalisation -------------------------------------------------------------------------

_INVISIBLE_EXTRA = frozenset(
    [0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, 0x180B, 0x180C, 0x180D, 0x180F]
    + list(range(0xFE00, 0xFE10))
    + list(range(0xE0100, 0xE01F0))
)
_DASHES = {cp: "-" for cp in [*range(0x2010, 0x2016), 0x2212, 0xFE58, 0xFE63, 0xFF0D]}


def _is_invisible(char: str) -> bool:
    return ord(char) in _INVISIBLE_EXTRA or unicodedata.category(char) == "Cf"


def _is_space(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def normalise(text: str) -> str:
    """What every judgement starts from: NFKC, invisible characters removed, dashes to "-",
    whitespace to one space, stripped, lower case. Look-alike letters are left alone, so that
    the grammar (ASCII only) refuses them rather than reading them as something else."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if not _is_invisible(c)).translate(_DASHES)
    text = "".join(" " if _is_space(c) else c for c in text)
    return re.sub(" {2,}", " ", text).strip().lower()


# --- The grammar ---------------------------------------------------------------------------
# Patterns run on normalised text: lower case, single spaces.

_MARKER = r"(?:§\s?§|§|¶|secs?\.?|sections?|ss?\.)"
# A section number: leading zeros dropped, letter suffix (1324a) but not an ordinal (2nd).
_SEC = r"0*\d{1,5}(?!(?:st|nd|rd|th)(?![a-z]))[a-z]{0,4}(?![a-z0-9])"
_SUBS = r"(?:\s?\([a-z0-9]{1,6}\))*"
_USC_CODE = (
    r"(?<![a-z])(?:u\.?\s?s\.?\s?c\.?(?:\s?[as]\.?)?|u\.?\s?s\.?\s?code|united\s?states\s?code)"
    r"(?:\s?(?:annotated|ann\.|service))?(?![a-z])"
)
_INA_NAME = (
    r"(?<![a-z])(?:ina|i\.\s?n\.\s?a\.?|i\sn\sa"
    r"|imm(?:igration|\.)?\s?(?:and|&)\s?nat(?:ionality|\.|'l)?\s?act)"
    r"(?:\s?of\s1952)?(?:\s?\((?:ina|i\.n\.a\.)\))?(?![a-z])"
)
# A further item of a list or the end of a range: never the title of the next citation
# ("8 U.S.C. 1325 and 21 U.S.C. 841").
_NEXT = rf"(?:{_MARKER}\s?)?{_SEC}(?!\s?[,\-]?\s?(?:of\s(?:the\s)?)?{_USC_CODE}){_SUBS}"
_TO = r"\s?(?:-|to\b|through\b|thru\b)\s?"
_AND = r"\s?(?:,|;|&|and\b|or\b)(?:\s?(?:and\b|or\b|&))?\s?"
# Possessive: a list that is not followed by what a form needs is not tried shorter.
_SECLIST = rf"{_SEC}{_SUBS}(?:{_TO}{_NEXT})?(?:{_AND}{_NEXT}(?:{_TO}{_NEXT})?)*+"
_TITLE_NO = r"0*(?P<{}>\d{{1,3}})(?![0-9a-z])"
_OF_THE = r"(?:of\s(?:the\s)?)?"


def _title(name: str) -> str:
    return _TITLE_NO.format(name)


_FORMS = [
    # 8 U.S.C. § 1325 / Title 8 of the United States Code, Section 1325 / 8 U.S.C.
    rf"(?<![0-9a-z])(?:title\s?)?0*(?P<a_t>\d{{1,3}})\s?[,\-]?\s?{_OF_THE}{_USC_CODE}"
    rf"(?:\s?[-:,]?\s?(?:{_MARKER}\s?)?(?P<a_s>{_SECLIST}))?",
    # U.S.C. Title 8, § 1325
    rf"{_USC_CODE}\s?,?\s?title\s?{_title('c_t')}"
    rf"(?:\s?,?\s?(?:{_MARKER}\s?)?(?P<c_s>{_SECLIST}))?",
    # Section 1325 of Title 8 / § 1325 of 8 U.S.C.
    rf"(?<![a-z0-9])(?:{_MARKER}\s?)?(?P<d_s>{_SECLIST})\s?,?\s?of\s(?:the\s)?"
    rf"(?:title\s?{_title('d_t')}(?:\s?,?\s?{_OF_THE}{_USC_CODE})?"
    rf"|0*(?P<d_u>\d{{1,3}})\s?{_USC_CODE})",
    # Title 8, Section 1325 / Title 8
    rf"(?<![a-z])title\s?{_title('b_t')}(?:\s?,?\s?(?:{_MARKER}\s?)?(?P<b_s>{_SECLIST}))?",
    # Section 275 of the INA
    rf"(?<![a-z0-9])(?:{_MARKER}\s?)?(?P<f_s>{_SECLIST})\s?,?\s?of\s(?:the\s)?{_INA_NAME}",
    # INA § 275 / Immigration and Nationality Act
    rf"{_INA_NAME}(?:\s?[-:,]?\s?(?:{_MARKER}\s?)?(?P<e_s>{_SECLIST}))?",
]
_FEDERAL = re.compile("|".join(f"(?:{form})" for form in _FORMS))
_TOKEN = re.compile(r"0*(\d+)([a-z]*)|(-|\bto\b|\bthrough\b|\bthru\b)")
_SUBSECTION = re.compile(r"\s?\([a-z0-9]{1,6}\)")

# Any other code: one to five words, optionally a number before, then a section.
_PLACEHOLDERS = (
    "x xx na nil null none unknown tbd tba pending see narrative various same other misc"
).split()
_NOT_CODE = ["section", "sections", "sec", "secs", "s", "ss", "title", "titles", "et", "seq"]
_STOP = "|".join(r"\.?".join(word) for word in _PLACEHOLDERS + _NOT_CODE)
_WORD = rf"(?!(?:{_STOP})\.?(?![a-z.&]))[a-z&][a-z.&]*"
_OTHER = re.compile(
    rf"(?<![a-z0-9.&/:\-])(?:0*(?P<t>\d{{1,4}})\s)?(?P<code>{_WORD}(?:\s{_WORD}){{0,4}})"
    rf"\s?[,:\-]?\s?(?:{_MARKER}\s?)?(?P<sec>\d[a-z0-9.:/\-]*)(?P<subs>(?:\s?\([a-z0-9]{{1,6}}\))*)"
)
# Words that name federal law: a code spelled with them but not read as USC/INA is refused.
# Federal law the grammar reads only as the U.S. Code or the INA; the INA's other names (its
# public law, its Statutes at Large pages, the McCarran-Walter Act); and the Code of Federal
# Regulations, which holds regulations, not crimes (8 C.F.R. is immigration's): a code like
# these that the grammar did not read is no citation.
_FEDERAL_WORDS = re.compile(
    r"\|usc|usc[as]?\||\|us\||\|us\|code|\|united\|?states|\|ina\||immigra|nationality|\|alien"
    r"|\|cfr\||\|federal\|regulations|\|pub\|?l\||\|pl\||\|public\|laws?\||mccarran|walter"
    r"|^\|stats?\|$"
)
# Words of a document, not of a code: "Count 1", "Case 2024", "Page 3" name no statute. A
# code made only of these (and placeholders) is no code.
_DOCUMENT_WORDS = frozenset(
    (
        "count counts case cases page pages statute no nos number num ref reference item items "
        "docket file report exhibit paragraph para line charge charges offense offence "
        "violation violations crime crimes act rule rules article part id incident ticket "
        "warrant order unit cause matter agency dept department police county city state court"
    ).split()
)
_FOREIGN = re.compile(r"[^\x00-\x7f§¶]")
# Longer than any statute entry: refused rather than searched (the search is quadratic).
_LONGEST = 1000


def _ranges(text: str) -> tuple[Range, ...]:
    """The inclusive ranges a matched section list names ("1325-26, 1327" -> two)."""
    ranges: list[Range] = []
    pending_to = False
    for token in _TOKEN.finditer(_SUBSECTION.sub("", text)):
        if token[3]:
            pending_to = bool(ranges)
            continue
        section = Section(int(token[1]), token[2])
        if pending_to:
            low = ranges.pop()[0]
            ranges.append(_range(low, section, token[1]))
        else:
            ranges.append((section, section))
        pending_to = False
    return tuple(ranges)


def _range(low: Section, high: Section, high_digits: str) -> Range:
    if high < low and len(high_digits) < len(str(low.number)):
        # "1325-26": the end repeats the start's leading digits.
        prefix = str(low.number)[: -len(high_digits)]
        high = Section(int(prefix + high_digits), high.suffix)
        return (low, high) if low <= high else (low, low)
    return (low, high) if low <= high else (high, low)


def _federal(match: re.Match[str]) -> Citation:
    groups = {name: value for name, value in match.groupdict().items() if value is not None}
    sections = next((_ranges(v) for k, v in groups.items() if k.endswith("_s")), ())
    if "e_s" in groups or "f_s" in groups or not any(k.endswith(("_t", "_u")) for k in groups):
        return Citation(INA, None, sections, None)
    title = next(int(v) for k, v in groups.items() if k.endswith(("_t", "_u")))
    return Citation(USC, title, sections, None)


def _names_federal_law(code: str) -> bool:
    """Whether code words could be read as the U.S. Code or the INA: single letters run
    together ("u.s.c.", "i n a"), then the words checked at their starts (and "usc" at their
    ends too), so that "criminal", "ordinance" or "Muscogee" do not count."""
    compact: list[str] = []
    run = ""
    for part in re.findall(r"[a-z]+", code):
        if len(part) == 1:
            run += part
            continue
        if run:
            compact.append(run)
            run = ""
        compact.append(part)
    if run:
        compact.append(run)
    return bool(_FEDERAL_WORDS.search("|" + "|".join(compact) + "|"))


def _other(text: str) -> list[Citation]:
    """The first other-code citation of an entry, or none where any code in it is federal
    law that the USC/INA grammar could not read."""
    found: list[Citation] = []
    for match in _OTHER.finditer(text):
        code = match["code"]
        before = text[: match.start()].rstrip()
        if _names_federal_law(code) or before.endswith("title"):
            return []
        if sum(c.isalpha() for c in code) < 2:
            continue
        if {w.strip(".") for w in code.split()} <= _DOCUMENT_WORDS | set(_PLACEHOLDERS):
            continue
        words = tuple(w.replace(".", "").upper() for w in code.split())
        section = match["sec"].rstrip(".:/-") + match["subs"].replace(" ", "")
        title = None if match["t"] is None else int(match["t"])
        found.append(Citation("".join(words), title, (), section, words))
    return found[:1]


def read(entry: str) -> list[Citation]:
    """The citations in one "statute" entry of a request; [] where it is not a citation.

    A USC or INA citation anywhere in the entry makes the entry's citations those; only an
    entry without one is read for another code."""
    text = normalise(entry)
    if len(text) > _LONGEST or _FOREIGN.search(text):
        return []
    found: list[Citation] = []
    for match in _FEDERAL.finditer(text):
        citation = _federal(match)
        if citation not in found:
            found.append(citation)
    if not found:
        return _other(text)
    equivalents = {c.usc() for c in found if c.code == INA}
    return [c for c in found if c.code == INA or c not in equivalents]


# --- Lists ---------------------------------------------------------------------------------

# Chapter 12 of Title 8 (8 U.S.C. §§ 1101-1537) is the Immigration and Nationality Act.
_ACT_IN_TITLE_8: Final[Range] = (Section(1101), Section(1537, "zzzz"))


def _in_title_8(citation: Citation) -> tuple[Range, ...]:
    """An INA citation's sections as Title 8 ranges; an unmapped one as the whole Act."""
    if not citation.sections:
        return (_ACT_IN_TITLE_8,)
    ranges: list[Range] = []
    for low, high in citation.sections:
        one = Citation(INA, None, ((low, high),), None).usc()
        ranges.append(one.sections[0] if one else _ACT_IN_TITLE_8)
    return tuple(ranges)


def _overlap(a: tuple[Range, ...], b: tuple[Range, ...]) -> bool:
    return any(x[0] <= y[1] and y[0] <= x[1] for x in a for y in b)


def _meet(a: tuple[Range, ...], b: tuple[Range, ...]) -> bool:
    """Whether two section lists share a section; () is the whole title or Act."""
    return not a or not b or _overlap(a, b)


def _same_section(listed: str | None, cited: str | None) -> bool:
    if listed is None or cited is None:
        return listed is None
    return cited == listed or cited.startswith(listed + "(") or listed.startswith(cited + "(")


def _covers(entry: Citation, cited: Citation) -> bool:
    if cited.code in (USC, INA) or entry.code in (USC, INA):
        if entry.code == cited.code:
            return entry.title == cited.title and _meet(entry.sections, cited.sections)
        if entry.code == USC and cited.code == INA:
            return entry.title == 8 and (
                not entry.sections or _overlap(entry.sections, _in_title_8(cited))
            )
        if entry.code == INA and cited.code == USC:
            return cited.title == 8 and (
                not cited.sections or _overlap(_in_title_8(entry), cited.sections)
            )
        return False
    listed_words = entry.code_words or (entry.code,)
    cited_words = cited.code_words or (cited.code,)
    if cited_words[len(cited_words) - len(listed_words) :] != listed_words:
        return False
    if entry.title is not None and entry.title != cited.title:
        return False
    return _same_section(entry.section_text, cited.section_text)


class StatuteList:
    """A configured list of statutes (the immigration statutes, say), read by the same grammar
    as the requests it judges."""

    def __init__(self, entries: Sequence[str]) -> None:
        citations: list[Citation] = []
        for entry in entries:
            read_ = read(entry)
            if not read_:
                raise ValueError(f"not a statute citation: {entry!r}")
            citations.extend(read_)
        self.citations: tuple[Citation, ...] = tuple(citations)

    def covers(self, citation: Citation) -> bool:
        """Whether any section of the citation (or the whole code or title) is listed."""
        return any(_covers(entry, citation) for entry in self.citations)


DEFAULT_IMMIGRATION_STATUTES: tuple[str, ...] = ("8 U.S.C.", "INA")
DEFAULT_IMMIGRATION_RELATED_STATUTES: tuple[str, ...] = (
    "18 U.S.C. 758",
    "18 U.S.C. 911",
    "18 U.S.C. 1015",
    "18 U.S.C. §§ 1423-1429",
    "18 U.S.C. §§ 1541-1546",
)


def _ina_table() -> dict[str, tuple[int, str]]:
    """INA sections and their Title 8 sections, only where the codification is certain."""
    table = {
        "101": 1101, "102": 1102, "103": 1103, "104": 1104, "105": 1105,
        "201": 1151, "202": 1152, "203": 1153, "204": 1154, "205": 1155, "206": 1156,
        "207": 1157, "208": 1158, "209": 1159, "210": 1160,
        "211": 1181, "212": 1182, "213": 1183, "214": 1184, "215": 1185, "217": 1187,
        "218": 1188, "219": 1189,
        "221": 1201, "222": 1202, "223": 1203, "224": 1204,
        "231": 1221, "232": 1222, "233": 1223, "234": 1224, "235": 1225, "236": 1226,
        "237": 1227, "238": 1228, "239": 1229, "241": 1231, "242": 1252, "243": 1253,
        "245": 1255, "246": 1256, "247": 1257, "248": 1258, "249": 1259,
        "261": 1301, "262": 1302, "263": 1303, "264": 1304, "265": 1305, "266": 1306,
        "271": 1321, "272": 1322, "273": 1323, "274": 1324, "275": 1325, "276": 1326,
        "277": 1327, "278": 1328, "279": 1329, "280": 1330,
        "281": 1351, "285": 1355, "286": 1356, "287": 1357, "290": 1360, "291": 1361,
        "292": 1362,
    }  # fmt: skip
    mapped = {ina: (usc, "") for ina, usc in table.items()}
    mapped.update({
        "216": (1186, "a"), "240": (1229, "a"), "240a": (1229, "b"), "240b": (1229, "c"),
        "244": (1254, "a"), "245a": (1255, "a"),
        "274a": (1324, "a"), "274b": (1324, "b"), "274c": (1324, "c"), "274d": (1324, "d"),
    })  # fmt: skip
    return mapped


INA_TO_USC: Mapping[str, tuple[int, str]] = MappingProxyType(_ina_table())
