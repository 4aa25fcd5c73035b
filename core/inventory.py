"""Emission-source inventory: power plants, EU-ETS installations and cities in one Parquet table, queried with DuckDB.

The build (:func:`build_sources`) reads the five raw tables compiled by the oco2peak 2020 project, normalises them to
one row per source with the data contract of ``docs/METHOD.md`` section 6

    source_id, name, sector, country, latitude, longitude, emission_tCO2_yr, year, dataset

plus extras (``subsector``, ``capacity_mw``, ``population``, ``status``, ``merged_ids``, ``emission_basis``,
``coordinate_source``, ``emission_capped``), and folds the duplicates the 2020 project counted twice:

1. a Global Coal Plant Tracker plant is folded into a WRI GPPD coal plant within ``near_km`` (3 km), or within
   ``name_km`` (10 km) when their names are similar (:func:`name_similarity`); the WRI row is kept with WRI's
   generation-based estimate;
2. a power plant (after step 1) is folded into an EU-ETS 'Power and heat' installation by the same distances (names
   compared more leniently; a distance-only match is refused when the installation emits < 1/10 of the plant); the
   EU-ETS row keeps its verified emission, and takes the plant's name, fuel (sector) and summed capacity.

:func:`write_sources` writes zstd Parquet sorted by a 1-degree lat/lon key in small row groups, so the box filters of
the query helpers (:func:`sources_in_box`, :func:`sources_within_radius`, :func:`sources_by_sector`,
:func:`largest_emitters`) skip most of the file. All SQL is parameterised (``?`` placeholders).

References
----------
.. [1] Global Energy Observatory, Google, KTH Royal Institute of Technology in Stockholm, Enipedia, World Resources
   Institute (2019). Global Power Plant Database v1.2.0. https://datasets.wri.org/dataset/globalpowerplantdatabase
   (CC BY 4.0); annual tCO2 = generation x fuel emission factor, as compiled by the oco2peak 2020 project.
.. [2] Global Energy Monitor (2020). Global Coal Plant Tracker, with per-year operating status 2016-2019 added by
   Data for Good (oco2peak 2020 project).
.. [3] Sandbag (2020). EU ETS installations, 2019 verified emissions (EUTL data release 2020-04-15), geocoded by the
   oco2peak 2020 project.
.. [4] Nangini, C. et al. (2019). A global dataset of CO2 emissions and ancillary data related to emissions for 343
   cities. Scientific Data 6, 180280. doi:10.1038/sdata.2018.280
"""
from __future__ import annotations

import argparse
import difflib
import functools
import json
import os
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.paths import EMBEDDED_INVENTORY, cache_root
from core.track import EARTH_RADIUS_KM, haversine_km  # noqa: F401 (haversine_km is part of this module's API)

#: Length of one degree of latitude [km].
KM_PER_DEG_LAT = np.pi * EARTH_RADIUS_KM / 180.0
#: Hours in a (non-leap) year [h]: the physical ceiling of annual generation is capacity_mw * HOURS_PER_YEAR [MWh].
HOURS_PER_YEAR = 8760.0

#: Raw file of each dataset, as committed in ``data_cache/inventory/raw/``.
RAW_FILES = {
    "wri-gppd": "wri_fossil_power_plants_co2.csv",
    "gem-coal": "gem_coal_plant_tracker_co2.csv",
    "eu-ets-sandbag": "eu_ets_installations_sandbag.csv",
    "cities-population": "world_cities_population.csv",
    "cities-cdp": "cities_co2_emissions_cdp.csv",
}
#: Datasets in the order they are named in a merged row's ``dataset`` ('+'-joined); the first one gave the emission.
DATASET_ORDER = ("eu-ets-sandbag", "wri-gppd", "gem-coal", "cities-population", "cities-cdp")
#: Sectors: fuel-resolved power plants, EU-ETS power installations of unknown fuel, other EU-ETS sectors, cities.
SECTORS = ("power-coal", "power-gas", "power-oil", "power", "industry", "city")
FUEL_SECTORS = ("power-coal", "power-gas", "power-oil")
#: The data contract (docs/METHOD.md section 6), then the extras, in file order.
CONTRACT_COLUMNS = ("source_id", "name", "sector", "country", "latitude", "longitude", "emission_tCO2_yr", "year",
                    "dataset")
EXTRA_COLUMNS = ("subsector", "capacity_mw", "population", "status", "merged_ids", "emission_basis",
                 "coordinate_source", "emission_capped")
COLUMNS = CONTRACT_COLUMNS + EXTRA_COLUMNS
#: pandas dtype of each column ("str": pandas string; "Int32": nullable, missing for cities without a figure).
COLUMN_DTYPES = {
    "source_id": "str", "name": "str", "sector": "str", "country": "str", "latitude": "float64",
    "longitude": "float64", "emission_tCO2_yr": "float64", "year": "Int32", "dataset": "str", "subsector": "str",
    "capacity_mw": "float64", "population": "float64", "status": "str", "merged_ids": "str",
    "emission_basis": "str", "coordinate_source": "str", "emission_capped": "bool",
}
#: Parquet row-group size [rows]: small, so a box filter reads few groups.
ROW_GROUP_ROWS = 2000
#: Key of the build report in the Parquet schema metadata.
REPORT_METADATA_KEY = b"oco2peak.inventory.build_report"

#: EU-ETS installations outside this box [deg] are geocoding errors (e.g. a Spanish town geocoded in the
#: Philippines), except French overseas departments and territories (postcodes 97xxx / 98xxx).
ETS_REGION_DEG = {"lat_min": 27.0, "lat_max": 72.0, "lon_min": -32.0, "lon_max": 45.0}

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


@dataclass(frozen=True)
class DedupRule:
    """When two inventory rows are one source, and which figure wins.

    Parameters
    ----------
    near_km : float
        Rows closer than this [km] (haversine) are one source whatever their names.
    name_km : float
        Rows closer than this [km] are one source when their names are similar.
    min_name_similarity : float
        Similar names: :func:`name_similarity` (shared normalised tokens / distinct tokens) [0-1], at least this.
    max_emission_ratio : float
        A match on distance alone (names not similar) needs the kept row's emission to be at least the folded row's
        divided by this factor [dimensionless, >= 1]: a small heating plant next to a large power station is not
        that station (the other way round is allowed: a site's verified total covers its small units).
        ``inf`` (default) disables the check.
    """

    near_km: float = 3.0
    name_km: float = 10.0
    min_name_similarity: float = 0.6
    max_emission_ratio: float = float("inf")

    def __post_init__(self):
        if not 0.0 < self.near_km <= self.name_km:
            raise ValueError(f"need 0 < near_km <= name_km, got {self.near_km}, {self.name_km}")
        if not 0.0 < self.min_name_similarity <= 1.0:
            raise ValueError(f"min_name_similarity must be in (0, 1], got {self.min_name_similarity}")
        if not self.max_emission_ratio >= 1.0:
            raise ValueError(f"max_emission_ratio must be >= 1, got {self.max_emission_ratio}")


