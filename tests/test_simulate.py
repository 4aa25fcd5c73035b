"""The OSSE simulator: files the reader reads back exactly, right geometry, plumes of the stated emission."""
from __future__ import annotations

import datetime as dt

import netCDF4
import numpy as np
import pandas as pd
import pytest

from core import orbit as orb
from core.emission import emission_kg_s
from core.lite_format import FILE_NAME_RE, FILL_VALUE, SOUNDINGS_SCHEMA
from core.lite_reader import read_lite
from core.osse_physics import monthly_mean_xco2_ppm, plume_column_kg_m2
from core.simulate import simulate
from core.track import haversine_km
from osse_factory import CLEAR, SOURCES

ONE_SOURCE = SOURCES.iloc[[1]].reset_index(drop=True)


def _sim(tmp_path, **kw):
    args = dict(days=2, seed=11, passes_per_day=2, pass_km=900.0, sources=SOURCES, keep_soundings=True)
    args.update(kw)
    return simulate(tmp_path, **args)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return _sim(tmp_path_factory.mktemp("osse"), days=3, plume_fraction=0.5, settings=CLEAR)


# -- (1) the reader gives back exactly what was written --------------------------------------------------------

@pytest.mark.parametrize("build, build_id, psurf_path", [
    ("B9", "B9003r", "Meteorology/psurf_apriori"),
    ("B10", "B10206Ar", "Meteorology/psurf_apriori_o2a"),
    ("B11", "B11100Ar", "Meteorology/psurf_apriori_o2a"),
])
def test_reader_returns_the_simulated_good_soundings_exactly(tmp_path, build, build_id, psurf_path):
    result = _sim(tmp_path, build=build, days=1)
    assert result.files
    for path in result.files:
        m = FILE_NAME_RE.match(path.name)
        assert m and m["build"] == build_id and m["day"] == "190801"
        got, meta = read_lite(path)
        expected = result.good_soundings(path)
        assert list(got.columns) == SOUNDINGS_SCHEMA.names
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
        assert meta.n_fill >= 1  # a fill value in xco2 or a coordinate of an otherwise good sounding
        assert 0.2 <= meta.n_flagged / meta.n_read <= 0.7  # ~40 % over a month; a day of 2 passes varies
        with netCDF4.Dataset(path) as ds:
            assert psurf_path.split("/")[1] in ds["Meteorology"].variables
            assert ("psurf_apriori" in ds["Meteorology"].variables) == (build == "B9")
            assert ("xco2_x2019" in ds.variables) == (build == "B11")
            assert ("Auxiliary" in ds.groups) == (build == "B11")
            assert {"Sounding", "Meteorology", "Retrieval", "Preprocessors"} <= set(ds.groups)
            assert ds.dimensions["vertices"].size == 4 and ds.dimensions["epoch_dimension"].size == 7
            assert ds["vertex_latitude"].dtype == np.float32 and ds["date"].dtype == np.int16
            assert ds["xco2"].getncattr("_FillValue") == FILL_VALUE
            assert build_id.startswith(ds.BuildId.replace(".", "")[:3]) and ds.CollectionLabel and ds.title
            for v in ("tcwv_apriori", "tcwv_uncertainty", "xco2_raw", "dp"):
                assert v in ds["Retrieval"].variables


# -- (2) geometry ----------------------------------------------------------------------------------------------

def test_orbit_places_a_pass_through_a_point_at_13_30_local_time():
    day = dt.datetime(2019, 8, 5, tzinfo=dt.timezone.utc).timestamp()
    op, t = orb.pass_through(-26.088, 28.9689, day + 43200)
    lat, lon = orb.ground_track(t, op)
    assert abs(lat + 26.088) < 1e-6 and abs(lon - 28.9689) < 1e-6
    assert abs(t - (day + 43200)) <= 12 * 3600
    assert abs((op.t_node_s % 86400) / 3600 + op.lon_node_deg / 15 - 13.5) % 24 < 1e-6  # node at 13:30 local
    # a full day side: ~20,000 km from -81.8 to +81.8 deg, latitude increasing all the way
    g = orb.pass_geometry(op, op.t_node_s - orb.ORBIT_PERIOD_S / 4 + 1, op.t_node_s + orb.ORBIT_PERIOD_S / 4 - 1)
    assert 19_500 < g.along_track_km[-1] < 20_500
    assert np.all(np.diff(g.frame_lat_deg) > 0) and g.frame_lat_deg.max() > 81.5
    assert op.orbit == orb.orbit_number(op.t_node_s) and 26_000 < op.orbit < 28_000


