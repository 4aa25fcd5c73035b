"""Names in the raw inventory tables: encoding repair, name tokens and similarity, country and city name keys.

The build (:mod:`core.inventory_build`) repairs every name it reads (:func:`repair_text`), harmonises country
spellings (:func:`harmonise_country`), compares plant names to fold duplicates (:func:`name_similarity`, used by
:mod:`core.inventory_dedupe`) and matches reported cities to world cities by name key (:func:`city_key`,
:func:`city_keys_agree`, used by :mod:`core.inventory_cities`). Sources of the tables: :mod:`core.inventory_build`.
"""
from __future__ import annotations

import difflib
import functools
import re
import unicodedata

import pandas as pd

#: Harmonised country names (each dataset spells some countries its own way).
COUNTRY_ALIASES = {
    "United States of America": "United States", "USA": "United States",
    "Korea, South": "South Korea", "Korea, North": "North Korea", "Czechia": "Czech Republic",
    "Bosnia & Herzegovina": "Bosnia and Herzegovina", "Bosnia And Herzegovina": "Bosnia and Herzegovina",
    "Brunei Darussalam": "Brunei", "Burma": "Myanmar", "Cabo Verde": "Cape Verde",
    "Congo (Kinshasa)": "Democratic Republic of the Congo", "Democratic Republic of Congo":
    "Democratic Republic of the Congo", "Congo (Brazzaville)": "Congo", "Cote DIvoire": "Côte d'Ivoire",
    "Ivory Coast": "Côte d'Ivoire", "Côte D’Ivoire": "Côte d'Ivoire", "Syrian Arab Republic": "Syria",
    "Macedonia": "North Macedonia", "Gambia, The": "Gambia", "Bahamas, The": "Bahamas",
    "Trinidad And Tobago": "Trinidad and Tobago",
}

#: Words that say what a plant is or who owns it, not which one it is: ignored when comparing names.
NAME_STOPWORDS = frozenset("""
power station stations plant plants project projects thermal electric electricity energy energia energie energies
generating generation generacion company co corp corporation ltd limited llc inc plc gmbh ag sa spa srl sas sl slu
bv nv as ab oy oyj kg mbh pvt private public unit units phase stage block expansion extension new old the of and de
del della dei des du la le les el los das der die und di da do dos van von am an im zu en et ps tpp tps stps npp
ccgt ocgt ccpp chp chpp hkw khw ekw mhkw gkw gud ct cs cc kwk cogeneration cogen combined cycle gas coal oil fired
lignite steam turbine turbines diesel power-station centrale central centrala kraftwerk heizkraftwerk heizwerk
fernheizwerk elektrownia elektrocieplownia cieplownia elektrarna elektrarne teplarna termik santrali termica
termoelectrica termoelettrica termoelektrarna ciclo combinado combinata pltu pltgu pltg pltd tes tets tec gres ges
grupo group eromu voimalaitos lampokeskus varmecentral kraftvarmevaerk vaerk vaerket verket kvv centrale
huadian guodian datang huaneng shenhua sdic cpi chn ntpc kepco kospo edf enel endesa iberdrola rwe eon uniper
vattenfall engie steag enbw pge tauron enea cez fortum veolia dalkia gdf suez
afghanistan albania austria belgium bulgaria croatia cyprus czech denmark estonia finland france germany greece
hungary iceland ireland italy latvia lithuania luxembourg malta netherlands norway poland portugal romania slovakia
slovenia spain sweden united kingdom states america usa serbia bosnia herzegovina macedonia montenegro kosovo
ukraine russia turkey china india indonesia japan korea vietnam philippines thailand malaysia pakistan bangladesh
""".split())
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}

#: Name keys of reported cities that world cities spell another way (exonyms).
CITY_NAME_ALIASES = {"torino": "turin", "genova": "genoa", "cochin": "kochi", "ethekwini": "durban",
                     "tolucadelerdo": "toluca", "roma": "rome", "milano": "milan", "napoli": "naples",
                     "firenze": "florence", "venezia": "venice", "lisboa": "lisbon", "kobenhavn": "copenhagen",
                     "munchen": "munich", "koln": "cologne", "wien": "vienna", "praha": "prague", "warszawa": "warsaw",
                     "bangalore": "bengal?ru", "bombay": "mumbai", "calcutta": "kolkata", "haerbin": "harbin",
                     "qiqihaer": "qiqihar", "chengdou": "chengdu", "jiaozhuo": "jiaozuo", "zhaozhuang": "zaozhuang",
                     "bhubaneswar": "bhubaneshwar", "gandhinagar": "ghandinagar", "leondelosaldamas": "leondelosaldama",
                     "districtofcolumbia": "washington"}


