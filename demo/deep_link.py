"""Deep links: a page address whose query (written by :func:`demo.links.link_query`, e.g.
``?tab=outpaint&model=digits&class=three&seed=7&steps=32&directions=right&amount=8``) opens the page on
that tab, with that model, class, seed and settings, read once when the page loads.

Keys: ``tab`` (a tab id), ``model`` (a name of the Model dropdown, or a registry name such as ``digits``),
``class`` (a name or number of that model's classes) and the API parameter names of the tab's
endpoints (``seed``, ``steps``, ``cfg_scale``, ``amount``, ...). A value that does not fit its
widget is left out, with a warning that names it; a seed turns "Randomize seed" off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gradio as gr

from arpg.pipeline import Pipeline
from arpg.validation import check_number, check_seed

from .endpoints import endpoint
from .links import TAB_OF
from .parts.model_choice import ModelChoice

#: Link keys that are not a widget of the tab.
RESERVED = ("tab", "model")
_TRUE = {"1", "true", "yes", "on"}


def tab_widgets(blocks: gr.Blocks, tab: str) -> dict[str, Any]:
    """The components a link sets on ``tab``, by the API parameter names of its endpoints (not ``model``)."""
    widgets: dict[str, Any] = {}
    for task in (t for t, where in TAB_OF.items() if where == tab):
        found = endpoint(blocks, task)
        for name, component in (found.inputs if found else {}).items():
            widgets.setdefault(name, component)
    widgets.pop("model", None)
    return widgets


def _choices(component: Any, current: Any) -> list[Any]:
    if isinstance(current, dict) and "choices" in current:
        return [c[1] if isinstance(c, (list, tuple)) else c for c in current["choices"]]
    return [c[1] if isinstance(c, (list, tuple)) else c for c in (component.choices or [])]


def widget_value(name: str, component: Any, raw: str, current: Any, pipe: Pipeline) -> Any:
    """The value of a link's ``name=raw`` for ``component`` (``current``: its update after a model switch,
    if any); ``ValueError`` when it does not fit."""
    if name == "class_name":
        return pipe.class_names[pipe.label_of(raw)]
    if name == "seed":
        return check_seed(check_number(name, raw, 0, integer=True))
    if isinstance(component, gr.Slider):
        top = current.get("maximum", component.maximum) if isinstance(current, dict) else component.maximum
        return check_number(name, raw, component.minimum, top, integer=component.precision == 0)
    if isinstance(component, gr.Checkbox):
        return raw.strip().lower() in _TRUE
    choices = _choices(component, current)
    if isinstance(component, gr.CheckboxGroup):
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if not parts or any(p not in choices for p in parts):
            raise ValueError(f"{name} takes some of {', '.join(map(str, choices))}")
        return parts
    if raw not in choices:
        raise ValueError(f"{name} takes one of {', '.join(map(str, choices))}")
    return raw


def _merge(current: Any, value: Any) -> Any:
    """A component's new value on top of the update the model switch gave it (if any)."""
    return {**current, "value": value} if isinstance(current, dict) else gr.update(value=value)


class LinkReader:
    """Reads a page address on load and says what each component becomes (:meth:`__call__`)."""

    def __init__(self, blocks: gr.Blocks, choice: ModelChoice, tabs: gr.Tabs, line: gr.Markdown) -> None:
        self.choice, self.tabs, self.line = choice, tabs, line
        self.widgets = {tab: tab_widgets(blocks, tab) for tab in dict.fromkeys(TAB_OF.values())}
        followers = [c for f in choice.followers for c in f.components]
        every = [c for w in self.widgets.values() for c in w.values()]
        self.outputs = list({id(c): c for c in [tabs, choice.dropdown, line, *followers, *every]}.values())

    def model(self, value: str) -> str | None:
        """The Model dropdown's name for a link's ``model`` (a name, a registry name or a data set)."""
        store = self.choice.store
        return value if value in store.names() else store.name_of(value) or store.named_for(value)

    def _switch(self, name: str, new: dict[int, Any], progress: Any) -> Any:
        """Switch to ``name`` as the dropdown does; returns its pipeline."""
        line, *values = self.choice.switch(name, (), progress=progress)
        followers = [c for f in self.choice.followers for c in f.components]
        new.update({id(c): v for c, v in zip(followers, values, strict=True)})
        new[id(self.line)], new[id(self.choice.dropdown)] = line, name
        return self.choice.pipe(name)

    def read(self, params: Mapping[str, str], progress: Any = None) -> tuple[dict[int, Any], list[str]]:
        """What the components become (by id) for a link's ``params``, and the keys left out (with why)."""
        new: dict[int, Any] = {}
        left: list[str] = []
        tab = params.get("tab", "")
        if tab not in self.widgets:
            return new, [f"tab={tab[:40]}"] if tab else []
        new[id(self.tabs)] = gr.update(selected=tab)
        pipe = self.choice.first
        if params.get("model"):
            name = self.model(params["model"])
            if name is None:
                left.append(f"model={params['model'][:40]} (not offered here)")
            else:
                pipe = self._switch(name, new, progress)
        widgets = self.widgets[tab]
        for key, raw in params.items():
            name = "class_name" if key == "class" else key
            if key in RESERVED:
                continue
            if name not in widgets:
                left.append(f"{key[:40]} (no such setting on this tab)")
                continue
            component = widgets[name]
            try:
                new[id(component)] = _merge(
                    new.get(id(component)), widget_value(name, component, raw, new.get(id(component)), pipe)
                )
            except ValueError as exc:
                left.append(f"{key}={raw[:40]} ({str(exc)[:120]})")
        if "seed" in params and "randomize" in widgets and "randomize" not in params:
            new[id(widgets["randomize"])] = False
        return new, left

    def __call__(self, request: gr.Request, progress: gr.Progress = gr.Progress()) -> list[Any]:
        """The load event: every output's new value, or ``gr.skip()`` (a page address without a link: all)."""
        params = dict(request.query_params) if request is not None else {}
        new, left = self.read(params, progress) if params else ({}, [])
        if left:
            gr.Warning("The link's " + "; ".join(left) + " left out.")
        return [new.get(id(c), gr.skip()) for c in self.outputs]


def attach(blocks: gr.Blocks, choice: ModelChoice, tabs: gr.Tabs, line: gr.Markdown) -> Callable[..., list[Any]]:
    """Read the page address when the page loads (call inside ``blocks``, after every tab and
    :meth:`ModelChoice.attach`); returns the reader (its :meth:`LinkReader.read` is what tests call)."""
    reader = LinkReader(blocks, choice, tabs, line)
    blocks.load(reader, None, reader.outputs, api_visibility="private", show_progress="hidden")
    return reader
