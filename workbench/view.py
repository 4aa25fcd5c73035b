"""The view: which month, orbit and peak are shown, and with which detection settings.

The view lives in ``st.session_state`` (it survives page switches) and is mirrored in the URL query string, so a
copied link reproduces it on another machine::

    /orbit?month=2019-08&orbit=27054&peak=2019080205181564&preset=recommended&rules.significance.min_snr=6.0

The page is the URL path; ``month``, ``orbit`` and ``peak`` (a sounding id) name what is shown (a page's own choices
too, :data:`PAGE_PARAMS`: the inventory page's filters); ``preset`` and every
setting that differs from the preset's default (by its key, see :func:`core.settings.all_settings`) name the
settings. A parameter that cannot be used falls back to its default with a warning; numbers out of range are
clamped (:meth:`core.settings.Setting.clamp`).

The URL is read when a session starts and whenever it changes from outside (a pasted link, the browser's back
button); otherwise the session state is the truth and the URL is rewritten from it on every run.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import urlencode

import streamlit as st

from core.settings import PRESETS, DetectionSettings, all_settings

VIEW_PARAMS = ("month", "orbit", "peak")
#: A page's own choices kept in the link as text (the inventory page's filters), ``name -> what it is``.
PAGE_PARAMS = {"sectors": "sectors shown, comma-separated", "countries": "countries shown, comma-separated",
               "compare": "what estimates are compared with"}
STREAMLIT_PARAMS = ("embed", "embed_options")  # Streamlit's own: left alone
DEFAULT_PRESET = "recommended"


# ------------------------------------------------------------------------------------------ pure functions

def format_value(value) -> str:
    """A setting value as URL text: ``true``/``false``, ``400``, ``6.0``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def parse_setting(key: str, text: str):
    """``(value, warning)``: the value to use for a URL parameter (``None`` when unusable) and a warning or None."""
    setting = all_settings()[key]
    text = str(text).strip()
    if setting.kind is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True, None
        if lowered in ("false", "0", "no", "off"):
            return False, None
        return None, f"`{key}={text}` is not true/false: the preset's value is used"
    try:
        number = float(text)
    except ValueError:
        return None, f"`{key}={text}` is not a number: the preset's value is used"
    if not math.isfinite(number):
        return None, f"`{key}={text}` is not finite: the preset's value is used"
    value = setting.clamp(round(number) if setting.kind is int else number)
    if value != number:
        return value, (f"`{key}={text}` is outside [{setting.minimum}, {setting.maximum}] {setting.unit} or not a "
                       f"whole number: {format_value(value)} is used")
    return value, None


def parse_params(params: Mapping[str, str]) -> tuple[dict, DetectionSettings, list[str]]:
    """The view (``month``, ``orbit``, ``peak``) and settings a URL names, and warnings for what was unusable."""
    warnings: list[str] = []
    view = {"month": None, "orbit": None, "peak": None, "extra": {}}
    month = params.get("month")
    if month:
        if len(month) == 7 and month[4] == "-" and month[:4].isdigit() and month[5:].isdigit() \
                and 1 <= int(month[5:]) <= 12:
            view["month"] = month
        else:
            warnings.append(f"`month={month}` is not a month (YYYY-MM): the latest month is shown")
    for name in ("orbit", "peak"):
        text = params.get(name)
        if text:
            try:
                view[name] = int(text)
            except ValueError:
                warnings.append(f"`{name}={text}` is not a whole number: ignored")
    preset = params.get("preset") or DEFAULT_PRESET
    if preset not in PRESETS:
        warnings.append(f"`preset={preset}` is unknown (known: {', '.join(sorted(PRESETS))}): "
                        f"`{DEFAULT_PRESET}` is used")
        preset = DEFAULT_PRESET
    declared = all_settings()
    changes = {}
    for key, text in params.items():
        if key in PAGE_PARAMS:
            if str(text).strip():
                view["extra"][key] = str(text).strip()
            continue
        if key in VIEW_PARAMS or key == "preset" or key in STREAMLIT_PARAMS:
            continue
        if key not in declared:
            warnings.append(f"`{key}` is not a setting: ignored")
            continue
        value, warning = parse_setting(key, text)
        if warning:
            warnings.append(warning)
        if value is not None:
            changes[key] = value
    return view, DetectionSettings(changes, preset=preset), warnings


def to_params(month, orbit, peak, settings: DetectionSettings, extra: Mapping[str, str] | None = None
              ) -> dict[str, str]:
    """The URL parameters of a view: what is shown (and a page's own choices, :data:`PAGE_PARAMS`), the preset, and
    the settings that differ from it."""
    params = {}
    for name, value in (("month", month), ("orbit", orbit), ("peak", peak)):
        if value is not None:
            params[name] = str(value)
    params.update({k: v for k, v in sorted((extra or {}).items()) if k in PAGE_PARAMS and v})
    params["preset"] = settings.preset
    for key, value in sorted(settings.changed().items()):
        params[key] = format_value(value)
    return params


