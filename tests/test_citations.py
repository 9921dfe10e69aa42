"""The statute citation grammar (app.citations) and the immigration authorities (app.agencies):
tables of the spellings a request may use, and properties over generated spellings, so that
an immigration-only request cannot be worded past rule 3 or an immigration authority past
rule 4 (DESIGN.md, "The request rules"). Pure functions only: no database, no app."""

from __future__ import annotations

import ast
import string
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.requests.agencies import (
    DEFAULT_IMMIGRATION_AGENCY_CODES,
    DEFAULT_IMMIGRATION_AGENCY_NAMES,
    ImmigrationAuthorities,
    normalise_name,
)
from app.requests.citations import (
    DEFAULT_IMMIGRATION_RELATED_STATUTES,
    DEFAULT_IMMIGRATION_STATUTES,
    INA_TO_USC,
    Citation,
    Section,
    StatuteList,
    normalise,
    read,
)

IMMIGRATION = StatuteList(DEFAULT_IMMIGRATION_STATUTES)
RELATED = StatuteList(DEFAULT_IMMIGRATION_RELATED_STATUTES)
AUTHORITIES = ImmigrationAuthorities(
    DEFAULT_IMMIGRATION_AGENCY_CODES, DEFAULT_IMMIGRATION_AGENCY_NAMES
)
FAST = settings(deadline=None)


def shown(entry: str) -> list[str]:
    return [str(citation) for citation in read(entry)]


# --- Example tables -------------------------------------------------------------------------

USC_SPELLINGS = [
    # code spellings
    "8 U.S.C. 1325", "8 usc 1325", "8 USC 1325", "8 U. S. C. 1325", "8 U.S.C.A. 1325",
    "8 USCA 1325", "8 U.S.C.S. 1325", "8 USCS 1325", "8 U.S. Code 1325", "8 US Code 1325",
    "8 United States Code 1325", "8 United States Code Annotated § 1325",
    "8 United States Code Service § 1325",
    # section markers and separators
    "8 U.S.C. § 1325", "8 U.S.C. §§ 1325", "8 U.S.C. sec. 1325", "8 U.S.C. sec 1325",
    "8 U.S.C. secs. 1325", "8 U.S.C. section 1325", "8 U.S.C. sections 1325",
    "8 U.S.C. s. 1325", "8 USC-1325", "8 USC: 1325", "8 U.S.C.§1325", "8USC1325",
    # leading zeros, trailing punctuation, subsections
    "008 U.S.C. 01325", "08 USC § 001325", "8 U.S.C. 1325.", "8 U.S.C. 1325,",
    "8 U.S.C. 1325;", "8 U.S.C. 1325:", "8 U.S.C. § 1325(a)(1)(A)(i)", "8 U.S.C. § 1325 (a)(1)",
    # descriptions
    "Improper entry (8 U.S.C. 1325)", "8 USC 1325 - improper entry by alien",
    "8 U.S.C. § 1325(a) et seq.", "Count 1: 8 U.S.C. 1325", "violation of 8 U.S.C. 1325",
    "8 U.S.C. 1325 (improper entry)", "8 USC 1325 improper entry alien 2nd offense",
    # forms
    "Title 8 U.S.C. § 1325", "TITLE 8 USC 1325", "Title 8, Section 1325", "Title 8 § 1325",
    "Title 8 of the United States Code, Section 1325", "Section 1325 of Title 8",
    "§ 1325 of Title 8 of the U.S.C.", "section 1325 of 8 U.S.C.", "U.S.C. Title 8, § 1325",
    "Title 8, U.S.C., § 1325", "8-U.S.C.-1325",
]  # fmt: skip


@pytest.mark.parametrize("entry", USC_SPELLINGS)
def test_every_usc_spelling_reads_as_title_8_section_1325(entry: str) -> None:
    assert read(entry) == [Citation("USC", 8, ((Section(1325), Section(1325)),), None)]


