"""Sidebar controls generated from the declared settings (:func:`core.settings.all_settings`).

Every :class:`core.settings.Setting` becomes a slider (numbers), a choice of round values on a log scale (numbers
spanning three decades or more, such as the false-alarm rate) or a toggle (switches), labelled with its unit and
helped by its one-line meaning. The false-alarm rate the month's threshold is set for
(``detection.false_alarms_per_1000km``) is drawn first, outside the groups: the analyst asks for a rate of false
events, not for a sigma. The widgets mirror the view state (:mod:`workbench.view`): they are seeded from it on
every run and write back to it in their ``on_change`` callbacks, so a value survives page switches, a preset change
or a settings file load, and the URL always says what the sliders say.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

from core.settings import PRESETS, RULES, DetectionSettings, Setting, all_settings

from . import view

GROUPS = (("Fit constraints", "fit."), ("Screen", "screen."), ("Noise", "noise."), ("False alarms", "detection."),
          ("Emission", "emission."), ("Attribution", "attribution."))
#: The control drawn first, above the rules.
FALSE_ALARMS = "detection.false_alarms_per_1000km"
#: Labels clearer than the key's.
LABELS = {FALSE_ALARMS: "false events per 1,000 km"}
_NICE = (0.001, 0.002, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 25, 50, 100, 200, 500)
_UNIT_SUFFIX = {"km": "_km", "m/s": "_ms", "deg": "_deg"}


@dataclass(frozen=True)
class Control:
    """How one setting is drawn."""

    key: str
    label: str
    help: str
    kind: str  # "slider" | "choice" | "toggle"
    minimum: float | int | None = None
    maximum: float | int | None = None
    step: float | int | None = None
    options: tuple = ()  # "choice": the values offered

    @property
    def widget_key(self) -> str:
        return widget_key(self.key)

    @property
    def decimals(self) -> int:
        """Decimals of the step (0.25 -> 2)."""
        if self.kind != "slider" or isinstance(self.step, int):
            return 0
        text = f"{self.step:.6f}".rstrip("0")
        return len(text.split(".")[1])

    @property
    def format(self) -> str | None:
        return None if self.kind != "slider" or isinstance(self.step, int) else f"%.{self.decimals}f"

    def tidy(self, value):
        """The widget's value without float noise (0.30000000000000004 -> 0.3)."""
        if self.kind == "slider" and isinstance(value, float):
            return round(value, self.decimals + 2)
        return value


def widget_key(setting_key: str) -> str:
    return f"set:{setting_key}"


def slider_step(setting: Setting) -> float | int:
    """A round step giving ~200 positions (ints: ~500) that lands exactly on the minimum, the default and every
    preset's value."""
    span = float(setting.maximum) - float(setting.minimum)
    is_int = setting.kind is int
    target = span / (500 if is_int else 200)
    candidates = [s for s in _NICE if (not is_int or float(s).is_integer())]
    start = next((i for i, s in enumerate(candidates) if s >= target), len(candidates) - 1)
    values = {float(setting.default)} | {float(p[setting.key]) for p in PRESETS.values() if setting.key in p}
    for step in reversed(candidates[:start + 1]):
        offsets = [(v - float(setting.minimum)) / step for v in values]
        if all(abs(k - round(k)) < 1e-6 for k in offsets):
            return int(step) if is_int else float(step)
    return 1 if is_int else 0.001


def log_options(setting: Setting) -> tuple:
    """Round values (1, 2, 5 per decade) within the bounds, with the default and every preset's value."""
    low, high = float(setting.minimum), float(setting.maximum)
    values = {float(setting.default)} | {float(p[setting.key]) for p in PRESETS.values() if setting.key in p}
    for decade in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        values |= {float(f"{m}e{decade}") for m in (1, 2, 5)}
    return tuple(sorted(v for v in values if low <= v <= high))


def _is_log(setting: Setting) -> bool:
    return setting.kind is float and (setting.minimum or 0) > 0 and setting.maximum / setting.minimum >= 1000


def label(setting: Setting) -> str:
    """``too-narrow: min sigma [km]`` from ``rules.too_narrow.min_sigma_km``."""
    if setting.key in LABELS:
        return LABELS[setting.key]
    parts = setting.key.split(".")
    name = parts[-1]
    suffix = _UNIT_SUFFIX.get(setting.unit)
    if suffix and name.endswith(suffix):
        name = name[: -len(suffix)]
    text = name.replace("_", " ")
    if parts[0] == "rules":
        text = f"{parts[1].replace('_', '-')}: {text}"
    unit = f" [{setting.unit}]" if setting.unit and setting.unit != "1" else ""
    return text + unit


