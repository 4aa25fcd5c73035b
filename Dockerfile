# The workbench as a container: `docker build -t oco2-workbench .` then
# `docker run --rm -p 8501:8501 oco2-workbench` and open http://localhost:8501.
# On first start with an empty cache the app builds the embedded demo month (10-20 s) and detects it (30-40 s).
# .ci/serve_check.sh runs these same steps without Docker (no Docker engine on the build machines).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# curl for the health check only
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

# the pinned runtime stack first (a layer that survives code changes)
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

RUN useradd --create-home --uid 1000 app
WORKDIR /home/app/workbench
COPY --chown=app:app . .
# the project itself (its requirements are installed above), so that `dask scheduler` / `dask worker` run from this
# image import `core` (README, "Running on a Dask cluster"); the build's leftovers removed
RUN pip install --no-deps . && rm -rf build *.egg-info
USER app

# the cache (demo month, ingested files, detections, vetting) starts empty; mount a volume here to keep it
# (the embedded inventory is package data of the installed project: core/data/inventory/sources.parquet)
ENV OCO2_CACHE=/home/app/cache
RUN mkdir -p "$OCO2_CACHE"
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl --fail http://localhost:8501/_stcore/health || exit 1
ENTRYPOINT ["streamlit", "run", "workbench/app.py", "--server.port=8501", "--server.address=0.0.0.0"]