READS = [
    ("8 U.S.C. 1324a", ["8 U.S.C. § 1324a"]),
    ("8 USC §§ 1325, 1326", ["8 U.S.C. §§ 1325, 1326"]),
    ("8 USC 1325 and 1326", ["8 U.S.C. §§ 1325, 1326"]),
    ("8 USC 1325, and 1326", ["8 U.S.C. §§ 1325, 1326"]),
    ("8 USC 1325 or 1326", ["8 U.S.C. §§ 1325, 1326"]),
    ("8 USC § 1325 & § 1326(a)", ["8 U.S.C. §§ 1325, 1326"]),
    ("8 U.S.C. §§ 1324, 1325, and 1326", ["8 U.S.C. §§ 1324, 1325, 1326"]),
    ("8 USC §§ 1325-1326", ["8 U.S.C. §§ 1325-1326"]),
    ("8 USC 1325 to 1326", ["8 U.S.C. §§ 1325-1326"]),
    ("8 USC 1325 - 1326", ["8 U.S.C. §§ 1325-1326"]),
    ("8 USC 1325 through 1326", ["8 U.S.C. §§ 1325-1326"]),
    ("8 U.S.C. §§ 1325-26", ["8 U.S.C. §§ 1325-1326"]),
    ("8 U.S.C. §§ 1326-1325", ["8 U.S.C. §§ 1325-1326"]),
    ("8 U.S.C. §§ 1324a-1324d, 1325", ["8 U.S.C. §§ 1324a-1324d, 1325"]),
    ("Section 1325 and Section 1326 of Title 8", ["8 U.S.C. §§ 1325, 1326"]),
    ("8 U.S.C. 1325 and 21 U.S.C. 841", ["8 U.S.C. § 1325", "21 U.S.C. § 841"]),
    ("8 USC 1325, 18 USC 911", ["8 U.S.C. § 1325", "18 U.S.C. § 911"]),
    ("8 USC 1325 to 18 USC 911", ["8 U.S.C. § 1325", "18 U.S.C. § 911"]),
    ("8 U.S.C. 1325 and Title 18, Section 1546", ["8 U.S.C. § 1325", "18 U.S.C. § 1546"]),
    ("18 U.S.C. § 2113(a)", ["18 U.S.C. § 2113"]),
    ("21 U.S.C. §§ 841(a)(1), 846", ["21 U.S.C. §§ 841, 846"]),
    # INA
    ("INA 275", ["INA § 275 (8 U.S.C. § 1325)"]),
    ("INA § 275(a)(1)", ["INA § 275 (8 U.S.C. § 1325)"]),
    ("I.N.A. sec. 276", ["INA § 276 (8 U.S.C. § 1326)"]),
    ("I. N. A. 276", ["INA § 276 (8 U.S.C. § 1326)"]),
    ("Immigration and Nationality Act § 274", ["INA § 274 (8 U.S.C. § 1324)"]),
    ("Immigration & Nationality Act 274A", ["INA § 274A (8 U.S.C. § 1324a)"]),
    ("Immigration and Nationality Act of 1952, § 212", ["INA § 212 (8 U.S.C. § 1182)"]),
    ("Immigration and Nationality Act (INA) § 237", ["INA § 237 (8 U.S.C. § 1227)"]),
    ("Imm. & Nat. Act § 275", ["INA § 275 (8 U.S.C. § 1325)"]),
    ("Section 275 of the INA", ["INA § 275 (8 U.S.C. § 1325)"]),
    (
        "section 212(a)(6)(C)(i) of the Immigration and Nationality Act",
        ["INA § 212 (8 U.S.C. § 1182)"],
    ),
    ("INA §§ 275-276", ["INA §§ 275-276 (8 U.S.C. §§ 1325-1326)"]),
    ("INA 299", ["INA § 299"]),
    ("INA § 275 (8 U.S.C. § 1325)", ["INA § 275 (8 U.S.C. § 1325)"]),
    ("INA 276 and 18 U.S.C. 1546", ["INA § 276 (8 U.S.C. § 1326)", "18 U.S.C. § 1546"]),
    # a whole title or the whole Act: no specific crime
    ("8 U.S.C.", ["8 U.S.C."]),
    ("Title 8", ["8 U.S.C."]),
    ("Title 8 of the United States Code", ["8 U.S.C."]),
    ("8 U.S.C. - immigration", ["8 U.S.C."]),
    ("INA", ["INA"]),
    ("Immigration and Nationality Act", ["INA"]),
    ("a violation of the INA", ["INA"]),
    # a USC/INA citation anywhere sets other code-like words aside
    ("RCW 9A.36.031 and 8 U.S.C. 1325", ["8 U.S.C. § 1325"]),
    ("Assault, RCW 9A.36.031 (INA 275)", ["INA § 275 (8 U.S.C. § 1325)"]),
    # other codes
    ("RCW 69.50.401", ["RCW 69.50.401"]),
    ("RCW 69.50.401.", ["RCW 69.50.401"]),
    ("rcw 9a.56.020(1)(a)", ["RCW 9A.56.020(1)(a)"]),
    ("Wash. Rev. Code § 9A.32.030", ["WASH REV CODE 9A.32.030"]),
    ("Cal. Penal Code § 187", ["CAL PENAL CODE 187"]),
    ("N.Y. Penal Law § 125.25", ["NY PENAL LAW 125.25"]),
    ("720 ILCS 5/9-1", ["720 ILCS 5/9-1"]),
    ("N.J.S.A. 2C:11-3", ["NJSA 2C:11-3"]),
    ("Fla. Stat. § 893.13(1)(a)", ["FLA STAT 893.13(1)(a)"]),
    ("Fla. Stat. s. 893.13", ["FLA STAT 893.13"]),
    ("18 Pa.C.S. § 2502", ["18 PACS 2502"]),
    ("K.S.A. 21-5402", ["KSA 21-5402"]),
    ("Va. Code Ann. § 18.2-248", ["VA CODE ANN 18.2-248"]),
    ("A.R.S. § 13-1105", ["ARS 13-1105"]),
    ("ORS 475.752", ["ORS 475.752"]),
    ("See RCW 9A.56.020", ["RCW 9A.56.020"]),
    ("Cal. Penal Code Section 187", ["CAL PENAL CODE 187"]),
    # words that merely contain "ina", "usc" or "alien" are not federal law
    ("Md. Code, Criminal Law § 3-202", ["CRIMINAL LAW 3-202"]),
    ("Criminal mischief RCW 9A.48.070", ["CRIMINAL MISCHIEF RCW 9A.48.070"]),
    ("Municipal Ordinance 12-3", ["MUNICIPAL ORDINANCE 12-3"]),
    ("Muscogee Nation Code § 2-101", ["MUSCOGEE NATION CODE 2-101"]),
    ("Tuscaloosa City Code § 17-1", ["TUSCALOOSA CITY CODE 17-1"]),
    ("in a school zone RCW 69.50.435", ["IN A SCHOOL ZONE RCW 69.50.435"]),
]