#: GEM into WRI coal: both names carry owner, town and plant words, so one shared town name ('Korba STPS' vs
#: 'BALCO Korba power station', 0.5) is not enough; the WRI figure wins whatever the ratio.
COAL_RULE = DedupRule(near_km=3.0, name_km=10.0, min_name_similarity=0.6)
#: Plants into EU-ETS power installations: EU-ETS names are mostly a generic word and the town ('TE-TO Osijek'), so a
#: shared town name (0.5) within 10 km counts; a distance-only match is refused when the installation emits less than
#: a tenth of the plant (a district-heating boiler beside a large station).
ETS_RULE = DedupRule(near_km=3.0, name_km=10.0, min_name_similarity=0.5, max_emission_ratio=10.0)
#: A reported city not found by name joins the nearest world city of its country within this distance [km].
CITY_NEAREST_KM = 3.0
#: A reported city not found by exact name key joins the same-country world city of the closest spelling within
#: CITY_SPELLING_KM [km] of its reported coordinates, if at least this similar [0-1] (difflib ratio).
CITY_MIN_NAME_RATIO = 0.85
CITY_SPELLING_KM = 50.0
#: Name keys of reported cities that world cities spell another way (exonyms).
CITY_NAME_ALIASES = {"torino": "turin", "genova": "genoa", "cochin": "kochi", "ethekwini": "durban",
                     "tolucadelerdo": "toluca", "roma": "rome", "milano": "milan", "napoli": "naples",
                     "firenze": "florence", "venezia": "venice", "lisboa": "lisbon", "kobenhavn": "copenhagen",
                     "munchen": "munich", "koln": "cologne", "wien": "vienna", "praha": "prague", "warszawa": "warsaw",
                     "bangalore": "bengal?ru", "bombay": "mumbai", "calcutta": "kolkata", "haerbin": "harbin",
                     "qiqihaer": "qiqihar", "chengdou": "chengdu", "jiaozhuo": "jiaozuo", "zhaozhuang": "zaozhuang",
                     "bhubaneswar": "bhubaneshwar", "gandhinagar": "ghandinagar", "leondelosaldamas": "leondelosaldama",
                     "districtofcolumbia": "washington"}
#: Reported city emissions above this per inhabitant [tCO2/yr/person] are rejected as implausible (the highest
#: national averages are ~40; one report gives 713 MtCO2 for Quezon City, ~260 per inhabitant).
CITY_MAX_TCO2_PER_CAPITA = 100.0


# --------------------------------------------------------------------------------------------------- geometry


def pairs_within_km(lat_a_deg, lon_a_deg, lat_b_deg, lon_b_deg, radius_km: float):
    """All pairs (i, j) of points a_i, b_j closer than ``radius_km``, without an O(n*m) loop.

    ``b`` is sorted by latitude; each ``a_i`` takes the slice of ``b`` in its latitude band (``searchsorted``), the
    candidate pairs are expanded with ``repeat`` and the exact haversine distance keeps the close ones.

    Parameters
    ----------
    lat_a_deg, lon_a_deg, lat_b_deg, lon_b_deg : array_like
        Coordinates [deg] of the two point sets (finite).
    radius_km : float
        Maximum distance [km].

    Returns
    -------
    ia, jb : numpy.ndarray of int64
        Indices into ``a`` and ``b``.
    distance_km : numpy.ndarray
        Their distance [km].
    """
    lat_a, lon_a = np.asarray(lat_a_deg, float), np.asarray(lon_a_deg, float)
    lat_b, lon_b = np.asarray(lat_b_deg, float), np.asarray(lon_b_deg, float)
    order = np.argsort(lat_b, kind="stable")
    lat_sorted = lat_b[order]
    band_deg = radius_km / KM_PER_DEG_LAT
    lo = np.searchsorted(lat_sorted, lat_a - band_deg, side="left")
    hi = np.searchsorted(lat_sorted, lat_a + band_deg, side="right")
    counts = hi - lo
    ia = np.repeat(np.arange(lat_a.size, dtype=np.int64), counts)
    offsets = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    jb = order[np.repeat(lo, counts) + offsets].astype(np.int64)
    distance_km = haversine_km(lat_a[ia], lon_a[ia], lat_b[jb], lon_b[jb])
    close = distance_km <= radius_km
    return ia[close], jb[close], distance_km[close]


def valid_coordinates(lat_deg, lon_deg) -> np.ndarray:
    """True where a coordinate pair is usable: finite, |lat| <= 90, |lon| <= 180 [deg], and not exactly (0, 0)."""
    lat, lon = np.asarray(lat_deg, float), np.asarray(lon_deg, float)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0)
    return ok & ~((lat == 0.0) & (lon == 0.0))


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


def _repair_column(values: pd.Series) -> tuple[pd.Series, int]:
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


# ------------------------------------------------------------------------------------------------ emissions


