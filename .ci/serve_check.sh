#!/usr/bin/env bash
# The Dockerfile's steps without Docker (no Docker engine runs on the build machines), as CI runs them:
#   1. install the pinned requirements (a fresh virtual environment in a temporary folder, as the image does;
#      SERVE_CHECK_VENV=DIR reuses an environment that already has them, e.g. .venv after .ci/run's install);
#   2. an EMPTY cache (OCO2_CACHE -> a temporary folder), as in a fresh container;
#   3. start the server with the ENTRYPOINT's command on a free loopback port;
#   4. wait for /_stcore/health = ok (the HEALTHCHECK), fetch / and check it is the Streamlit page;
#   5. open the page in headless Chromium (a session runs the app, which builds the demo month at first start)
#      and check that the demo month is in the cache and the workbench shows it within 60 s;
#   6. print the timings and stop everything it started.
# Exit status 0 when every step passed; the failing step is named on stderr otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

DEADLINE_S=${SERVE_CHECK_DEADLINE_S:-60}
DEMO_MONTH=2019-08
DEMO_DAYS=31
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/serve-check.XXXXXX")
SERVER_PID="" BROWSER_PID=""

cleanup() {
  [ -n "$BROWSER_PID" ] && kill -- "-$BROWSER_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && kill -- "-$SERVER_PID" 2>/dev/null || true
  [ -n "$BROWSER_PID" ] && wait "$BROWSER_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "serve-check FAILED: $*" >&2
  if [ -f "$WORK/server.log" ]; then echo "--- server log (last 40 lines) ---" >&2; tail -n 40 "$WORK/server.log" >&2; fi
  exit 1
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# 1. install (the image: pip install -r requirements.txt)
t0=$(now)
if [ -n "${SERVE_CHECK_VENV:-}" ]; then
  VENV=$SERVE_CHECK_VENV
  [ -x "$VENV/bin/streamlit" ] || fail "SERVE_CHECK_VENV=$VENV has no bin/streamlit"
  install_note="reused $VENV"
else
  VENV=$WORK/venv
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt \
    || fail "pip install -r requirements.txt"
  install_note="fresh venv"
fi
t_install=$(since "$t0")

# 2. an empty cache, as in a new container
export OCO2_CACHE=$WORK/cache
mkdir -p "$OCO2_CACHE"

# 3. the ENTRYPOINT's command (on a free loopback port instead of 0.0.0.0:8501)
PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
t0=$(now)
setsid "$VENV/bin/streamlit" run workbench/app.py "--server.port=$PORT" --server.address=127.0.0.1 \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# 4. the HEALTHCHECK, then the page
health=""
for _ in $(seq $((DEADLINE_S * 4))); do
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited before answering"
  health=$(curl --silent --fail --max-time 2 "$URL/_stcore/health" || true)
  [ "$health" = ok ] && break
  sleep 0.25
done
[ "$health" = ok ] || fail "$URL/_stcore/health did not answer ok within ${DEADLINE_S} s"
t_health=$(since "$t0")
page=$(curl --silent --fail --max-time 10 "$URL/") || fail "GET $URL/ failed"
grep -q "<title>Streamlit</title>" <<<"$page" || fail "GET $URL/ is not the Streamlit page"
t_page=$(since "$t0")

# 5. a browser session: the app builds the demo month into the empty cache and selects it
[ -n "$CHROMIUM" ] || fail "no chromium on PATH (apt-get install chromium) for the browser session"
t0=$(now)
setsid "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$WORK/chromium" --remote-debugging-port=0 "$URL/" >"$WORK/chromium.log" 2>&1 &
BROWSER_PID=$!
days=0 shown=""
for _ in $(seq $((DEADLINE_S * 4))); do
  days=$( (find "$OCO2_CACHE/soundings/month=$DEMO_MONTH" -name '*.parquet' ! -name '.*' 2>/dev/null || true) | wc -l)
  if [ "$days" -ge "$DEMO_DAYS" ] && [ -f "$WORK/chromium/DevToolsActivePort" ]; then
    devtools=$(head -n 1 "$WORK/chromium/DevToolsActivePort")
    shown=$(curl --silent --max-time 2 "http://127.0.0.1:$devtools/json/list" || true)
    grep -q "month=$DEMO_MONTH" <<<"$shown" && break
  fi
  sleep 0.25
done
t_demo=$(since "$t0")
[ "$days" -ge "$DEMO_DAYS" ] || fail "the demo month holds $days of $DEMO_DAYS day files after ${DEADLINE_S} s"
grep -q "month=$DEMO_MONTH" <<<"$shown" || fail "the browser page never showed month=$DEMO_MONTH: $shown"
grep -q '"title": "OCO-2 peak workbench"' <<<"$shown" || fail "the page title is not the workbench's: $shown"
! grep -q "Traceback" "$WORK/server.log" || fail "the server logged a traceback"

# 6. timings
echo "serve-check ok: install ${t_install} s (${install_note}); health ok ${t_health} s after start; page ${t_page} s;" \
     "demo month ${DEMO_MONTH} (${days} day files) built and shown ${t_demo} s after the browser opened"