@pytest.mark.parametrize(("entry", "expected"), READS)
def test_reads(entry: str, expected: list[str]) -> None:
    assert shown(entry) == expected


@pytest.mark.parametrize("entry", [entry for entry, _ in READS] + USC_SPELLINGS)
def test_the_canonical_form_reads_back_as_the_same_citations(entry: str) -> None:
    for citation in read(entry):
        assert read(str(citation)) == [citation]


def test_other_codes_keep_their_title_and_section_as_written() -> None:
    assert read("720 ILCS 5/9-1") == [Citation("ILCS", 720, (), "5/9-1")]
    assert read("Cal. Penal Code § 187") == [Citation("CALPENALCODE", None, (), "187")]
    assert read("RCW 9A.32.030") == [Citation("RCW", None, (), "9a.32.030")]
    assert read("Wash. Rev. Code § 9A.32.030")[0].code == "WASHREVCODE"


def test_specific_means_a_section_is_named() -> None:
    assert read("8 U.S.C. 1325")[0].specific()
    assert read("INA 275")[0].specific()
    assert read("RCW 69.50.401")[0].specific()
    assert not read("8 U.S.C.")[0].specific()
    assert not read("INA")[0].specific()


NOT_CITATIONS = [
    "", " ", "x", "xx", "N/A", "n/a", "na", "none", "nil", "null", "unknown", "-", "TBD",
    "tba", "pending", "see narrative", "various", "same", "other", "misc", "1325", "USC",
    "U.S.C. 1325", "U.S.C. § 1325", "Section 1325", "§ 1325", "8", "alien smuggling",
    "improper entry",
    # look-alike letters: never read as some other code
    "8 U.S.\u0421. 1325", "8 U.\u0405.C. 1325", "IN\u0410 275", "\u0399.\u039d.\u0391. 275",
    "8 U.S.C. \u0661\u0663\u0662\u0665",
    # federal-looking text the USC/INA grammar cannot read: fail closed
    "Immigration Act § 275", "Nationality Code 5", "Alien Registration Act 12",
    "United States Criminal Code 1325", "Eight U.S.C. 1325",
    "Title VIII, Section 1325", "RCW 9A.36.021 or U.S.C. 1325", "US Code 1325",
    "Title 8a", "8 XUSC 1325",
    # the INA by its public law, its Statutes at Large pages, its popular name; a bare "U.S."
    "Pub. L. 82-414 § 275", "P.L. 82-414", "McCarran-Walter Act § 276", "66 Stat. 229",
    "8 U.S. § 1325",
    # words of a document, not a code
    "Count 1", "Case 2024", "Page 3", "Statute 1", "No 1", "Unknown Statute 1", "Ref 12345",
    # regulations, not crimes (8 C.F.R. is immigration's)
    "8 C.F.R. 287.7", "8 CFR § 236.1", "Code of Federal Regulations 8, 287.7",
    # longer than any statute entry
    "8 U.S.C. 1325 " + "x" * 1000,
]  # fmt: skip