def latest_positive(values_t: np.ndarray, years: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the latest year whose value is positive, and that value.

    Parameters
    ----------
    values_t : numpy.ndarray, shape (n, k)
        Emissions [tCO2/yr], one column per year (NaN = no figure).
    years : sequence of int, length k
        The year of each column, increasing.

    Returns
    -------
    emission_t : numpy.ndarray
        The latest positive figure [tCO2/yr], NaN where no year has one.
    year : numpy.ndarray of int
        Its year, 0 where none.
    """
    values = np.asarray(values_t, dtype=float)
    with np.errstate(invalid="ignore"):
        positive = np.nan_to_num(values, nan=0.0) > 0.0
    has_any = positive.any(axis=1)
    last = values.shape[1] - 1 - np.argmax(positive[:, ::-1], axis=1)
    rows = np.arange(values.shape[0])
    emission = np.where(has_any, values[rows, last], np.nan)
    year = np.where(has_any, np.asarray(years, dtype=int)[last], 0)
    return emission, year


def _empty_extras(n: int) -> dict:
    """Default values of the extra columns for ``n`` rows."""
    return {"subsector": [None] * n, "capacity_mw": np.full(n, np.nan), "population": np.full(n, np.nan),
            "status": [None] * n, "merged_ids": [""] * n, "emission_basis": [None] * n,
            "coordinate_source": ["dataset"] * n, "emission_capped": np.zeros(n, dtype=bool)}


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns in contract order with the contract dtypes (:data:`COLUMN_DTYPES`); missing extras are filled."""
    out = frame.copy()
    defaults = _empty_extras(len(out))
    for column in COLUMNS:
        if column not in out.columns:
            if column not in defaults:
                raise KeyError(f"inventory frame lacks contract column {column!r}")
            out[column] = defaults[column]
    out = out.loc[:, list(COLUMNS)]
    for column, dtype in COLUMN_DTYPES.items():
        if dtype == "Int32":
            out[column] = pd.array(pd.to_numeric(out[column], errors="coerce").round(), dtype="Int32")
        elif dtype == "bool":
            out[column] = out[column].fillna(False).astype(bool)
        else:
            out[column] = out[column].astype(dtype)
    out["merged_ids"] = out["merged_ids"].fillna("")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------------- readers

WRI_EMISSION_COLUMNS = {
    2013: "tCO2_emitted_in_2013", 2014: "tCO2_emitted_in_2014", 2015: "tCO2_emitted_in_2015",
    2016: "tCO2_emitted_in_2016", 2017: "tCO2_emitted_in_2017_with estimated_data",
    2018: "tCO2_emitted_in_2018_with estimated_data_extrapolated",
    2019: "tCO2_emitted_in_2019_with estimated_data_extrapolated",
}
WRI_FUEL_SECTORS = {"Coal power plant": "power-coal", "Gas power plant": "power-gas", "Oil power plant": "power-oil"}
GEM_EMISSION_COLUMNS = {y: f"Annual CO2 emissions (millions of tonnes) in {y}" for y in (2016, 2017, 2018, 2019)}
CDP_EMISSION_COLUMN = "Scope-1 GHG emissions [tCO2 or tCO2-eq]"


def _drop_unusable(frame: pd.DataFrame, counts: dict, prefix: str, need_emission: bool = True) -> pd.DataFrame:
    """Drop rows without valid coordinates (and, for plants, without a positive emission), counting them."""
    ok_xy = valid_coordinates(frame["latitude"], frame["longitude"])
    counts[f"{prefix}_dropped_bad_coordinates"] = int((~ok_xy).sum())
    keep = ok_xy
    if need_emission:
        ok_emission = np.nan_to_num(frame["emission_tCO2_yr"].to_numpy(float), nan=0.0) > 0.0
        counts[f"{prefix}_dropped_no_emission"] = int((ok_xy & ~ok_emission).sum())
        keep = keep & ok_emission
    counts[f"{prefix}_kept"] = int(keep.sum())
    return frame.loc[keep].reset_index(drop=True)


def read_wri(path: Path) -> tuple[pd.DataFrame, dict]:
    """WRI Global Power Plant Database fossil plants [1]_ -> normalised rows (sectors power-coal/gas/oil).

    The emission is the latest year with a positive figure (2019 for nearly all: 2018 and 2019 are the 2017 figure
    extrapolated). An estimate above the physical ceiling ``capacity_mw * 8760 h * emission factor`` (capacity
    factor > 1, a known failure of the GPPD generation model on small plants) is capped there, and flagged in
    ``emission_capped``.

    Returns
    -------
    frame : pandas.DataFrame
        Normalised rows (see :data:`COLUMNS`).
    counts : dict
        Rows read, dropped and capped.
    """
    raw = pd.read_csv(path, index_col=0, encoding="utf-8")
    counts = {"wri_read": len(raw)}
    name, n_fixed = _repair_column(raw["name"])
    counts["wri_names_repaired"] = n_fixed
    emission, year = latest_positive(raw[list(WRI_EMISSION_COLUMNS.values())].to_numpy(float),
                                     list(WRI_EMISSION_COLUMNS))
    ceiling_t = raw["capacity_mw"].to_numpy(float) * HOURS_PER_YEAR * raw["gCO2/KWh"].to_numpy(float) / 1000.0
    capped = np.isfinite(emission) & np.isfinite(ceiling_t) & (emission > ceiling_t)
    counts["wri_emission_capped"] = int(capped.sum())
    reported = raw["generation_gwh_2017"].notna().to_numpy()
    frame = pd.DataFrame({
        "source_id": "wri:" + raw.index.astype(str),
        "name": name.to_numpy(),
        "sector": raw["primary_fuel"].map(WRI_FUEL_SECTORS).to_numpy(),
        "country": harmonise_country(raw["country_long"]).to_numpy(),
        "latitude": raw["latitude"].to_numpy(float), "longitude": raw["longitude"].to_numpy(float),
        "emission_tCO2_yr": np.where(capped, ceiling_t, emission), "year": year,
        "dataset": "wri-gppd",
        "capacity_mw": raw["capacity_mw"].to_numpy(float),
        "emission_basis": np.where(reported, "reported-generation", "estimated-generation"),
        "emission_capped": capped,
    })
    unknown_fuel = frame["sector"].isna()
    if unknown_fuel.any():
        raise ValueError(f"WRI rows with an unknown primary_fuel: {sorted(raw['primary_fuel'][unknown_fuel.values])}")
    return conform(_drop_unusable(frame, counts, "wri")), counts


def read_gem(path: Path) -> tuple[pd.DataFrame, dict]:
    """Global Coal Plant Tracker [2]_ -> normalised rows (sector power-coal).

    The emission is the latest of the per-year figures 2016-2019 (million tonnes -> tCO2) that is positive (a year
    the plant did not operate has none); plants never operating in 2016-2019 are dropped.
    """
    raw = pd.read_csv(path, index_col=0, encoding="utf-8")
    counts = {"gem_read": len(raw)}
    name, n_fixed = _repair_column(raw["Plant"])
    country, n_fixed_country = _repair_column(raw["Country"])
    counts["gem_names_repaired"] = n_fixed + n_fixed_country
    emission, year = latest_positive(raw[list(GEM_EMISSION_COLUMNS.values())].to_numpy(float) * 1e6,
                                     list(GEM_EMISSION_COLUMNS))
    capacity = pd.to_numeric(raw["Capacity (MW)"].astype("str").str.replace(r"[\s\u00a0,]", "", regex=True),
                             errors="coerce")
    frame = pd.DataFrame({
        "source_id": "gem:" + raw.index.astype(str),
        "name": name.to_numpy(), "sector": "power-coal",
        "country": harmonise_country(country).to_numpy(),
        "latitude": raw["Latitude"].to_numpy(float), "longitude": raw["Longitude"].to_numpy(float),
        "emission_tCO2_yr": emission, "year": year, "dataset": "gem-coal",
        "capacity_mw": capacity.to_numpy(float),
        "status": raw["Status"].astype("str").str.strip().str.lower().to_numpy(),
        "emission_basis": "capacity-estimate",
    })
    return conform(_drop_unusable(frame, counts, "gem")), counts


def _ets_coordinate_source(raw: pd.DataFrame) -> np.ndarray:
    """Which geocode the 2020 project put in ``latitude``: the full address or only the town."""
    source = np.full(len(raw), "dataset", dtype=object)
    source[(raw["latitude"] == raw["city_address_latitude"]).to_numpy()] = "geocoded-city"
    source[(raw["latitude"] == raw["full_address_latitude"]).to_numpy()] = "geocoded-address"
    return source


def read_ets(path: Path) -> tuple[pd.DataFrame, dict]:
    """EU-ETS installations, Sandbag [3]_ (';'-separated, comma decimals, Latin-1) -> normalised rows.

    'Power and heat' installations get sector ``power`` (fuel unknown), all other Sandbag sectors ``industry``
    (the Sandbag sector is kept in ``subsector``). Coordinates are the 2020 project's geocodes (``latitude``,
    ``longitude``); rows without them are dropped and counted, as are geocodes outside Europe that are not in a
    French overseas territory (:data:`ETS_REGION_DEG`). The registry's own ``InstallationLatitude`` is not used: it is
    mostly empty and partly in degrees.minutes.
    """
    raw = pd.read_csv(path, sep=";", decimal=",", encoding="latin-1", index_col=0, low_memory=False)
    counts = {"ets_read": len(raw)}
    name, n_fixed = _repair_column(raw["InstallationName"])
    counts["ets_names_repaired"] = n_fixed
    lat, lon = raw["latitude"].to_numpy(float), raw["longitude"].to_numpy(float)
    missing = ~np.isfinite(lat) | ~np.isfinite(lon)
    counts["ets_dropped_missing_coordinates"] = int(missing.sum())
    region = ETS_REGION_DEG
    in_region = ((lat >= region["lat_min"]) & (lat <= region["lat_max"])
                 & (lon >= region["lon_min"]) & (lon <= region["lon_max"]))
    overseas = ((raw["RegCtryName"] == "France")
                & raw["InstallationPostCode"].astype("str").str.strip().str.match(r"^9[78]\d{3}$")).to_numpy()
    outside = ~missing & ~in_region & ~overseas
    counts["ets_dropped_geocode_outside_europe"] = int(outside.sum())
    lat, lon = np.where(outside, np.nan, lat), np.where(outside, np.nan, lon)
    power = (raw["SandbagSector"] == "Power and heat").to_numpy()
    frame = pd.DataFrame({
        "source_id": "ets:" + raw["Key"].astype("str").str.strip().str.replace(" ", "-", regex=False),
        "name": name.to_numpy(), "sector": np.where(power, "power", "industry"),
        "country": harmonise_country(raw["RegCtryName"]).to_numpy(),
        "latitude": lat, "longitude": lon,
        "emission_tCO2_yr": raw["tCO2e"].to_numpy(float), "year": raw["Period"].to_numpy(int),
        "dataset": "eu-ets-sandbag", "subsector": raw["SandbagSector"].to_numpy(),
        "status": "operating", "emission_basis": "verified",
        "coordinate_source": _ets_coordinate_source(raw),
    })
    if frame["source_id"].duplicated().any():
        raise ValueError("EU-ETS Key is not unique")
    frame = _drop_unusable(frame, counts, "ets")  # ets_dropped_bad_coordinates: the total of the two counts above
    return conform(frame), counts


def _city_key(name) -> str:
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


def _city_keys_agree(cdp_key: str, city_key: str) -> float:
    """How well a reported city's name key fits a world city's [0-1]: 1 when equal or equal up to the '?' that
    replaced a lost character in the world table ('?saka' ~ 'osaka'), else the spelling similarity ratio (used only
    near the reported coordinates: pinyin names differ by a letter, 'xuzhou' ~ 'xuanzhou')."""
    if not cdp_key or not city_key:
        return 0.0
    if cdp_key == city_key:
        return 1.0
    if "?" in city_key and re.fullmatch(re.escape(city_key).replace("\\?", ".{1,2}"), cdp_key):
        return 1.0
    return difflib.SequenceMatcher(None, cdp_key, city_key).ratio()


def _parse_lat_lon(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """'lat,lon' strings [deg] -> two float arrays (NaN where missing or malformed)."""
    parts = values.astype("str").str.extract(r"^\s*(-?\d+(?:\.\d*)?)\s*,\s*(-?\d+(?:\.\d*)?)\s*$")
    return pd.to_numeric(parts[0], errors="coerce").to_numpy(float), \
        pd.to_numeric(parts[1], errors="coerce").to_numpy(float)


def read_cities(population_path: Path, cdp_path: Path) -> tuple[pd.DataFrame, dict]:
    """World cities with population, joined with the cities' reported CO2 [4]_ -> rows of sector ``city``.

    A reported city (scope-1 emission and its year) is joined to one world city:

    * by name key and country (:func:`_city_key`); among homonyms, the one nearest the reported coordinates when
      there are some, else the most populous. The world city's coordinates are kept (several reported coordinates
      are geocoding errors: Wellington, New Zealand is placed in Florida);
    * else, when it has coordinates, to the nearest world city of the same country within :data:`CITY_NEAREST_KM`;
    * else, when it has coordinates and a figure, it becomes its own row (dataset ``cities-cdp``, id ``cdp:<row>``);
      otherwise it is dropped.

    When several reports join one city the latest year wins. A figure above :data:`CITY_MAX_TCO2_PER_CAPITA` is
    rejected as implausible. Cities without a report keep ``emission_tCO2_yr`` NaN and ``year`` missing.
    """
    raw = pd.read_csv(population_path, index_col=0, encoding="utf-8")
    counts = {"cities_read": len(raw)}
    name, n_fixed = _repair_column(raw["city"])
    country, n_fixed_country = _repair_column(raw["country"])
    counts["cities_names_repaired"] = n_fixed + n_fixed_country
    cities = pd.DataFrame({
        "source_id": "city:" + raw.index.astype(str), "name": name.to_numpy(), "sector": "city",
        "country": harmonise_country(country).to_numpy(),
        "latitude": raw["latitude"].to_numpy(float), "longitude": raw["longitude"].to_numpy(float),
        "emission_tCO2_yr": np.nan, "year": pd.array([pd.NA] * len(raw), dtype="Int32"),
        "dataset": "cities-population", "population": raw["pop"].to_numpy(float),
    })
    cities = _drop_unusable(cities, counts, "cities", need_emission=False)
    cdp, cdp_counts = _read_cdp(cdp_path)
    counts.update(cdp_counts)
    target = _cdp_targets(cities, cdp)
    joined, standalone, join_counts = _apply_cdp(cities, cdp, target)
    counts.update(join_counts)
    return conform(pd.concat([joined, standalone], ignore_index=True)), counts


def _read_cdp(path: Path) -> tuple[pd.DataFrame, dict]:
    """The reported-city table -> name, country, optional coordinates, scope-1 emission [tCO2/yr] and its year."""
    raw = pd.read_csv(path, sep=";", encoding="utf-8", low_memory=False)
    lat, lon = _parse_lat_lon(raw["City location (CDP) [degrees]"])
    has_xy = valid_coordinates(lat, lon)
    emission = pd.to_numeric(raw[CDP_EMISSION_COLUMN], errors="coerce").to_numpy(float)
    population = pd.to_numeric(raw["Population (others)"], errors="coerce") \
        .fillna(pd.to_numeric(raw["Population (CDP)"], errors="coerce")).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        implausible = emission / population > CITY_MAX_TCO2_PER_CAPITA
    emission = np.where((emission > 0) & ~implausible, emission, np.nan)
    basis = ("scope-1 " + raw["Scope-1 GHG emissions units"].astype("str").str.strip() + " ("
             + raw["Scope-1 source dataset"].astype("str").str.strip() + ")")
    name, _ = _repair_column(raw["City name"])
    cdp = pd.DataFrame({
        "cdp_id": "cdp:" + raw.index.astype(str), "name": name.to_numpy(),
        "country": harmonise_country(raw["Country"]).to_numpy(),
        "latitude": np.where(has_xy, lat, np.nan), "longitude": np.where(has_xy, lon, np.nan),
        "emission_tCO2_yr": emission, "year": pd.to_numeric(raw["Year of emission"], errors="coerce").to_numpy(),
        "emission_basis": basis.to_numpy(),
    })
    return cdp, {"cdp_read": len(raw), "cdp_with_coordinates": int(has_xy.sum()),
                 "cdp_rejected_implausible": int(implausible.sum()),
                 "cdp_with_emission": int(np.isfinite(emission).sum())}


def _cdp_targets(cities: pd.DataFrame, cdp: pd.DataFrame) -> np.ndarray:
    """Row of ``cities`` each reported city joins (-1: none), by the rules of :func:`read_cities`."""
    city_keys = cities["name"].map(_city_key).to_numpy()
    cdp_keys = cdp["name"].map(_city_key).to_numpy()
    cdp_lat, cdp_lon = cdp["latitude"].to_numpy(), cdp["longitude"].to_numpy()
    # 1. same name key and country; nearest homonym to the reported coordinates, else the most populous
    cand = pd.DataFrame({"cdp": np.arange(len(cdp)), "key": cdp_keys, "country": cdp["country"].to_numpy()}).merge(
        pd.DataFrame({"city": np.arange(len(cities)), "key": city_keys, "country": cities["country"].to_numpy()}),
        on=["key", "country"])
    cand = cand[cand["key"] != ""]
    # 1b. not found: '?' wildcards of the world table ('?saka' ~ 'osaka'), or, near the reported coordinates
    #     (CITY_SPELLING_KM), the closest spelling (ratio >= CITY_MIN_NAME_RATIO); same country
    missing = np.setdiff1d(np.arange(len(cdp)), cand["cdp"].to_numpy())
    key_length = np.fromiter(map(len, city_keys), dtype=int, count=len(city_keys))
    fuzzy = [(i, j, _city_keys_agree(cdp_keys[i], city_keys[j])) for i in missing
             for j in np.flatnonzero((cities["country"].to_numpy() == cdp["country"].to_numpy()[i])
                                     & (np.abs(key_length - len(cdp_keys[i])) <= 2))]
    fuzzy = pd.DataFrame(fuzzy, columns=["cdp", "city", "agree"]) if fuzzy else \
        pd.DataFrame({"cdp": [], "city": [], "agree": []})
    if len(fuzzy):
        near_km = haversine_km(cdp_lat[fuzzy["cdp"].astype(int)], cdp_lon[fuzzy["cdp"].astype(int)],
                               cities["latitude"].to_numpy()[fuzzy["city"].astype(int)],
                               cities["longitude"].to_numpy()[fuzzy["city"].astype(int)])
        fuzzy = fuzzy[(fuzzy["agree"] == 1.0) | ((fuzzy["agree"] >= CITY_MIN_NAME_RATIO)
                                                 & (near_km <= CITY_SPELLING_KM))]
    fuzzy = fuzzy.sort_values(["cdp", "agree"], ascending=[True, False])
    fuzzy = fuzzy[fuzzy["agree"] == fuzzy.groupby("cdp")["agree"].transform("max")]
    cand = pd.concat([cand[["cdp", "city"]], fuzzy[["cdp", "city"]].astype(np.int64)], ignore_index=True)
    cand["distance_km"] = np.nan_to_num(haversine_km(cdp_lat[cand["cdp"]], cdp_lon[cand["cdp"]],
                                                     cities["latitude"].to_numpy()[cand["city"]],
                                                     cities["longitude"].to_numpy()[cand["city"]]), nan=0.0)
    cand["population"] = cities["population"].fillna(-1.0).to_numpy()[cand["city"]]
    best = cand.sort_values(["cdp", "distance_km", "population"], ascending=[True, True, False]) \
        .drop_duplicates("cdp")
    target = np.full(len(cdp), -1, dtype=np.int64)
    target[best["cdp"].to_numpy()] = best["city"].to_numpy()
    # 2. not found by name, with coordinates: the nearest world city of the same country within CITY_NEAREST_KM
    rest = np.flatnonzero((target < 0) & np.isfinite(cdp_lat))
    ia, jb, dist = pairs_within_km(cdp_lat[rest], cdp_lon[rest], cities["latitude"].to_numpy(),
                                   cities["longitude"].to_numpy(), CITY_NEAREST_KM)
    near = pd.DataFrame({"cdp": rest[ia], "city": jb, "distance_km": dist})
    near = near[cdp["country"].to_numpy()[near["cdp"]] == cities["country"].to_numpy()[near["city"]]]
    near = near.sort_values(["cdp", "distance_km"]).drop_duplicates("cdp")
    target[near["cdp"].to_numpy()] = near["city"].to_numpy()
    return target


def _apply_cdp(cities: pd.DataFrame, cdp: pd.DataFrame, target: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Write the joined reports into ``cities``; the unjoined ones with coordinates and a figure stand alone."""
    reports = pd.DataFrame({"cdp": np.flatnonzero(target >= 0), "city": target[target >= 0]})
    reports["year"] = cdp["year"].to_numpy()[reports["cdp"]]
    reports["emission"] = cdp["emission_tCO2_yr"].to_numpy()[reports["cdp"]]
    reports["has_emission"] = np.isfinite(reports["emission"])
    reports = reports.sort_values(["city", "has_emission", "year", "emission"], ascending=[True, False, False, False])
    winners = reports.drop_duplicates("city")
    out = cities.copy()
    rows, src = winners["city"].to_numpy(), winners["cdp"].to_numpy()
    emission = cdp["emission_tCO2_yr"].to_numpy()[src]
    out.loc[rows, "emission_tCO2_yr"] = emission
    out["year"] = out["year"].astype("float64")
    out.loc[rows, "year"] = np.where(np.isfinite(emission), cdp["year"].to_numpy(float)[src], np.nan)
    out.loc[rows, "emission_basis"] = np.where(np.isfinite(emission), cdp["emission_basis"].to_numpy()[src], None)
    out.loc[rows, "dataset"] = "cities-population+cities-cdp"
    ids = cdp["cdp_id"].to_numpy()
    merged = reports.groupby("city")["cdp"].agg(lambda rows_: _join_ids(ids[rows_.to_numpy()]))
    out["merged_ids"] = ""
    out.loc[merged.index.to_numpy(), "merged_ids"] = merged.to_numpy()
    alone = (target < 0) & np.isfinite(cdp["latitude"].to_numpy()) & np.isfinite(cdp["emission_tCO2_yr"].to_numpy())
    standalone = cdp.loc[alone].rename(columns={"cdp_id": "source_id"}).assign(sector="city", dataset="cities-cdp")
    counts = {
        "cdp_joined_to_city": int((target >= 0).sum()),
        "cdp_duplicate_reports_folded": int(len(reports) - len(winners)),
        "cdp_standalone": int(alone.sum()),
        "cdp_dropped_unmatched": int(((target < 0) & ~alone).sum()),
    }
    return out, standalone, counts


# ----------------------------------------------------------------------------------------------- de-duplication


def match_duplicates(keepers: pd.DataFrame, losers: pd.DataFrame, rule: DedupRule) -> pd.DataFrame:
    """For each row of ``losers``, the row of ``keepers`` it duplicates (at most one), by :class:`DedupRule`.

    Candidates are pairs within ``rule.name_km`` (vectorised :func:`pairs_within_km`); a pair is a duplicate when
    closer than ``rule.near_km`` or when the names are similar. A loser with several candidates goes to a
    similar-named one first (most similar, then nearest), else to the nearest. A pair matched on distance alone
    also needs ``keeper emission * rule.max_emission_ratio >= loser emission``.

    Returns
    -------
    pandas.DataFrame
        Columns ``loser``, ``keeper`` (positional indices), ``distance_km`` [km], ``name_similarity`` [0-1],
        ``by_name`` (bool).
    """
    ia, jb, dist = pairs_within_km(losers["latitude"].to_numpy(), losers["longitude"].to_numpy(),
                                   keepers["latitude"].to_numpy(), keepers["longitude"].to_numpy(), rule.name_km)
    loser_names, keeper_names = losers["name"].to_numpy(), keepers["name"].to_numpy()
    similarity = np.fromiter((name_similarity(loser_names[i], keeper_names[j]) for i, j in zip(ia, jb)),
                             dtype=float, count=ia.size)
    by_name = similarity >= rule.min_name_similarity
    by_distance = dist <= rule.near_km
    if np.isfinite(rule.max_emission_ratio):
        e_loser = losers["emission_tCO2_yr"].to_numpy(float)[ia]
        e_keeper = keepers["emission_tCO2_yr"].to_numpy(float)[jb]
        by_distance &= e_keeper * rule.max_emission_ratio >= e_loser
    ok = by_name | by_distance
    pairs = pd.DataFrame({"loser": ia[ok], "keeper": jb[ok], "distance_km": dist[ok], "name_similarity": similarity[ok],
                          "by_name": by_name[ok]})
    pairs = pairs.sort_values(["loser", "by_name", "name_similarity", "distance_km"],
                              ascending=[True, False, False, True], kind="stable")
    return pairs.drop_duplicates("loser").reset_index(drop=True)


def _match_counts(matches: pd.DataFrame, rule: DedupRule, prefix: str) -> dict:
    """How the matches were made: within near_km with similar / dissimilar names, or by name beyond near_km."""
    near = matches["distance_km"] <= rule.near_km
    return {f"{prefix}_within_{rule.near_km:g}km_similar_names": int((near & matches["by_name"]).sum()),
            f"{prefix}_within_{rule.near_km:g}km_other_names": int((near & ~matches["by_name"]).sum()),
            f"{prefix}_{rule.near_km:g}_to_{rule.name_km:g}km_similar_names": int((~near).sum())}


def _join_datasets(names: Iterable[str]) -> str:
    """'+'-join dataset names (each possibly already joined) in :data:`DATASET_ORDER`, first = emission source."""
    parts = {p for name in names for p in str(name).split("+") if p}
    ordered = [d for d in DATASET_ORDER if d in parts] + sorted(parts - set(DATASET_ORDER))
    return "+".join(ordered)


def _join_ids(ids: Iterable[str]) -> str:
    """';'-join source ids (each possibly already joined), sorted, blanks dropped."""
    return ";".join(sorted({i for s in ids for i in str(s).split(";") if i}))


def fold_gem_into_wri(wri: pd.DataFrame, gem: pd.DataFrame, rule: DedupRule) -> tuple[pd.DataFrame, dict]:
    """Fold Global Coal Plant Tracker rows into the WRI coal plants they duplicate.

    The WRI row stays (id, name, generation-based emission, capacity); it gains the GEM status, the GEM ids in
    ``merged_ids`` and ``gem-coal`` in ``dataset``. Several GEM rows (units, phases) may fold into one WRI plant.

    Returns
    -------
    plants : pandas.DataFrame
        WRI rows (all fuels) and the GEM rows that matched no WRI coal plant.
    counts : dict
        ``gem_folded_into_wri`` (by distance / by name) and ``wri_rows_absorbing_gem``.
    """
    coal = wri.index[wri["sector"] == "power-coal"]
    keepers = wri.loc[coal].reset_index(drop=True)
    matches = match_duplicates(keepers, gem, rule)
    out = wri.copy()
    if len(matches):
        matches["keeper_row"] = coal.to_numpy()[matches["keeper"].to_numpy()]
        matches["gem_id"] = gem["source_id"].to_numpy()[matches["loser"].to_numpy()]
        matches["gem_status"] = gem["status"].to_numpy()[matches["loser"].to_numpy()]
        groups = matches.groupby("keeper_row")
        rows = np.asarray(list(groups.groups))
        out.loc[rows, "merged_ids"] = [_join_ids([out.at[r, "merged_ids"], *g["gem_id"]]) for r, g in groups]
        out.loc[rows, "dataset"] = [_join_datasets([out.at[r, "dataset"], "gem-coal"]) for r in rows]
        out.loc[rows, "status"] = groups["gem_status"].first().to_numpy()
    remaining = gem.drop(index=gem.index[matches["loser"].to_numpy()])
    counts = {"gem_folded_into_wri": len(matches), **_match_counts(matches, rule, "gem_folded_into_wri"),
              "wri_rows_absorbing_gem": int(matches["keeper"].nunique())}
    return pd.concat([out, remaining], ignore_index=True), counts


def fold_plants_into_ets(ets: pd.DataFrame, plants: pd.DataFrame, rule: DedupRule) -> tuple[pd.DataFrame, dict]:
    """Fold power plants (WRI / GEM) into the EU-ETS 'Power and heat' installations they duplicate.

    The EU-ETS row stays with its verified emission, year, id, status and Sandbag subsector; it takes the name and
    fuel sector of the largest-emitting plant folded into it and the summed capacity [MW]; ``merged_ids`` and
    ``dataset`` list everything folded. A match on distance alone is refused when the installation emits less than
    the plant / ``rule.max_emission_ratio``.

    Returns
    -------
    sources : pandas.DataFrame
        All EU-ETS rows (power and industry) and the plants that matched no installation.
    counts : dict
        ``plants_folded_into_ets`` (by distance / by name) and ``ets_rows_absorbing_plants``.
    """
    power = ets.index[ets["sector"] == "power"]
    keepers = ets.loc[power].reset_index(drop=True)
    matches = match_duplicates(keepers, plants, rule)
    out = ets.copy()
    if len(matches):
        matched = plants.iloc[matches["loser"].to_numpy()].reset_index(drop=True)
        matched["keeper_row"] = power.to_numpy()[matches["keeper"].to_numpy()]
        matched = matched.sort_values(["keeper_row", "emission_tCO2_yr"], ascending=[True, False])
        groups = matched.groupby("keeper_row", sort=True)
        rows = np.asarray(list(groups.groups))
        lead = groups.first()
        out.loc[rows, "name"] = lead["name"].to_numpy()
        out.loc[rows, "sector"] = lead["sector"].to_numpy()
        out.loc[rows, "capacity_mw"] = groups["capacity_mw"].sum(min_count=1).to_numpy()
        out.loc[rows, "merged_ids"] = [_join_ids([*g["source_id"], *g["merged_ids"]]) for _, g in groups]
        out.loc[rows, "dataset"] = [_join_datasets(["eu-ets-sandbag", *g["dataset"]]) for _, g in groups]
    remaining = plants.drop(index=plants.index[matches["loser"].to_numpy()])
    counts = {"plants_folded_into_ets": len(matches), **_match_counts(matches, rule, "plants_folded_into_ets"),
              "ets_rows_absorbing_plants": int(matches["keeper"].nunique())}
    folded = plants.iloc[matches["loser"].to_numpy()]
    for dataset in ("wri-gppd", "gem-coal"):
        counts[f"plants_folded_into_ets_{dataset}_rows"] = int(folded["dataset"].str.contains(dataset).sum())
    return pd.concat([out, remaining], ignore_index=True), counts


# ------------------------------------------------------------------------------------------------------ build


def build_sources(raw_dir: Path, coal_rule: DedupRule = COAL_RULE, ets_rule: DedupRule = ETS_RULE) -> pd.DataFrame:
    """Build the normalised, de-duplicated source table from the five raw inventory files.

    Parameters
    ----------
    raw_dir : pathlib.Path
        Folder holding the files named in :data:`RAW_FILES`.
    coal_rule : DedupRule
        When a GEM coal plant is a WRI coal plant (default :data:`COAL_RULE`: 3 km, or 10 km and similar names).
    ets_rule : DedupRule
        When a WRI / GEM plant is an EU-ETS power installation (default :data:`ETS_RULE`).

    Returns
    -------
    pandas.DataFrame
        One row per source, columns :data:`COLUMNS` with :data:`COLUMN_DTYPES`, sorted by source_id.
        ``frame.attrs['build_report']`` holds the counts (rows read, dropped, merged, per sector and dataset).

    References
    ----------
    See the module docstring ([1]_ - [4]_).
    """
    raw_dir = Path(raw_dir)
    missing = [f for f in RAW_FILES.values() if not (raw_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(f"raw inventory files missing in {raw_dir}: {missing}")
    wri, report = read_wri(raw_dir / RAW_FILES["wri-gppd"])
    gem, counts = read_gem(raw_dir / RAW_FILES["gem-coal"])
    report.update(counts)
    ets, counts = read_ets(raw_dir / RAW_FILES["eu-ets-sandbag"])
    report.update(counts)
    cities, counts = read_cities(raw_dir / RAW_FILES["cities-population"], raw_dir / RAW_FILES["cities-cdp"])
    report.update(counts)
    plants, counts = fold_gem_into_wri(wri, gem, coal_rule)
    report.update(counts)
    emitters, counts = fold_plants_into_ets(ets, plants, ets_rule)
    report.update(counts)
    sources = conform(pd.concat([emitters, cities], ignore_index=True))
    sources = sources.sort_values("source_id", kind="stable").reset_index(drop=True)
    if sources["source_id"].duplicated().any():
        raise ValueError("duplicate source_id after the build")
    report["rows"] = len(sources)
    report["rows_per_sector"] = {k: int(v) for k, v in sources["sector"].value_counts().sort_index().items()}
    report["rows_per_dataset"] = {k: int(v) for k, v in sources["dataset"].value_counts().sort_index().items()}
    report["coal_rule"] = _json_safe(asdict(coal_rule))
    report["ets_rule"] = _json_safe(asdict(ets_rule))
    sources.attrs["build_report"] = report
    return sources


def _json_safe(values: dict) -> dict:
    """Non-finite floats as strings ('inf'), so the report is strict JSON."""
    return {k: (str(v) if isinstance(v, float) and not np.isfinite(v) else v) for k, v in values.items()}


def _spatial_order(frame: pd.DataFrame) -> np.ndarray:
    """Row order by a coarse spatial key: floor(lat) then floor(lon) [deg], then source_id (deterministic)."""
    key = pd.DataFrame({"lat": np.floor(frame["latitude"].to_numpy()), "lon": np.floor(frame["longitude"].to_numpy()),
                        "id": frame["source_id"].to_numpy()})
    return key.sort_values(["lat", "lon", "id"], kind="stable").index.to_numpy()


def write_sources(frame: pd.DataFrame, path, row_group_rows: int = ROW_GROUP_ROWS) -> Path:
    """Write the source table as zstd Parquet, sorted by a 1-degree lat/lon key, in small row groups.

    The write is atomic (temporary file, then rename). The build report in ``frame.attrs`` goes in the schema
    metadata under :data:`REPORT_METADATA_KEY`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`build_sources` (any row order).
    path : str or os.PathLike
        Destination ``.parquet`` file; its folder is created.
    row_group_rows : int
        Rows per row group [rows].

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = conform(frame).iloc[_spatial_order(frame)].reset_index(drop=True)
    table = pa.Table.from_pandas(ordered, preserve_index=False)
    report = frame.attrs.get("build_report")
    if report is not None:
        metadata = dict(table.schema.metadata or {})
        metadata[REPORT_METADATA_KEY] = json.dumps(report, sort_keys=True).encode()
        table = table.replace_schema_metadata(metadata)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_rows, write_statistics=True)
    os.replace(tmp, path)
    return path


def read_build_report(path) -> dict:
    """The build report stored in a sources Parquet file ({} when absent)."""
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(REPORT_METADATA_KEY)
    return json.loads(raw) if raw else {}


# ------------------------------------------------------------------------------------------------------ queries


def sources_path(cache=None) -> Path:
    """The source table to query: ``<cache>/inventory/sources.parquet`` if built, else the embedded one.

    Parameters
    ----------
    cache : str or os.PathLike, optional
        Cache root (default: ``$OCO2_CACHE`` or ``data_cache/``, see :func:`core.paths.cache_root`).
    """
    built = cache_root(cache) / "inventory" / "sources.parquet"
    return built if built.is_file() else EMBEDDED_INVENTORY / "sources.parquet"


def connect() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection (pass your own ``con`` to the query helpers to reuse one)."""
    return duckdb.connect()


def _query(sql_where: str, params: list, cache=None, con=None, order_by: str = "source_id",
           limit: int | None = None) -> pd.DataFrame:
    """Run ``SELECT * FROM read_parquet(?) WHERE <sql_where>`` with bound parameters; a conformed frame."""
    sql = f"SELECT * FROM read_parquet(?) WHERE {sql_where or 'TRUE'} ORDER BY {order_by}"  # clauses: code, not data
    params = [str(sources_path(cache)), *params]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    own = con is None
    con = connect() if own else con
    try:
        frame = con.execute(sql, params).df()
    finally:
        if own:
            con.close()
    return conform(frame)


def _check_sectors(sectors) -> list[str] | None:
    """Normalise a sector argument (None, a name, or names) to a list, rejecting unknown names."""
    if sectors is None:
        return None
    names = [sectors] if isinstance(sectors, str) else list(sectors)
    unknown = sorted(set(names) - set(SECTORS))
    if unknown:
        raise ValueError(f"unknown sector(s) {unknown}; known: {SECTORS}")
    return names


def _filters(sectors=None, exclude_sectors=None, min_emission_tCO2_yr=None) -> tuple[list[str], list]:
    """SQL conditions and their parameters for the common filters."""
    where, params = [], []
    sectors = _check_sectors(sectors)
    if sectors is not None:
        where.append("list_contains(?::VARCHAR[], sector)")
        params.append(sectors)
    exclude = _check_sectors(exclude_sectors)
    if exclude:
        where.append("NOT list_contains(?::VARCHAR[], sector)")
        params.append(exclude)
    if min_emission_tCO2_yr is not None:
        where.append("emission_tCO2_yr >= ?")
        params.append(float(min_emission_tCO2_yr))
    return where, params


def _box_condition(lat_min, lat_max, lon_min, lon_max) -> tuple[str, list]:
    """SQL box condition [deg]; ``lon_min > lon_max`` means the box crosses the antimeridian."""
    lat_min, lat_max, lon_min, lon_max = (float(x) for x in (lat_min, lat_max, lon_min, lon_max))
    if lat_min > lat_max:
        raise ValueError(f"lat_min {lat_min} > lat_max {lat_max}")
    if lon_min <= lon_max:
        return ("latitude BETWEEN ? AND ? AND longitude BETWEEN ? AND ?", [lat_min, lat_max, lon_min, lon_max])
    return ("latitude BETWEEN ? AND ? AND (longitude >= ? OR longitude <= ?)", [lat_min, lat_max, lon_min, lon_max])


def sources_in_box(lat_min, lat_max, lon_min, lon_max, sectors=None, min_emission_tCO2_yr=None, cache=None,
                   con=None) -> pd.DataFrame:
    """Sources inside a latitude/longitude box.

    Parameters
    ----------
    lat_min, lat_max : float
        Latitude bounds [deg], inclusive.
    lon_min, lon_max : float
        Longitude bounds [deg, -180..180], inclusive; ``lon_min > lon_max`` is a box crossing the antimeridian
        (e.g. 170 .. -170 spans 20 degrees).
    sectors : str or sequence of str, optional
        Keep only these sectors (:data:`SECTORS`).
    min_emission_tCO2_yr : float, optional
        Keep only sources emitting at least this [tCO2/yr] (drops cities without a figure).
    cache : str or os.PathLike, optional
        Cache root (see :func:`sources_path`).
    con : duckdb.DuckDBPyConnection, optional
        Connection (or cursor) to run on; a fresh one by default.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, ordered by source_id.

    References
    ----------
    Inventory datasets: WRI GPPD, Global Coal Plant Tracker, EU-ETS (Sandbag), cities (see module docstring).
    """
    box, params = _box_condition(lat_min, lat_max, lon_min, lon_max)
    where, more = _filters(sectors, None, min_emission_tCO2_yr)
    return _query(" AND ".join([box, *where]), params + more, cache, con)


def radius_box_deg(lat_deg: float, lon_deg: float, radius_km: float) -> tuple[float, float, float, float]:
    """A lat/lon box [deg] containing the circle of ``radius_km`` around a point (for an SQL prefilter).

    Returns ``(lat_min, lat_max, lon_min, lon_max)``; ``lon_min > lon_max`` when it crosses the antimeridian, and
    the full longitude range when the circle reaches a pole or spans all longitudes.
    """
    dlat = radius_km / KM_PER_DEG_LAT
    lat_min, lat_max = max(lat_deg - dlat, -90.0), min(lat_deg + dlat, 90.0)
    if lat_min <= -90.0 or lat_max >= 90.0:
        return lat_min, lat_max, -180.0, 180.0
    # widest longitude extent of a small circle: asin(sin(r/R) / cos(lat))
    ratio = np.sin(radius_km / EARTH_RADIUS_KM) / np.cos(np.radians(lat_deg))
    if ratio >= 1.0:
        return lat_min, lat_max, -180.0, 180.0
    dlon = float(np.degrees(np.arcsin(ratio)))
    lon_min, lon_max = lon_deg - dlon, lon_deg + dlon
    if lon_max - lon_min >= 360.0:
        return lat_min, lat_max, -180.0, 180.0
    wrap = lambda x: (x + 180.0) % 360.0 - 180.0  # noqa: E731
    lo, hi = wrap(lon_min), wrap(lon_max)
    if lon_max == 180.0:
        hi = 180.0
    return lat_min, lat_max, lo, hi


def sources_within_radius(lat, lon, radius_km, sectors=None, min_emission_tCO2_yr=None, cache=None,
                          con=None) -> pd.DataFrame:
    """Sources within ``radius_km`` of a point, nearest first.

    A box prefilter runs in SQL (:func:`radius_box_deg`), then the exact haversine distance in numpy.

    Parameters
    ----------
    lat, lon : float
        Centre [deg].
    radius_km : float
        Radius [km].
    sectors, min_emission_tCO2_yr, cache, con
        As in :func:`sources_in_box`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS` and ``distance_km`` [km], sorted by distance.
    """
    if not radius_km >= 0:
        raise ValueError(f"radius_km must be >= 0, got {radius_km}")
    box = radius_box_deg(float(lat), float(lon), float(radius_km))
    found = sources_in_box(*box, sectors=sectors, min_emission_tCO2_yr=min_emission_tCO2_yr, cache=cache, con=con)
    distance_km = haversine_km(lat, lon, found["latitude"].to_numpy(), found["longitude"].to_numpy())
    found["distance_km"] = distance_km
    found = found[distance_km <= radius_km]
    return found.sort_values(["distance_km", "source_id"], kind="stable").reset_index(drop=True)


def sources_by_sector(sector, min_emission_tCO2_yr=None, cache=None, con=None) -> pd.DataFrame:
    """All sources of one sector (or several), largest emitter first.

    Parameters
    ----------
    sector : str or sequence of str
        Sector name(s) from :data:`SECTORS`.
    min_emission_tCO2_yr : float, optional
        Keep only sources emitting at least this [tCO2/yr].
    cache, con
        As in :func:`sources_in_box`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, by decreasing ``emission_tCO2_yr`` [tCO2/yr] (sources without a figure last).
    """
    where, params = _filters(sector, None, min_emission_tCO2_yr)
    return _query(" AND ".join(where), params, cache, con,
                  order_by="emission_tCO2_yr DESC NULLS LAST, source_id")


def largest_emitters(n, sectors=None, exclude_sectors=("city",), cache=None, con=None) -> pd.DataFrame:
    """The ``n`` largest emitters, largest first.

    Parameters
    ----------
    n : int
        How many rows.
    sectors : str or sequence of str, optional
        Only these sectors.
    exclude_sectors : sequence of str, optional
        Leave these out (default: cities, whose reported totals are not point sources).
    cache, con
        As in :func:`sources_in_box`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`, by decreasing ``emission_tCO2_yr`` [tCO2/yr].
    """
    where, params = _filters(sectors, exclude_sectors, None)
    where.append("emission_tCO2_yr IS NOT NULL")
    return _query(" AND ".join(where), params, cache, con, order_by="emission_tCO2_yr DESC, source_id",
                  limit=int(n))


# ------------------------------------------------------------------------------------------------------ CLI


def format_report(report: dict) -> str:
    """The build report as readable lines."""
    lines = []
    for key, value in report.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines.extend(f"  {k:<52} {v}" for k, v in value.items())
        else:
            lines.append(f"{key:<54} {value}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m core.inventory --raw DIR --out FILE``: rebuild the source table and print the counts."""
    parser = argparse.ArgumentParser(prog="python -m core.inventory", description=main.__doc__)
    parser.add_argument("--raw", type=Path, default=EMBEDDED_INVENTORY / "raw", help="folder of the raw CSV files")
    parser.add_argument("--out", type=Path, default=EMBEDDED_INVENTORY / "sources.parquet", help="Parquet to write")
    args = parser.parse_args(argv)
    sources = build_sources(args.raw)
    path = write_sources(sources, args.out)
    print(format_report(sources.attrs["build_report"]))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {len(sources)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