def link(base: str, params: Mapping[str, str]) -> str:
    return f"{base}?{urlencode(params, safe='-.:_')}" if params else base


# ------------------------------------------------------------------------------------------ session state

_VIEW = "wb_view"  # {"month", "orbit", "peak"}
_SETTINGS = "wb_settings"  # DetectionSettings
_LAST_PARAMS = "wb_last_params"
_WARNINGS = "wb_warnings"
_PAGE = "wb_page_path"


def init() -> None:
    """Read the URL when the session starts or when it was changed from outside; call first on every run."""
    ss = st.session_state
    params = st.query_params.to_dict()
    if _VIEW in ss and (not params or params == ss.get(_LAST_PARAMS)):
        return
    parsed, settings, warnings = parse_params(params)
    ss[_VIEW] = parsed
    ss[_SETTINGS] = settings
    ss[_WARNINGS] = ss.get(_WARNINGS, []) + warnings
    ss[_LAST_PARAMS] = params


def warn(message: str) -> None:
    """Queue a warning for the top of the page (shown once)."""
    st.session_state.setdefault(_WARNINGS, []).append(message)


def pop_warnings() -> list[str]:
    return st.session_state.pop(_WARNINGS, [])


def settings() -> DetectionSettings:
    return st.session_state[_SETTINGS]


def set_settings(new: DetectionSettings) -> None:
    st.session_state[_SETTINGS] = new


def set_setting(key: str, value) -> None:
    current = settings()
    if current[key] != value:
        set_settings(current.replace({key: value}))


def set_preset(name: str) -> None:
    set_settings(DetectionSettings(preset=name))


def month() -> str | None:
    return st.session_state[_VIEW]["month"]


def orbit() -> int | None:
    return st.session_state[_VIEW]["orbit"]


def peak() -> int | None:
    return st.session_state[_VIEW]["peak"]


def set_month(value: str | None) -> None:
    v = st.session_state[_VIEW]
    if v["month"] != value:
        v.update(month=value, orbit=None, peak=None)
        v.setdefault("extra", {})


def _whole(value) -> int | None:
    """An id from a widget; None for anything else (a selectbox whose options changed may hand back a label)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def set_orbit(value: int | None) -> None:
    v = st.session_state[_VIEW]
    value = _whole(value)
    if value is not None and v["orbit"] != value:
        v.update(orbit=value, peak=None)


def set_peak(value: int | None) -> None:
    """Choose a peak (its sounding id); ``None`` clears it, anything not an id is ignored."""
    if value is None or _whole(value) is not None:
        st.session_state[_VIEW]["peak"] = None if value is None else _whole(value)


def resolve(months: list[str], orbits_of) -> None:
    """Make month and orbit valid: an unknown one gives a warning and the default (latest month, first orbit)."""
    v = st.session_state[_VIEW]
    if not months:
        v.update(month=None, orbit=None, peak=None)
        return
    if v["month"] not in months:
        if v["month"] is not None:
            warn(f"month {v['month']} is not in the cache: showing {months[-1]}")
        v.update(month=months[-1], orbit=None, peak=None)
    orbits = list(orbits_of(v["month"]))
    if v["orbit"] is not None and v["orbit"] not in orbits:
        warn(f"orbit {v['orbit']} is not in {v['month']}: showing orbit {orbits[0] if orbits else '-'}")
        v.update(orbit=None, peak=None)
    if v["orbit"] is None and orbits:
        v["orbit"] = int(orbits[0])


def params() -> dict[str, str]:
    v = st.session_state[_VIEW]
    return to_params(v["month"], v["orbit"], v["peak"], settings(), v.get("extra"))


def page_choice(name: str) -> str:
    """A page's own choice as the link gave it ('' when none): :data:`PAGE_PARAMS`."""
    return st.session_state[_VIEW].setdefault("extra", {}).get(name, "")


def set_page_choice(name: str, text: str) -> None:
    """Keep a page's own choice in the view (and so in the link); '' removes it."""
    extra = st.session_state[_VIEW].setdefault("extra", {})
    if text:
        extra[name] = text
    else:
        extra.pop(name, None)


def sync_url(page_path: str | None = None) -> None:
    """Write the view into the URL (only when it changed); remember the page for the share link."""
    if page_path is not None:
        st.session_state[_PAGE] = page_path
    wanted = params()
    current = st.query_params.to_dict()
    wanted.update({k: v for k, v in current.items() if k in STREAMLIT_PARAMS})
    if current != wanted:
        st.query_params.from_dict(wanted)
    st.session_state[_LAST_PARAMS] = wanted


def share_link() -> str:
    """The full link to this view (absolute when the browser told us its address)."""
    base = st.context.url
    if not base:
        base = "/" + st.session_state.get(_PAGE, "")
    return link(base.split("?")[0], params())
