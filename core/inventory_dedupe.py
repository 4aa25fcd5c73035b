"""De-duplication of the inventory: the plants that two datasets list are folded into one row.

The 2020 project counted them twice (see :mod:`core.inventory_build` for the datasets):

1. a Global Coal Plant Tracker plant is folded into a WRI GPPD coal plant within ``near_km`` (3 km), or within
   ``name_km`` (10 km) when their names are similar (:func:`core.inventory_names.name_similarity`); the WRI row is
   kept with WRI's generation-based estimate (:func:`fold_gem_into_wri`);
2. a power plant (after step 1) is folded into an EU-ETS 'Power and heat' installation by the same distances (names
   compared more leniently; a distance-only match is refused when the installation emits < 1/10 of the plant); the
   EU-ETS row keeps its verified emission, and takes the plant's name, fuel (sector) and summed capacity
   (:func:`fold_plants_into_ets`).

Candidate pairs come from :func:`pairs_within_km` (sorted latitude bands, no O(n*m) loop); the rules are
:class:`DedupRule` values (:data:`COAL_RULE`, :data:`ETS_RULE`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

from core.inventory_names import name_similarity
from core.track import KM_PER_DEG, haversine_km

#: Datasets in the order they are named in a merged row's ``dataset`` ('+'-joined); the first one gave the emission.
DATASET_ORDER = ("eu-ets-sandbag", "wri-gppd", "gem-coal", "cities-population", "cities-cdp")


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


# ------------------------------------------------------------------------------------------------ candidates


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
    band_deg = radius_km / KM_PER_DEG
    lo = np.searchsorted(lat_sorted, lat_a - band_deg, side="left")
    hi = np.searchsorted(lat_sorted, lat_a + band_deg, side="right")
    counts = hi - lo
    ia = np.repeat(np.arange(lat_a.size, dtype=np.int64), counts)
    offsets = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    jb = order[np.repeat(lo, counts) + offsets].astype(np.int64)
    distance_km = haversine_km(lat_a[ia], lon_a[ia], lat_b[jb], lon_b[jb])
    close = distance_km <= radius_km
    return ia[close], jb[close], distance_km[close]


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


def join_ids(ids: Iterable[str]) -> str:
    """';'-join source ids (each possibly already joined), sorted, blanks dropped."""
    return ";".join(sorted({i for s in ids for i in str(s).split(";") if i}))


def _matches_into_sector(table: pd.DataFrame, sector: str, losers: pd.DataFrame, rule: DedupRule, name: str,
                         keeper_name: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The rows of ``losers`` that duplicate a ``sector`` row of ``table`` (:func:`match_duplicates`), each match's
    row label in ``table`` (``keeper_row``), the losers left unmatched, and the counts (``name``: matches, by kind;
    ``keeper_name``: keepers that absorbed at least one)."""
    rows = table.index[table["sector"] == sector]
    matches = match_duplicates(table.loc[rows].reset_index(drop=True), losers, rule)
    if len(matches):
        matches["keeper_row"] = rows.to_numpy()[matches["keeper"].to_numpy()]
    remaining = losers.drop(index=losers.index[matches["loser"].to_numpy()])
    counts = {name: len(matches), **_match_counts(matches, rule, name), keeper_name: int(matches["keeper"].nunique())}
    return matches, remaining, counts


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
    matches, remaining, counts = _matches_into_sector(wri, "power-coal", gem, rule, "gem_folded_into_wri",
                                                      "wri_rows_absorbing_gem")
    out = wri.copy()
    if len(matches):
        matches["gem_id"] = gem["source_id"].to_numpy()[matches["loser"].to_numpy()]
        matches["gem_status"] = gem["status"].to_numpy()[matches["loser"].to_numpy()]
        groups = matches.groupby("keeper_row")
        rows = np.asarray(list(groups.groups))
        out.loc[rows, "merged_ids"] = [join_ids([out.at[r, "merged_ids"], *g["gem_id"]]) for r, g in groups]
        out.loc[rows, "dataset"] = [_join_datasets([out.at[r, "dataset"], "gem-coal"]) for r in rows]
        out.loc[rows, "status"] = groups["gem_status"].first().to_numpy()
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
    matches, remaining, counts = _matches_into_sector(ets, "power", plants, rule, "plants_folded_into_ets",
                                                      "ets_rows_absorbing_plants")
    out = ets.copy()
    if len(matches):
        matched = plants.iloc[matches["loser"].to_numpy()].reset_index(drop=True)
        matched["keeper_row"] = matches["keeper_row"].to_numpy()
        matched = matched.sort_values(["keeper_row", "emission_tCO2_yr"], ascending=[True, False])
        groups = matched.groupby("keeper_row", sort=True)
        rows = np.asarray(list(groups.groups))
        lead = groups.first()
        out.loc[rows, "name"] = lead["name"].to_numpy()
        out.loc[rows, "sector"] = lead["sector"].to_numpy()
        out.loc[rows, "capacity_mw"] = groups["capacity_mw"].sum(min_count=1).to_numpy()
        out.loc[rows, "merged_ids"] = [join_ids([*g["source_id"], *g["merged_ids"]]) for _, g in groups]
        out.loc[rows, "dataset"] = [_join_datasets(["eu-ets-sandbag", *g["dataset"]]) for _, g in groups]
    folded = plants.iloc[matches["loser"].to_numpy()]
    for dataset in ("wri-gppd", "gem-coal"):
        counts[f"plants_folded_into_ets_{dataset}_rows"] = int(folded["dataset"].str.contains(dataset).sum())
    return pd.concat([out, remaining], ignore_index=True), counts