def test_file_geometry_frames_footprints_and_ids(sim):
    for path in sim.files:
        with netCDF4.Dataset(path) as ds:
            ds.set_auto_maskandscale(False)
            sid = ds["sounding_id"][:]
            lat, lon = ds["latitude"][:].astype(float), ds["longitude"][:].astype(float)
            fp, orbit = ds["Sounding/footprint"][:], ds["Sounding/orbit"][:]
            t = ds["time"][:]
            vlat = ds["vertex_latitude"][:]
        assert np.all(np.diff(sid) > 0)  # unique and increasing
        assert np.all(np.diff(t) >= 0)
        assert set(np.unique(sid // 10 % 10)) <= {0, 3, 6}  # 3 Hz frames: tenths 0, 3, 6
        assert np.array_equal(sid % 10, fp)
        ok = (lat != FILL_VALUE) & (lon != FILL_VALUE)
        frame = sid // 10
        same_frame_next_fp = (frame[1:] == frame[:-1]) & (fp[1:] == fp[:-1] + 1) & ok[1:] & ok[:-1]
        across = haversine_km(lat[:-1], lon[:-1], lat[1:], lon[1:])[same_frame_next_fp]
        assert across.size and np.allclose(across, orb.FOOTPRINT_SPACING_KM, atol=0.01)
        for o in np.unique(orbit):
            sel = np.flatnonzero((orbit == o) & ok & (fp == 4))
            step = np.diff(t[sel]) < 0.4  # consecutive frames (1/3 s apart)
            along = haversine_km(lat[sel][:-1], lon[sel][:-1], lat[sel][1:], lon[sel][1:])[step]
            assert np.allclose(along, 2.25, atol=0.06)
            assert lat[sel][-1] > lat[sel][0]  # south to north
            assert np.all(np.diff(lat[sel]) > 0)
        assert np.all(np.abs(vlat - lat[:, None])[ok] < 0.03)


def test_passes_never_overlap_in_time_nor_share_an_orbit(tmp_path):
    result = _sim(tmp_path, days=2, passes_per_day=5, plume_fraction=0.6, pass_km=2000.0, settings=CLEAR,
                  keep_soundings=False)
    passes = result.passes.sort_values("start_time")
    assert passes["orbit"].is_unique
    start, end = pd.to_datetime(passes["start_time"]), pd.to_datetime(passes["end_time"])
    assert np.all(start.to_numpy()[1:] > end.to_numpy()[:-1])


# -- (3) plumes carry the stated emission ----------------------------------------------------------------------

def test_plume_area_matches_truth_and_gives_back_the_emission(tmp_path):
    result = _sim(tmp_path, sources=ONE_SOURCE, targets=ONE_SOURCE, days=3, passes_per_day=1, plume_fraction=1.0,
                  settings=CLEAR, pass_km=700.0)
    plumes = result.plumes
    assert len(plumes) == 3 and set(plumes["role"]) == {"target"}
    truth = result.soundings_truth()
    for _, p in plumes.iterrows():
        assert 10 <= p.downwind_km <= 50 and 30 <= p.crossing_angle_deg <= 150 and 2 <= p.wind_speed_ms <= 8
        sel = truth[truth["orbit"] == p.orbit]
        areas = [np.trapezoid(g["plume_ppm"], g["along_track_km"])
                 for _, g in sel.sort_values("along_track_km").groupby("footprint")]
        assert np.allclose(areas, p.amplitude_ppm_km, rtol=0.03), (areas, p.amplitude_ppm_km)
        q = emission_kg_s(p.amplitude_ppm_km, p.wind_perp_ms, p.surface_pressure_hpa, p.tcwv_kg_m2) * 1000
        assert q == pytest.approx(p.emission_gCO2_s, rel=1e-9)
        assert p.emission_gCO2_s == pytest.approx(2.5e7 * 1e6 / (365.25 * 86400), rel=1e-9)
        assert abs(p.wind_perp_ms) == pytest.approx(p.wind_speed_ms * np.sin(np.radians(p.crossing_angle_deg)),
                                                    rel=1e-6)
        # perfect wind: the file's wind at the crossing is the wind that carried the plume
        good = result.good_soundings(p.file)
        good = good[good["orbit"] == p.orbit]
        i = np.argmin(np.abs(good["time"] - pd.Timestamp(p.cross_time)).to_numpy())
        assert good["windspeed_u"].iloc[i] == pytest.approx(p.wind_u_ms, abs=0.02)
        assert good["windspeed_v"].iloc[i] == pytest.approx(p.wind_v_ms, abs=0.02)
        assert p.peak_height_ppm == pytest.approx(p.amplitude_ppm_km / (p.sigma_along_km * np.sqrt(2 * np.pi)))
        # the crossing is where the plume peaks in the data
        peak = sel.loc[sel["plume_ppm"].idxmax(), "along_track_km"]
        assert abs(peak - p.cross_along_track_km) < 3 * p.sigma_along_km + 2.5


def test_plume_column_integrates_to_emission_over_wind():
    y = np.linspace(-20_000, 20_000, 40_001)
    column = plume_column_kg_m2(20_000.0, y, emission_kg_s=700.0, wind_speed_ms=5.0, a_m=104.0)
    assert np.trapezoid(column, y) == pytest.approx(700.0 / 5.0, rel=1e-6)
    assert np.all(plume_column_kg_m2(-1.0, y, 700.0, 5.0) == 0)


# -- (4) plume-free passes hold no plume -----------------------------------------------------------------------

def test_plume_free_passes_have_no_plume_and_keep_away_from_sources(sim):
    free = sim.passes[sim.passes["kind"] == "plume-free"]
    assert len(free) >= 2
    truth = sim.soundings_truth()
    for _, p in free.iterrows():
        assert p.orbit not in set(sim.plumes["orbit"])
        sel = truth[truth["orbit"] == p.orbit]
        assert len(sel) > 1000 and np.all(sel["plume_ppm"] == 0)
        good = sim.good_soundings(p.file)
        good = good[good["orbit"] == p.orbit]
        d = haversine_km(good["latitude"].to_numpy(float)[:, None], good["longitude"].to_numpy(float)[:, None],
                         SOURCES["latitude"].to_numpy()[None, :], SOURCES["longitude"].to_numpy()[None, :])
        assert d.min() > 300.0
    nuisances = sim.nuisances[sim.nuisances["orbit"].isin(free["orbit"])]
    assert {"cloud_burst"} <= set(nuisances["kind"])
    # nuisances on plume passes keep 150 km from the plumes
    for _, n in sim.nuisances.iterrows():
        near = sim.plumes[(sim.plumes["orbit"] == n.orbit) & (sim.plumes["peak_height_ppm"] >= 0.1)]
        assert np.all(np.abs(near["cross_along_track_km"] - n.along_track_km) >= 150.0 - 2.5)


def test_bursts_stay_good_and_raise_xco2(sim):
    truth = sim.soundings_truth()
    bursts = truth[truth["nuisance_ppm"] >= 0.7]  # bursts are +1..3 ppm (x 0.7..1.3), water offsets <= 1.2
    assert len(bursts) and np.all(bursts["xco2_quality_flag"] == 0)


# -- (5) determinism -------------------------------------------------------------------------------------------

def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = _sim(tmp_path / "a", days=1, keep_soundings=False)
    b = _sim(tmp_path / "b", days=1, keep_soundings=False)
    c = _sim(tmp_path / "c", days=1, seed=12, keep_soundings=False)
    pd.testing.assert_frame_equal(a.plumes, b.plumes)
    pd.testing.assert_frame_equal(a.passes, b.passes)
    pd.testing.assert_frame_equal(a.nuisances, b.nuisances)
    assert [p.name for p in a.files] == [p.name for p in b.files]
    for pa_, pb_ in zip(a.files, b.files):
        with netCDF4.Dataset(pa_) as da, netCDF4.Dataset(pb_) as db:
            for group in [da, *da.groups.values()]:
                other = db if group is da else db[group.name]
                for name, var in group.variables.items():
                    assert np.array_equal(var[...], other[name][...]), f"{group.path}/{name}"
    assert not a.passes[["start_lat", "start_lon"]].equals(c.passes[["start_lat", "start_lon"]])


def test_background_level_is_the_real_monthly_mean():
    assert monthly_mean_xco2_ppm(dt.date(2019, 8, 15)) == pytest.approx(407.91, abs=0.01)
    # a month missing from the record (2017-08) is interpolated between its neighbours
    assert 402.68 < monthly_mean_xco2_ppm(dt.date(2017, 8, 15)) < 403.29
