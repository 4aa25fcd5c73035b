"""Run the ORIGINAL project's own peak detection (PyPI ``oco2peak==0.0.4``) on one CSV and time it.

Executed by ``bench/bench_detect.py`` with the python of the separate venv it creates
(``bench/out/original-venv``: oco2peak 0.0.4, pandas 1.5.3, numpy 1.26.4, scipy 1.11.4, scikit-learn 1.3.2);
it imports nothing from this project. By hand:

    bench/out/original-venv/bin/python bench/original_oco2peak_run.py SUBSET.csv RESULT.json

What runs is the original's pipeline after its NetCDF-to-CSV conversion, as its ``gaussian_fit_on_file`` does it:
``find_peak.load_data`` (``read_csv(sep=';')`` and the along-track distance from each orbit's first sounding) then
``find_peak.gaussian_fit_on_df`` (for every orbit of >= 500 soundings, ``peak_detection`` at every 15th sounding:
a ``DataFrame.query`` of the +-100 km window, skipped below 400 soundings, else ``scipy.optimize.curve_fit`` of
its Gaussian-on-a-line, its filters, and ``find_source.estimate_emission`` for a peak that passes them), with a
master progress bar as ``gaussian_fit_on_file`` passes one. Two departures, both in the original's favour:
``output_peak=False`` (it would write one JSON of the window per peak found) and ``output_csv=False``; the CSV is
plain, not the ``.csv.bz2`` its converter writes.

Writes RESULT.json: soundings, orbits, seconds (load, detect, total; CPU seconds of the process), wall-clock start/end (for runs of several
processes), peaks found, and, counted after the timing from the same table, the windows it tried and fitted.
"""
import io
import json
import sys
import time
import warnings
from contextlib import redirect_stdout

t_import = time.perf_counter()
import numpy as np  # noqa: E402
from fastprogress.fastprogress import master_bar  # noqa: E402
from oco2peak import find_peak  # noqa: E402

t_import = time.perf_counter() - t_import


def windows(df):
    """Windows the original tries and fits (>= 400 soundings within +-100 km), replaying its loop; not timed."""
    tried = fitted = 0
    for _orbit, d in df.groupby("orbit", sort=False):
        if len(d) < 500:
            continue
        x = d["distance"].to_numpy()  # load_data sorted each orbit by distance: its row order
        centres = x[::15]
        n = np.searchsorted(x, centres + 100.0, side="right") - np.searchsorted(x, centres - 100.0, side="left")
        tried += len(centres)
        fitted += int((n >= 400).sum())
    return tried, fitted


def main(csv_path, out_path):
    warnings.simplefilter("ignore")  # curve_fit's OptimizeWarning on windows it cannot fit well
    wall_start = time.time()
    start, cpu = time.perf_counter(), time.process_time()
    df = find_peak.load_data(csv_path)
    loaded = time.perf_counter()
    chatter = io.StringIO()
    with redirect_stdout(chatter):  # the console progress bar
        mb = master_bar([csv_path])
        for _ in mb:
            peaks = find_peak.gaussian_fit_on_df(df, input_name="bench", output_dir="", output_peak=False,
                                                 implement_filters=True, output_csv=False, master_progress_bar=mb)
    end, cpu = time.perf_counter(), time.process_time() - cpu
    wall_end = time.time()
    tried, fitted = windows(df)
    result = {"soundings": int(len(df)), "orbits": int(df["orbit"].nunique()), "import_s": t_import,
              "load_s": loaded - start, "detect_s": end - loaded, "total_s": end - start, "cpu_s": cpu,
              "wall_start": wall_start, "wall_end": wall_end, "peaks": len(peaks),
              "windows_tried": tried, "windows_fitted": fitted,
              "failed_fits": chatter.getvalue().count("WARNING : Failed")}
    with open(out_path, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