# ------------------------------------------------------------------------------------------------------ text

#: UTF-8 lead byte (as Latin-1 / cp1252 text) followed by a continuation byte (0x80-0xBF, as Latin-1 or cp1252).
_MOJIBAKE = re.compile("[ÃÂÄÅÆÇÐÑ][\u0080-\u00bf€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]|â€")
_C1_CONTROLS = re.compile("[\u0080-\u009f]")


def repair_text(text):
    """Undo the two encoding accidents found in these tables; leave anything else alone.

    * UTF-8 bytes read as Latin-1 / cp1252 (mojibake: ``'RÃ­o Turbio'`` -> ``'Río Turbio'``): re-encoded and decoded
      as UTF-8, kept only if that decodes cleanly and removes the mojibake;
    * cp1252 text read as Latin-1 (C1 control characters, ``'Côte D\\x92Ivoire'`` -> ``'Côte D’Ivoire'``).

    Characters already lost to ``'?'`` upstream cannot be recovered.
    """
    if not isinstance(text, str):
        return text
    if _MOJIBAKE.search(text):
        for codec in ("cp1252", "latin-1"):
            try:
                fixed = text.encode(codec).decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                continue
            if not _MOJIBAKE.search(fixed):
                return fixed
    if _C1_CONTROLS.search(text):
        try:
            return text.encode("latin-1").decode("cp1252")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return text
    return text


def repair_column(values: pd.Series) -> tuple[pd.Series, int]:
    """``repair_text`` over a column; returns the column and how many values changed."""
    fixed = values.map(repair_text)
    changed = int((fixed.fillna("") != values.fillna("")).sum())
    return fixed, changed


_TRANSLITERATE = str.maketrans({"ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "ß": "ss", "æ": "ae", "Æ": "ae",
                                "đ": "d", "Đ": "d", "ı": "i", "œ": "oe", "þ": "th", "ð": "d"})


def _ascii_words(name) -> list[str]:
    """Lower-case ASCII words and numbers of a name ('Bełchatów-2' -> ['belchatow', '2'])."""
    if not isinstance(name, str):
        return []
    text = unicodedata.normalize("NFKD", name.translate(_TRANSLITERATE))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return [w for w in re.split(r"[^a-z0-9]+|(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])", text) if w]


def name_tokens(name) -> frozenset:
    """Normalised tokens of a source name: ASCII-folded, lower case, numbers and generic plant words removed.

    >>> sorted(name_tokens("Bełchatów Power Station (Unit 2)"))
    ['belchatow']
    """
    return frozenset(w for w in _ascii_words(name) if len(w) >= 3 and w.isalpha() and w not in NAME_STOPWORDS
                     and w not in _ROMAN)


def name_numbers(name) -> frozenset:
    """Unit / group numbers in a name, arabic or roman ('Grupo 20' -> {20}, 'Las Palmas II' -> {2})."""
    words = _ascii_words(name)
    return frozenset(int(w) for w in words if w.isdigit() and len(w) <= 4) | \
        frozenset(_ROMAN[w] for w in words if w in _ROMAN)


@functools.lru_cache(maxsize=65536)
def _name_key(name) -> tuple[frozenset, frozenset]:
    """(tokens, numbers) of a name, cached: names recur across many candidate pairs."""
    return name_tokens(name), name_numbers(name)


@functools.lru_cache(maxsize=65536)
def _tokens_match(a: str, b: str) -> bool:
    """Two tokens agree when equal, when one (4+ letters) starts the other ('turow' ~ 'turowie'), or when they
    differ by a spelling variant (5+ letters, similarity ratio >= 0.85: 'samchonpo' ~ 'samcheonpo')."""
    if a == b:
        return True
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if len(short) >= 4 and long_.startswith(short):
        return True
    return len(short) >= 5 and difflib.SequenceMatcher(None, a, b).ratio() >= 0.85


