"""Cross-sectional flux: from a Gaussian area along the track (ppm km) to an emission (kg/s).

    line density [kg CO2/m] = A[ppm km] * 1e-3 * (M_CO2/M_air) * (psurf[Pa]/g - tcwv[kg/m2])
    Q [kg/s]                = line density * |u_perp|

References
----------
Zheng, T. et al. (2020), Observing carbon dioxide emissions over China's cities and industrial areas with
the Orbiting Carbon Observatory-2, ACP 20, 8501-8510. Nassar, R. et al. (2017), Quantifying CO2 emissions
from individual power plants from space, GRL 44, 10045-10053.
"""
from __future__ import annotations

import numpy as np

M_CO2_KG_MOL = 0.04401  # molar mass of CO2 [kg/mol]
M_AIR_KG_MOL = 0.02896  # molar mass of dry air [kg/mol]
G_M_S2 = 9.80665  # standard gravity [m/s2]
SECONDS_PER_YEAR = 365.25 * 86400.0


def co2_column_kg_m2_per_ppm(surface_pressure_hpa, tcwv_kg_m2):
    """Mass of CO2 per unit area for 1 ppm of XCO2 [kg/m2/ppm].

    Parameters
    ----------
    surface_pressure_hpa : array_like
        Surface pressure [hPa].
    tcwv_kg_m2 : array_like
        Total column water vapour [kg/m2]; the dry-air column is psurf/g - tcwv.
    """
    dry_air_kg_m2 = np.asarray(surface_pressure_hpa, dtype=float) * 100.0 / G_M_S2 - np.asarray(tcwv_kg_m2, float)
    return 1e-6 * (M_CO2_KG_MOL / M_AIR_KG_MOL) * dry_air_kg_m2


def line_density_kg_m(amplitude_ppm_km, surface_pressure_hpa, tcwv_kg_m2):
    """CO2 mass per metre of track in the enhancement [kg/m] from its along-track area [ppm km]."""
    return np.asarray(amplitude_ppm_km, float) * 1e3 * co2_column_kg_m2_per_ppm(surface_pressure_hpa, tcwv_kg_m2)


def emission_kg_s(amplitude_ppm_km, wind_perp_ms, surface_pressure_hpa, tcwv_kg_m2):
    """Cross-sectional flux Q = line density * |u_perp| [kg/s]."""
    return line_density_kg_m(amplitude_ppm_km, surface_pressure_hpa, tcwv_kg_m2) * np.abs(wind_perp_ms)


def amplitude_ppm_km(emission_kg_s_, wind_perp_ms, surface_pressure_hpa, tcwv_kg_m2):
    """Inverse of :func:`emission_kg_s`: the along-track area [ppm km] a source of Q [kg/s] leaves."""
    per_ppm_km = line_density_kg_m(1.0, surface_pressure_hpa, tcwv_kg_m2)
    return np.asarray(emission_kg_s_, float) / (np.abs(wind_perp_ms) * per_ppm_km)


def tco2_per_year_to_kg_s(tco2_yr):
    """Annual emission [tCO2/yr] to a mean rate [kg/s]."""
    return np.asarray(tco2_yr, float) * 1e3 / SECONDS_PER_YEAR
