"""What reproduces a result of the app: the command line, and the page address that opens it again.

A tab's request records a :class:`Recipe` (:meth:`demo.parts.runner.Run.record`): its task (the
endpoint's API name), model, class, seed, sampling options and the task's own inputs by their API
parameter names. From it, :func:`cli_line` writes the ``python -m arpg`` command that makes the same
result and :func:`link_query` the query string of a page address that opens the tab with the same
settings (:mod:`demo.deep_link` reads it back when the page loads). Pure Python: no gradio here.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from arpg import zoo
from arpg.hub import RELEASED
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline

#: Where the command line names the user's own files (an example's image path replaces IMAGE).
IMAGE, MASK = "your-image.png", "your-mask.png"
#: The tab of each task (an endpoint's API name), as the page's tab ids name them.
TAB_OF = {
    "generate": "generate",
    "inpaint": "inpaint",
    "outpaint": "outpaint",
    "panorama": "outpaint",
    "resize": "resolution",
    "animate": "visualize",
    "side_by_side": "visualize",
    "compare": "visualize",
    "measure": "tradeoffs",
}
#: The command-line flag of each sampling option other than ``steps`` (always written).
SAMPLING_FLAGS = {
    "schedule": "--schedule",
    "cfg_scale": "--cfg",
    "cfg_schedule": "--cfg-schedule",
    "temperature": "--temperature",
    "top_k": "--top-k",
    "top_p": "--top-p",
    "order": "--order",
}
#: The repository root, for showing example paths relative to it.
ROOT = Path(__file__).resolve().parents[1]


def model_args(pipe: Pipeline) -> tuple[tuple[str, ...], str]:
    """The command-line flags that name ``pipe``'s model, and its short name in a link.

    A registered model trained here is ``--model <its registry name>`` (a preview or another folder:
    ``--model DIR``, the folder the app was given); a released one ``--weights ARPG-L``; any other
    ``--weights`` with its name."""
    name, data = str(pipe.name), getattr(pipe, "data", None)
    if name in RELEASED:
        return ("--weights", name), name
    entry = zoo.by_title(name)
    if entry is not None:
        return ("--model", entry.name), entry.name
    if data:
        return ("--model", "DIR"), name
    return ("--weights", name), name


def class_arg(pipe: Pipeline, label: int) -> str:
    """The class as the command line takes it: its name, or its number when the name is ambiguous."""
    name = pipe.class_names[label]
    try:
        return name if pipe.label_of(name) == label else str(label)
    except ValueError:
        return str(label)


def number(value: Any) -> str:
    """A number as a flag's value: integers plainly, other floats exactly (``repr``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Recipe:
    """What one request ran: enough to run it again from the command line or to open it again."""

    task: str
    model: tuple[str, ...]  # the command-line flags naming the model (:func:`model_args`)
    link_model: str  # the model's name in a link
    class_arg: str
    seed: int
    options: SamplingOptions
    defaults: SamplingOptions  # the model's: options equal to them are left out
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, pipe: Pipeline, label: int, seed: int, task: str, options: SamplingOptions, settings: Mapping
    ) -> Recipe:
        """The recipe of a request of ``task`` on ``pipe`` (class ``label``, the seed it used)."""
        flags, short = model_args(pipe)
        return cls(task, flags, short, class_arg(pipe, label), int(seed), options, pipe.defaults, dict(settings))

    def changed(self) -> dict[str, Any]:
        """The sampling options other than ``steps`` that differ from the model's defaults (orders by name only)."""
        out = {}
        for name in SAMPLING_FLAGS:
            value = getattr(self.options, name)
            if value != getattr(self.defaults, name) and not (name == "order" and not isinstance(value, str)):
                out[name] = value
        return out


def _decoding(s: Mapping[str, Any]) -> list[str]:
    return ["--decoding", str(s["decoding"])] if s.get("decoding") else []


def _outpaint(s: Mapping[str, Any]) -> list[str]:
    sides = [w for d in s["directions"] for w in (f"--{d}", number(s["amount"]))]
    return ["outpaint", IMAGE, *sides, *_decoding(s)]


def _inpaint(s: Mapping[str, Any]) -> list[str] | None:
    if s.get("dilate"):  # the command line has no flag that grows the painted mask
        return None
    return ["inpaint", IMAGE, "--mask", MASK, *([] if s.get("blend", True) else ["--no-blend"])]


#: Per task: the command and its own words from the task's settings (None: no command does it).
COMMANDS: dict[str, Callable[[Mapping[str, Any]], list[str] | None]] = {
    "generate": lambda s: ["sample", "-n", number(s.get("n_images", 1))],
    "animate": lambda s: ["animate", "--fps", number(s["fps"])],
    "compare": lambda s: ["animate", "--compare", "--fps", number(s["fps"])],
    "outpaint": _outpaint,
    "panorama": lambda s: ["panorama", IMAGE, "--times", number(s["times"]), "--side", s["side"], *_decoding(s)],
    "resize": lambda s: [
        "resize",
        IMAGE,
        "--scale",
        number(s["scale"]),
        "--strategy",
        s["strategy"],
        "--regenerate",
        number(s["regenerate"]),
        *_decoding(s),
    ],
    "inpaint": _inpaint,
}


def cli_line(recipe: Recipe) -> str | None:
    """The ``python -m arpg ...`` command that makes ``recipe``'s result (None when no command does:
    two orders side by side, a grown inpainting mask)."""
    build = COMMANDS.get(recipe.task)
    words = build(recipe.settings) if build else None
    if words is None:
        return None
    sampling = [w for name, v in recipe.changed().items() for w in (SAMPLING_FLAGS[name], number(v))]
    argv = [
        *("python", "-m", "arpg"),
        *words,
        *recipe.model,
        *("--class", recipe.class_arg),
        *("--steps", number(recipe.options.steps)),
        *sampling,
        *("--seed", str(recipe.seed)),
    ]
    return shlex.join(argv)


def _link_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return number(value)


def link_query(recipe: Recipe) -> str:
    """The query string (``?tab=...&model=...``) of the page address that opens ``recipe``'s tab with its
    model, class, seed and settings (keys: the endpoint's API parameter names, ``class`` for the class)."""
    params: dict[str, str] = {
        "tab": TAB_OF.get(recipe.task, "generate"),
        "model": recipe.link_model,
        "class": recipe.class_arg,
        "seed": str(recipe.seed),
        "steps": number(recipe.options.steps),
    }
    params.update({k: _link_value(v) for k, v in recipe.changed().items()})
    params.update({k: _link_value(v) for k, v in recipe.settings.items() if v is not None})
    return "?" + urlencode(params)


def shown_path(path: str | Path) -> str:
    """A file's path as a command line in this repository names it (relative to the root when inside)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def _files_note(line: str) -> str:
    """What the placeholders of a command line stand for."""
    if IMAGE not in line:
        return ""
    return f" ({IMAGE}: your image" + (f"; {MASK}: white where you painted" if MASK in line else "") + ")"


def reproduce_markdown(recipe: Recipe) -> str:
    """The lines a summary ends with: the command that makes the same result and a link to these settings."""
    line = cli_line(recipe)
    command = (
        f"Same result from the command line: `{line}`{_files_note(line)}" if line else "No single command does this."
    )
    return f"\n\n{command} · [link to these settings]({link_query(recipe)})"


def with_image(text: str, path: str | Path) -> str:
    """``text`` (a summary) with the command line naming the image file ``path`` instead of :data:`IMAGE`."""
    if IMAGE not in text:
        return text
    return text.replace(_files_note(IMAGE), "").replace(IMAGE, shlex.quote(shown_path(path)))
