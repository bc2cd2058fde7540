"""The model of a browser session: the Model dropdown of the page header, whose value every API callback
takes as its last input (the API's ``model`` argument), and the controls that follow a switch.

Nothing here is global: the server holds one :class:`~arpg.store.ModelStore`; the dropdown's
value lives in each browser session and every callback asks the store for that model's
pipeline (:meth:`ModelChoice.pipe`), so two users can use two models at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from arpg.data.digits import CLASS_NAMES as DIGIT_NAMES
from arpg.pipeline import Pipeline
from arpg.store import SHIPPED_NAME, ModelStore

from .errors import guard, plain_errors
from .widgets import is_model_default

#: ``update(pipe, *values)`` -> new values (or gr.update) of some components after a switch to ``pipe``;
#: ``values``: those of the inputs the follower named (see :meth:`ModelChoice.follow`), None when unknown.
Update = Callable[..., Sequence[Any]]


@dataclass
class Follower:
    """Components set after a switch to ``update(pipe, *values of inputs)``."""

    components: list[Any]
    update: Update
    inputs: list[Any] = field(default_factory=list)


def model_line(pipe: Pipeline) -> str:
    """One line about a model: name, parameters, classes, image and token grid, device."""
    dev = pipe.device.type.upper() if pipe.device.type != "cpu" else "CPU"
    size = pipe.image_size
    n_par = pipe.num_params / 1e6
    sizes = pipe.model.cfg.trained_sizes
    canvases = ""
    if len(sizes) > 1:  # trained on several canvases: name them, as width x height
        canvases = " · trained on canvases of " + ", ".join(f"{c}×{r}" for r, c in sizes) + " tokens"
    return (
        f"**Model:** {pipe.name} · {n_par:.1f} M parameters · {pipe.num_classes} classes · "
        f"{size}×{size} px images from {pipe.grid[0]}×{pipe.grid[1]} tokens{canvases} · running on {dev}"
    )


def api_defaults(blocks: gr.Blocks) -> None:
    """Make every input :func:`demo.parts.widgets.model_default` marked default to None in ``blocks``' API
    description (the API page, gradio_client, MCP tools): a call that leaves it out gets the session
    model's default, not the value the widget was built with for the first model."""
    original = blocks.get_api_info

    def get_api_info(*args: Any, **kwargs: Any) -> Any:
        info = original(*args, **kwargs)
        by_name = {f"/{f.api_name}": f for f in blocks.fns.values() if f.api_name}
        for name, endpoint in (info or {}).get("named_endpoints", {}).items():
            fn = by_name.get(name)
            shown = [c for c in (fn.inputs if fn else []) if not getattr(c, "skip_api", False)]
            for param, component in zip(endpoint.get("parameters", []), shown):
                if is_model_default(component):
                    param.update(parameter_has_default=True, parameter_default=None)
        return info

    blocks.get_api_info = get_api_info  # type: ignore[method-assign]