@pytest.mark.parametrize("entry", NOT_CITATIONS)
def test_not_a_citation(entry: str) -> None:
    assert read(entry) == []


@pytest.mark.parametrize("entry", NOT_CITATIONS)
def test_a_list_entry_that_is_not_a_citation_is_refused_by_name(entry: str) -> None:
    with pytest.raises(ValueError) as refused:
        StatuteList(["8 U.S.C.", entry])
    assert repr(entry) in str(refused.value)


NORMALISED = [
    ("\uff18 \uff35\uff0e\uff33\uff0e\uff23\uff0e \u00a7 \uff11\uff1325", "8 u.s.c. § 1325"),
    ("8\u00a0U.S.C.\u2003§\u20091325", "8 u.s.c. § 1325"),
    ("8\tU.S.C.\n\n1325", "8 u.s.c. 1325"),
    ("\ufeff8 U\u200bS\u200cC\u200d 13\u00ad2\u20605", "8 usc 1325"),
    ("8 U\u200e.S\u200f.C\u202e. 1325\u2066", "8 u.s.c. 1325"),
    ("8 U\u034fS\u115fC\u3164 1\ufe0f325\uffa0", "8 usc 1325"),
    ("1325\u20131326 \u2014 1327\u2212\uff0d", "1325-1326 - 1327--"),
    ("  INA  \u2028 275 ", "ina 275"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "expected"), NORMALISED)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


INA_REQUIRED = {
    "101": 1101, "102": 1102, "103": 1103, "201": 1151, "202": 1152, "203": 1153, "204": 1154,
    "207": 1157, "208": 1158, "211": 1181, "212": 1182, "213": 1183, "214": 1184, "215": 1185,
    "217": 1187, "221": 1201, "222": 1202, "231": 1221, "235": 1225, "236": 1226, "237": 1227,
    "238": 1228, "239": 1229, "240": "1229a", "241": 1231, "242": 1252, "243": 1253,
    "244": "1254a", "261": 1301, "262": 1302, "263": 1303, "264": 1304, "265": 1305,
    "266": 1306, "271": 1321, "272": 1322, "273": 1323, "274": 1324, "274A": "1324a",
    "274B": "1324b", "274C": "1324c", "274D": "1324d", "275": 1325, "276": 1326, "277": 1327,
    "278": 1328, "279": 1329, "280": 1330, "287": 1357,
}  # fmt: skip


@pytest.mark.parametrize(("ina", "usc"), sorted(INA_REQUIRED.items()))
def test_ina_sections_map_to_title_8(ina: str, usc: int | str) -> None:
    number = int(str(usc).rstrip(string.ascii_lowercase))
    suffix = str(usc).lstrip(string.digits)
    assert INA_TO_USC[ina.lower()] == (number, suffix)
    (citation,) = read(f"INA § {ina}")
    title_8 = Citation("USC", 8, ((Section(number, suffix), Section(number, suffix)),), None)
    assert citation.usc() == title_8
    assert str(citation) == f"INA § {ina} (8 U.S.C. § {usc})"
    assert IMMIGRATION.covers(citation) and StatuteList([str(title_8)]).covers(citation)


def test_usc_of_usc_is_itself_and_of_other_codes_none() -> None:
    (citation,) = read("18 U.S.C. 1546")
    assert citation.usc() is citation
    assert read("RCW 69.50.401")[0].usc() is None
    assert read("INA")[0].usc() is None
    assert read("INA 299")[0].usc() is None