def control(setting: Setting) -> Control:
    help_text = f"{setting.meaning[0].upper()}{setting.meaning[1:]}." + (
        f" Unit: {setting.unit}." if setting.unit and setting.unit != "1" else "") + f" (`{setting.key}`)"
    if setting.kind is bool:
        return Control(setting.key, label(setting), help_text, "toggle")
    if _is_log(setting):
        return Control(setting.key, label(setting), help_text, "choice", float(setting.minimum),
                       float(setting.maximum), options=log_options(setting))
    step = slider_step(setting)
    cast = int if setting.kind is int else float
    return Control(setting.key, label(setting), help_text, "slider", cast(setting.minimum), cast(setting.maximum),
                   step)


def controls() -> dict[str, Control]:
    return {key: control(s) for key, s in all_settings().items()}


def rule_sections() -> list[tuple[str, str, list[Control]]]:
    """One section per rule: (rule name, one-line meaning, [enable toggle, threshold sliders...])."""
    every = controls()
    out = []
    for rule in RULES:
        enable_key = f"rules.{rule.name.replace('-', '_')}.enabled"
        toggle = every[enable_key]
        toggle = Control(toggle.key, rule.name, f"{rule.meaning[0].upper()}{rule.meaning[1:]} "
                         f"(origin: {rule.origin}). (`{enable_key}`)", "toggle")
        out.append((rule.name, rule.meaning, [toggle, *(every[s.key] for s in rule.settings)]))
    return out


# -------------------------------------------------------------------------------------------- Streamlit side

def _on_change(key: str) -> None:
    c = controls()[key]
    view.set_setting(key, c.tidy(st.session_state[c.widget_key]))


def _on_preset() -> None:
    view.set_preset(st.session_state["set:preset"])


def seed(widget_key: str, value) -> None:
    """Make a widget show ``value`` (the view's), writing its state only when it differs: a widget the user is
    moving is never overwritten with the value it already sent."""
    if widget_key not in st.session_state or st.session_state[widget_key] != value:
        st.session_state[widget_key] = value


def _draw(c: Control, disabled: bool = False) -> None:
    value = view.settings()[c.key]
    seed(c.widget_key, value)
    if c.kind == "toggle":
        st.toggle(c.label, key=c.widget_key, help=c.help, on_change=_on_change, args=(c.key,))
    elif c.kind == "choice":  # a value from a link may lie between the round ones: offered too
        st.select_slider(c.label, options=sorted({*c.options, value}), key=c.widget_key, help=c.help,
                         format_func=lambda v: f"{v:g}", on_change=_on_change, args=(c.key,), disabled=disabled)
    else:
        st.slider(c.label, min_value=c.minimum, max_value=c.maximum, step=c.step, format=c.format,
                  key=c.widget_key, help=c.help, on_change=_on_change, args=(c.key,), disabled=disabled)


def render_sidebar() -> DetectionSettings:
    """Draw the preset picker and every setting in the sidebar; returns the current settings."""
    settings = view.settings()
    sb = st.sidebar
    seed("set:preset", settings.preset)
    sb.selectbox("Preset", DetectionSettings.preset_names(), key="set:preset", on_change=_on_preset,
                 help="Named rule sets: `recommended` (validated on simulated truth) or `chevallier-2020` (the "
                      "rules as published, to reproduce them). Choosing a preset resets every setting to it.")
    changed = settings.changed()
    sb.caption(f"Settings hash `{settings.hash}` · {len(changed)} changed from the preset")
    if changed:
        sb.button("Reset to the preset", on_click=view.set_preset, args=(settings.preset,), width="stretch")
    every = controls()
    with sb.container(border=True):
        mirror = settings["detection.mirror"]
        _draw(every[FALSE_ALARMS], disabled=not mirror)
        st.caption("Each month's significance threshold is set from its mirror events (depletions fitted upside "
                   "down) for this rate of false events; `rules.significance.min_snr` is its floor."
                   if mirror else "`detection.mirror` is off (False alarms below): every orbit is judged at "
                   "`rules.significance.min_snr`.")
    with sb.expander("Rules", expanded=True):
        st.caption("A candidate is accepted when every rule that is on holds. Thresholds of a rule that is off "
                   "are greyed out.")
        for _, _, (toggle, *thresholds) in rule_sections():
            _draw(toggle)
            for c in thresholds:
                _draw(c, disabled=not settings[toggle.key])
    for title, prefix in GROUPS:
        with sb.expander(title):
            for key, c in every.items():
                if key.startswith(prefix) and key != FALSE_ALARMS:
                    _draw(c)
    return settings