def name_similarity(name_a, name_b) -> float:
    """Similarity of two source names [0-1]: shared tokens / all distinct tokens (Jaccard, spelling-tolerant).

    0 when either name has no distinctive token, or when both carry unit numbers and none agree ('Grupo 10' vs
    'Grupo 20'). A name that is only a town ('Brindisi') against 'Enipower Brindisi' scores 0.5.
    """
    (tokens_a, numbers_a), (tokens_b, numbers_b) = _name_key(name_a), _name_key(name_b)
    if not tokens_a or not tokens_b:
        return 0.0
    if numbers_a and numbers_b and not numbers_a & numbers_b:
        return 0.0
    small, large = (tokens_a, tokens_b) if len(tokens_a) <= len(tokens_b) else (tokens_b, tokens_a)
    shared = sum(any(_tokens_match(s, t) for t in large) for s in small)
    return shared / (len(small) + len(large) - shared)


def harmonise_country(values: pd.Series) -> pd.Series:
    """Map each dataset's spelling of a country to one name (:data:`COUNTRY_ALIASES`), stripping blanks."""
    stripped = values.astype("str").str.strip()
    return stripped.replace(COUNTRY_ALIASES)


# ------------------------------------------------------------------------------------------------ city names


def city_key(name) -> str:
    """Name key for matching cities across tables: ASCII-folded, lower case, qualifiers removed."""
    if not isinstance(name, str):
        return ""
    text = re.sub(r"\(.*?\)", " ", name.split(",")[0]).translate(_TRANSLITERATE)
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)).lower()
    full_key = re.sub(r"[^a-z?]+", "", text)
    if full_key in CITY_NAME_ALIASES:
        return CITY_NAME_ALIASES[full_key]
    text = re.sub(r"\s+and\s+.*$", " ", text)  # 'Nashville and Davidson' -> 'Nashville'
    text = re.sub(r"\b(city of|greater|municipality of|metropolitan|city|kommune|municipality|district)\b", " ", text)
    key = re.sub(r"[^a-z?]+", "", text)
    return CITY_NAME_ALIASES.get(key, key)


def city_keys_agree(cdp_key: str, world_key: str) -> float:
    """How well a reported city's name key fits a world city's [0-1]: 1 when equal or equal up to the '?' that
    replaced a lost character in the world table ('?saka' ~ 'osaka'), else the spelling similarity ratio (used only
    near the reported coordinates: pinyin names differ by a letter, 'xuzhou' ~ 'xuanzhou')."""
    if not cdp_key or not world_key:
        return 0.0
    if cdp_key == world_key:
        return 1.0
    if "?" in world_key and re.fullmatch(re.escape(world_key).replace("\\?", ".{1,2}"), cdp_key):
        return 1.0
    return difflib.SequenceMatcher(None, cdp_key, world_key).ratio()


# ------------------------------------------------------------------------------------------ names lost upstream

#: A name is lost when at least this share of its non-blank characters are '?' (the source CSVs replaced
#: characters their encoding could not hold: Greek EU-ETS installations, Arabic and Nepali city names). Such a
#: name says nothing; a few '?' in a long name ("Tôlan?aro") still read.
LOST_NAME_SHARE = 0.5


def name_is_lost(name) -> bool:
    """True for a missing or blank name, or one that is mostly '?' (:data:`LOST_NAME_SHARE`)."""
    if not isinstance(name, str) or not name.strip():
        return True
    text = name.replace(" ", "").replace(".", "")
    return not text or text.count("?") >= LOST_NAME_SHARE * len(text)


def readable_names(frame: pd.DataFrame) -> pd.Series:
    """Each source's name, or for a lost one (:func:`name_is_lost`) what identifies it: its activity (subsector,
    else sector), its country and its id, e.g. ``"Ceramics, Greece (ets:GR-116)"``."""
    names = frame["name"].astype(object)
    lost = names.map(name_is_lost)
    if not lost.any():
        return frame["name"]
    activity = frame["subsector"].where(frame["subsector"].notna() & frame["subsector"].astype(str).ne(""),
                                        frame["sector"]) if "subsector" in frame else frame["sector"]
    fallback = (activity.astype(str).str.capitalize() + ", " + frame["country"].fillna("unknown country").astype(str)
                + " (" + frame["source_id"].astype(str) + ")")
    return names.where(~lost, fallback).astype(frame["name"].dtype)