COVERS = [
    ("8 U.S.C.", "8 USC 1325", True),
    ("8 U.S.C.", "8 USC 1", True),
    ("8 U.S.C. 1325", "8 USC 1325(a)", True),
    ("8 U.S.C. 1325", "8 USC 1326", False),
    ("8 U.S.C. 1325", "18 USC 1325", False),
    ("8 U.S.C. §§ 1325-1326", "8 USC 1326", True),
    ("8 U.S.C. 1325", "8 USC §§ 1320-1330", True),
    ("8 U.S.C. 1325", "8 USC §§ 1321, 1325", True),
    ("8 U.S.C. §§ 1324-1325", "8 USC 1324a", True),
    ("8 U.S.C. 1324", "8 USC 1324a", False),
    ("8 U.S.C. 1325", "8 U.S.C.", True),
    ("18 U.S.C. 911", "8 U.S.C.", False),
    ("18 U.S.C. 911", "18 U.S.C.", True),
    ("8 U.S.C. 1325", "INA 275", True),
    ("8 U.S.C. 1326", "INA 275", False),
    ("8 U.S.C.", "INA 299", True),
    ("8 U.S.C.", "INA", True),
    ("8 U.S.C. 1325", "INA", True),
    ("18 U.S.C.", "INA 275", False),
    ("INA", "INA 299", True),
    ("INA", "8 U.S.C. 1325", True),
    ("INA", "8 U.S.C.", True),
    ("INA", "18 U.S.C. 1546", False),
    ("INA 275", "8 U.S.C. 1325", True),
    ("INA 275", "INA 275(a)", True),
    ("INA 275", "INA 276", False),
    ("INA 275", "INA", True),
    ("RCW 9A.60.040", "Wash. RCW 9A.60.040", True),
    ("RCW 9A.60.040", "RCW 9A.60.040(1)(a)", True),
    ("RCW 9A.60.040(1)", "RCW 9A.60.040", True),
    ("RCW 9A.60.040", "RCW 9A.60.045", False),
    ("RCW 9A.60.040", "RCW 9A.60.0401", False),
    ("RCW 9A.60.040", "ORS 9A.60.040", False),
    ("RCW 9A.60.040", "XRCW 9A.60.040", False),
    ("ILCS 5/9-1", "720 ILCS 5/9-1", True),
    ("720 ILCS 5/9-1", "725 ILCS 5/9-1", False),
    ("Cal. Penal Code § 187", "Penal Code 187", False),
    ("RCW 9A.60.040", "8 USC 1325", False),
    ("8 U.S.C.", "RCW 8.1", False),
    ("INA", "RCW 275", False),
]


@pytest.mark.parametrize(("listed", "cited", "covered"), COVERS)
def test_covers(listed: str, cited: str, covered: bool) -> None:
    (citation,) = read(cited)
    assert StatuteList([listed]).covers(citation) is covered


def test_the_default_lists() -> None:
    assert [str(c) for c in IMMIGRATION.citations] == ["8 U.S.C.", "INA"]
    assert [str(c) for c in RELATED.citations] == [
        "18 U.S.C. § 758",
        "18 U.S.C. § 911",
        "18 U.S.C. § 1015",
        "18 U.S.C. §§ 1423-1429",
        "18 U.S.C. §§ 1541-1546",
    ]
    assert StatuteList([]).covers(read("8 U.S.C. 1325")[0]) is False