@dataclass
class ModelChoice:
    """The Model dropdown, the store behind it and what follows a switch."""

    store: ModelStore
    dropdown: gr.Dropdown
    followers: list[Follower] = field(default_factory=list)
    examples: list[gr.Examples] = field(default_factory=list)

    @classmethod
    def build(cls, store: ModelStore) -> ModelChoice:
        """The dropdown (choices: ``store.names()``, the first model chosen), built in place."""
        dropdown = gr.Dropdown(
            store.names(),
            value=store.first.name,
            label="Model",
            elem_id="model-choice",
            info="for this browser tab; other users keep theirs",
            scale=1,
            min_width=240,
        )
        return cls(store, dropdown)

    @property
    def first(self) -> Pipeline:
        """The model the server started with: what the tabs are built for."""
        return self.store.first

    def pipe(self, name: str | None) -> Pipeline:
        """The pipeline of ``name``, a callback's ``model`` (loaded now if needed; None: the first model); a
        plain gr.Error when it is unknown or unavailable."""
        with plain_errors():
            return self.store.get(name)

    def example_classes(self) -> list[str] | None:
        """The class names the digit examples are labelled with: the first model's when it has ten
        classes (and no examples of its own), else the shipped model's when it is offered; None: no examples."""
        if self.first.num_classes == len(DIGIT_NAMES) and not self.first.card.examples:
            return list(self.first.class_names)
        return list(DIGIT_NAMES) if SHIPPED_NAME in self.store.names() else None

    def has_examples(self, task: str) -> bool:
        """Whether an offered model's card has examples of ``task`` (its tab then shows those)."""
        return any(card.examples_for(task) for _, _, card in self.store.cards())

    def follow(self, components: Sequence[Any], update: Update, inputs: Sequence[Any] = ()) -> None:
        """After a switch, set ``components`` to ``update(new pipe, *values of inputs)`` (one value per
        component); ``inputs``: components whose values the update keeps when they fit the new model
        (e.g. the class an example chose together with the model)."""
        self.followers.append(Follower(list(components), update, list(inputs)))

    def text(self, text_of: Callable[[Pipeline], str], **kwargs: Any) -> gr.Markdown:
        """A Markdown of ``text_of(model)`` (``kwargs``: the Markdown's), built in place, that follows the
        session's model: words that depend on what the model learnt (a digit, a landscape)."""
        markdown = gr.Markdown(text_of(self.first), **kwargs)
        self.follow([markdown], lambda pipe: [text_of(pipe)])
        return markdown

    def after_example(self, examples: gr.Examples) -> None:
        """Apply the session's model again after a click on one of ``examples``: gradio's example load
        resets its inputs' choices and ranges to those they were built with (the first model's), and a
        row that names a model switches to it (the class and amount it chose are kept)."""
        self.examples.append(examples)

    @property
    def kept_inputs(self) -> list[Any]:
        """Every follower's inputs, in order: the switch's inputs after the dropdown."""
        return [c for f in self.followers for c in f.inputs]

    def switch(self, name: str, kept: Sequence[Any] = (), progress: gr.Progress = gr.Progress()) -> list[Any]:
        """Load ``name`` (with a progress message when it is not in memory yet) and return the
        model line and the new values of every follower; ``kept``: the values of :attr:`kept_inputs`
        (missing ones are None)."""
        if name not in self.store.resident() and name in self.store.names():
            gr.Info(f"Loading {name} …", duration=4)
            progress(0, desc=f"Loading {name} …")
        pipe = self.pipe(name)
        values = iter([*kept, *[None] * len(self.kept_inputs)][: len(self.kept_inputs)])
        out: list[Any] = [model_line(pipe)]
        for f in self.followers:
            new = list(f.update(pipe, *[next(values) for _ in f.inputs]))
            if len(new) != len(f.components):
                raise RuntimeError(f"a model follower returned {len(new)} values for {len(f.components)} components")
            out += new
        return out

    def switch_model(self, name: str, progress: gr.Progress = gr.Progress(), *kept: Any) -> list[Any]:
        """:meth:`switch` as the dropdown's callback; its inputs are the dropdown and :attr:`kept_inputs`.

        ``progress`` comes before ``kept``: gradio hands a progress tracker to a leading parameter whose
        default is one, and passes the inputs' values to the others in order."""
        return self.switch(name, kept, progress=progress)

    def attach(self, line: gr.Markdown) -> None:
        """Register the switch (call once every tab has added its followers): on a choice in the
        dropdown (its ``input`` event: a person's choice; examples that set it are followed by their
        own switch, see :meth:`after_example`) and after every example click."""
        outputs = [line] + [c for f in self.followers for c in f.components]
        inputs = [self.dropdown, *self.kept_inputs]
        switch = guard(self.switch_model)
        common: dict[str, Any] = dict(
            api_visibility="private", show_progress_on=[line], concurrency_id="model-switch", concurrency_limit=1
        )
        self.dropdown.input(switch, inputs, outputs, **common)
        for examples in self.examples:
            examples.load_input_event.then(switch, inputs, outputs, **common)