@pytest.mark.parametrize("module", ["citations", "agencies"])
def test_modules_are_pure(module: str) -> None:
    """Standard library only (and the agencies module reuses the citation normaliser)."""
    tree = ast.parse((Path(__file__).parents[1] / "app" / "requests" / f"{module}.py").read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            imported.add(name if name.startswith("app.") else name.split(".")[0])
    allowed = set(sys.stdlib_module_names) | {"__future__", "app.requests.citations"}
    assert imported <= allowed, imported - allowed


# --- Generated spellings --------------------------------------------------------------------

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
SPACES = [" ", "\u00a0", "\u2003", "\u2009", "\t", "\u3000", "\n", "\u202f"]
FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
BOLD = {
    **{c: chr(0x1D400 + i) for i, c in enumerate(string.ascii_uppercase)},
    **{c: chr(0x1D41A + i) for i, c in enumerate(string.ascii_lowercase)},
    **{c: chr(0x1D7CE + i) for i, c in enumerate(string.digits)},
}


@st.composite
def disguised(draw: st.DrawFn, text: str) -> str:
    """The text as an adversary might send it: any case, any whitespace, invisible characters
    anywhere, fullwidth or mathematical letters that NFKC folds back."""
    out: list[str] = []
    for char in text:
        if draw(st.integers(0, 7)) == 0:
            out.append(draw(st.sampled_from(INVISIBLE)))
        if char == " ":
            out.append(draw(st.text(st.sampled_from(SPACES), min_size=1, max_size=3)))
            continue
        if char.isalpha():
            char = draw(st.sampled_from([char.lower(), char.upper()]))
        look = draw(st.sampled_from(["plain", "plain", "plain", "plain", "wide", "bold"]))
        out.append({"wide": FULLWIDTH, "bold": BOLD}.get(look, {}).get(char, char))
    if draw(st.booleans()):
        out.append(draw(st.sampled_from(INVISIBLE)))
    return "".join(out)


USC_CODES = [
    "U.S.C.", "USC", "U. S. C.", "U.S.C.A.", "USCA", "U.S.C.S.", "USCS", "U.S. Code", "US Code",
    "United States Code", "United States Code Annotated", "United States Code Service",
]  # fmt: skip
MARKERS = ["§", "§§", "sec.", "sec", "secs.", "section", "sections", "s.", ""]
SUBSECTIONS = st.lists(
    st.sampled_from(["(a)", "(1)", "(A)", "(i)", "(b)", "(2)", "(C)", "(iv)"]), max_size=4
).map("".join)
ZEROS = st.sampled_from(["", "", "0", "00"])
TRAILING = st.sampled_from(["", ".", ",", ";", ":"])
IMMIGRATION_WORDS = [
    "improper entry", "illegal reentry", "alien smuggling", "Count 1:", "violation of",
    "improper entry by alien", "2nd offense", "harboring illegal aliens", "charge",
]  # fmt: skip
ORDINARY_WORDS = [
    "bank robbery", "drug trafficking", "Count 2:", "violation of", "2nd offense", "assault",
    "possession with intent to distribute", "criminal mischief", "trafficking in a school zone",
]  # fmt: skip

Span = tuple[int, int]


def numbered(draw: st.DrawFn, number: int, suffix: str = "") -> str:
    return draw(ZEROS) + str(number) + suffix


@st.composite
def section_part(draw: st.DrawFn, sections: st.SearchStrategy[int], number: int) -> str:
    """One section, a list holding it, or a range including it."""
    kind = draw(st.sampled_from(["one", "one", "list", "range"]))
    one = numbered(draw, number) + draw(SUBSECTIONS)
    if kind == "one":
        return one
    if kind == "list":
        other = numbered(draw, draw(sections)) + draw(SUBSECTIONS)
        joint = draw(st.sampled_from([", ", " and ", ", and ", " & ", " or ", ", § "]))
        return draw(st.sampled_from([one + joint + other, other + joint + one]))
    low = number - draw(st.integers(0, min(5, number - 1)))
    high = number + draw(st.integers(0, 5))
    word = draw(st.sampled_from(["-", " - ", " to ", " through "]))
    return numbered(draw, low) + word + numbered(draw, high)


@st.composite
def usc_spelling(
    draw: st.DrawFn, title: int, sections: st.SearchStrategy[int], whole: bool = False
) -> str:
    """Any way of citing a section of a U.S. Code title (or, with whole, the title itself)."""
    t = numbered(draw, title)
    code = draw(st.sampled_from(USC_CODES))
    if whole and draw(st.booleans()):
        forms = [f"{t} {code}", f"Title {t}", f"Title {t} of the United States Code"]
        citation = draw(st.sampled_from(forms))
    else:
        number = draw(sections)
        part = draw(section_part(sections, number))
        marker = draw(st.sampled_from(MARKERS))
        title_first = draw(st.sampled_from(["", "Title "]))
        forms = [
            f"{title_first}{t} {code} {marker} {part}",
            f"Title {t}, {marker} {part}",
            f"Title {t} of the United States Code, {marker} {part}",
            f"{marker} {part} of Title {t}",
            f"{draw(st.sampled_from(['§', 'Section']))} {part} of Title {t} of the {code}",
            f"{code} Title {t}, {marker} {part}",
            f"{t} {code}{draw(st.sampled_from(['-', ':']))}{part}",
        ]
        citation = draw(st.sampled_from(forms))
    return draw(described(citation + draw(TRAILING), IMMIGRATION_WORDS + ORDINARY_WORDS))


@st.composite
def described(draw: st.DrawFn, citation: str, words: list[str]) -> str:
    """The citation with a description before, after, or around it in parentheses."""
    text = " ".join(citation.split())
    description = draw(st.sampled_from(words))
    return draw(
        st.sampled_from(
            [
                text,
                f"{description} {text}",
                f"{text} {description}",
                f"{text} - {description}",
                f"{description} ({text})",
                f"{text} ({description})",
            ]
        )
    )


INA_NAMES = [
    "INA", "I.N.A.", "I. N. A.", "Immigration and Nationality Act",
    "Immigration & Nationality Act", "Immigration and Nationality Act of 1952,",
]  # fmt: skip


@st.composite
def ina_spelling(draw: st.DrawFn) -> str:
    """Any way of citing a section of the Immigration and Nationality Act."""
    mapped = st.sampled_from(sorted(INA_TO_USC)).map(str.upper)
    other = st.builds(
        lambda n, s: f"{n}{s}", st.integers(101, 507), st.sampled_from(["", "", "A", "b"])
    )
    section = draw(st.one_of(mapped, other))
    subsections = draw(SUBSECTIONS)
    if draw(st.booleans()):
        part = draw(ZEROS) + section + subsections
    else:
        number = int(section.rstrip(string.ascii_letters))
        part = draw(section_part(st.integers(101, 507), number))
    name = draw(st.sampled_from(INA_NAMES))
    marker = draw(st.sampled_from(MARKERS))
    forms = [
        f"{name} {marker} {part}",
        f"{marker} {part} of the {name.rstrip(',')}",
        f"{name.rstrip(',')}-{part}",
    ]
    citation = draw(st.sampled_from(forms)) + draw(TRAILING)
    return draw(described(citation, IMMIGRATION_WORDS + ORDINARY_WORDS))


TITLE_8 = st.integers(1, 1778)
RELATED_SECTIONS = st.sampled_from([758, 911, 1015, *range(1423, 1430), *range(1541, 1547)])
RELATED_SPANS: list[Span] = [(758, 758), (911, 911), (1015, 1015), (1423, 1429), (1541, 1546)]


def clear_of_related(number: int) -> bool:
    """At least six sections away from the immigration-related ones, so that no generated
    range or list around it reaches one."""
    return all(number < low - 6 or number > high + 6 for low, high in RELATED_SPANS)


ORDINARY_SECTIONS = {
    18: st.integers(7, 9999).filter(clear_of_related),
    21: st.integers(7, 2000),
    26: st.integers(7, 9999),
    31: st.integers(7, 9999),
    42: st.integers(7, 9999),
}


def immigration_spellings() -> st.SearchStrategy[str]:
    return st.one_of(usc_spelling(8, TITLE_8, whole=True), ina_spelling()).flatmap(disguised)


@FAST
@given(immigration_spellings())
def test_any_spelling_of_an_immigration_statute_is_recognised(entry: str) -> None:
    found = read(entry)
    assert any(IMMIGRATION.covers(citation) for citation in found), (entry, found)


@FAST
@given(usc_spelling(18, RELATED_SECTIONS).flatmap(disguised))
def test_any_spelling_of_an_immigration_related_statute_is_recognised(entry: str) -> None:
    found = read(entry)
    assert any(RELATED.covers(citation) for citation in found), (entry, found)
    assert not any(IMMIGRATION.covers(citation) for citation in found), (entry, found)


STATE_CODES = [
    ("RCW", "{a}.{b}.{c}"), ("RCW", "{a}A.{b}.{c}"), ("Wash. Rev. Code §", "{a}A.{b}.{c}"),
    ("Cal. Penal Code §", "{n}"), ("N.Y. Penal Law §", "{a}.{b}"), ("720 ILCS", "5/{a}-{b}"),
    ("N.J.S.A.", "2C:{a}-{b}"), ("Fla. Stat. §", "{a}.{b}"), ("18 Pa.C.S. §", "{n}"),
    ("K.S.A.", "21-{n}"), ("Va. Code Ann. §", "18.2-{n}"), ("A.R.S. §", "13-{n}"),
    ("ORS", "{a}.{b}"), ("Tex. Penal Code §", "{a}.{b}"), ("Or. Rev. Stat. sec.", "{a}.{b}"),
]  # fmt: skip


@st.composite
def state_spelling(draw: st.DrawFn) -> str:
    code, shape = draw(st.sampled_from(STATE_CODES))
    numbers = {k: draw(st.integers(1, 999)) for k in "abc"} | {"n": draw(st.integers(1, 9999))}
    section = shape.format(**numbers) + draw(SUBSECTIONS) + draw(TRAILING)
    return draw(described(f"{code} {section}", ORDINARY_WORDS))


def ordinary_spellings() -> st.SearchStrategy[str]:
    federal = [usc_spelling(title, sections) for title, sections in ORDINARY_SECTIONS.items()]
    return st.one_of(*federal, state_spelling()).flatmap(disguised)


@FAST
@given(ordinary_spellings())
def test_no_ordinary_criminal_statute_is_an_immigration_statute(entry: str) -> None:
    found = read(entry)
    assert any(citation.specific() for citation in found), (entry, found)
    assert not any(IMMIGRATION.covers(c) or RELATED.covers(c) for c in found), (entry, found)


# --- Immigration authorities ----------------------------------------------------------------

AUTHORITY_CODES = [
    "DHS", "ICE", "I.C.E.", "I C E", "ice", "DHS-ICE", "DHS/HSI", "ICE-ERO", "U.S. CBP",
    "US-CBP", "USICE", "DHSICE", "USCBP", "U.S.C.I.S.", "USCIS", "INS", "OFO", "USBP", "OBP",
    "ERO", "HSI", "CBP-OFO", "I.C.E. Seattle", "\uff29\uff23\uff25", "I\u200bCE",
    # run on into more letters or digits
    "HSI2", "ICE1", "HSISEA", "ICEERO", "CBPSEA", "DHSOIG", "DHSHQ",
]  # fmt: skip
AUTHORITY_NAMES = [
    "U.S. Immigration & Customs Enforcement", "Homeland Security Investigations",
    "DHS Office of Intelligence", "CBP Seattle Field Office", "U.S. Border Patrol",
    "U.S. Customs and Border Protection", "Enforcement and Removal Operations",
    "U.S. Citizenship and Immigration Services", "Immigration and Naturalization Service",
    "Department of Homeland Security", "I.C.E. Seattle",
    # cut short, run together, hyphenated invisibly, or with a look-alike letter
    "Homeland Sec. Investigations", "Dept. of Homeland Sec.", "U.S. Customs & Border Prot.",
    "U.S. Citizenship & Immigr. Services", "HomelandSecurity", "Homeland\u00adSecurity",
    "Homeland S\u0435curity Investigations",
]  # fmt: skip
ORDINARY_CODES = [
    "OPD", "SPD", "KCSO", "WSP", "FBI", "DEA", "ATF", "USMS", "NCIS", "IRS-CI", "USPIS", "USSS",
]  # fmt: skip
ORDINARY_NAMES = [
    "Olympia Police Department", "King County Sheriff's Office", "Washington State Patrol",
    "Drug Enforcement Administration", "Federal Bureau of Investigation",
    "U.S. Marshals Service", "Police", "Department of Justice", "Office of the Sheriff",
    "Bureau of Alcohol, Tobacco, Firearms and Explosives",
    "Department of Natural Resources", "Internet Crimes Against Children Task Force",
    "Policía de Puerto Rico", "Border County Sheriff", "Secretary of State",
]  # fmt: skip


@pytest.mark.parametrize("code", [*AUTHORITY_CODES, "\u0406\u0421\u0415", "I\u0421E"])
def test_an_immigration_authority_is_known_by_its_code(code: str) -> None:
    """Look-alike letters in a code fail closed: an agency code is ASCII."""
    assert AUTHORITIES.recognises(code, "")


@pytest.mark.parametrize("name", AUTHORITY_NAMES)
def test_an_immigration_authority_is_known_by_its_name(name: str) -> None:
    assert AUTHORITIES.recognises("", name)


@pytest.mark.parametrize(("code", "name"), list(zip(ORDINARY_CODES, ORDINARY_NAMES * 2)))
def test_ordinary_agencies_are_not_immigration_authorities(code: str, name: str) -> None:
    assert not AUTHORITIES.recognises(code, name)
    assert not AUTHORITIES.recognises(code, "")
    assert not AUTHORITIES.recognises("", name)


def test_normalise_name() -> None:
    assert normalise_name("U.S. Immigration & Customs Enforcement") == (
        "us immigration and customs enforcement"
    )
    assert normalise_name("King County Sheriff's\u00a0Office ") == "king county sheriff s office"


def test_a_configured_list_refuses_an_empty_entry() -> None:
    with pytest.raises(ValueError):
        ImmigrationAuthorities(["ICE", " . "], [])


@st.composite
def authority_code(draw: st.DrawFn) -> str:
    """A listed code spelt with dots, separators, a US/DHS prefix and other words."""
    letters = draw(st.sampled_from(DEFAULT_IMMIGRATION_AGENCY_CODES))
    between = draw(st.sampled_from(["", "", ".", ". ", " "]))
    code = between.join(letters) + (draw(st.sampled_from(["", "."])) if between else "")
    prefixes = ["", "US ", "U.S. ", "US-", "U.S.-", "DHS-", "DHS/", "DHS ", "DHS - "]
    if not between:
        prefixes += ["US", "DHS", "USDHS"]
    suffix = draw(st.sampled_from(["", "-Seattle", " Field Office", "/ERO", " HQ"]))
    return draw(st.sampled_from(prefixes)) + code + suffix


@st.composite
def ordinary_agency(draw: st.DrawFn) -> tuple[str, str]:
    code = draw(st.sampled_from(ORDINARY_CODES))
    between = draw(st.sampled_from(["", "", ".", " "]))
    return between.join(code), draw(st.sampled_from(ORDINARY_NAMES))


@FAST
@given(authority_code().flatmap(disguised))
def test_any_spelling_of_an_immigration_authority_code_is_recognised(code: str) -> None:
    assert AUTHORITIES.recognises(code, "")


@FAST
@given(ordinary_agency().flatmap(lambda pair: st.tuples(disguised(pair[0]), disguised(pair[1]))))
def test_no_ordinary_agency_is_an_immigration_authority(agency: tuple[str, str]) -> None:
    assert not AUTHORITIES.recognises(*agency)
