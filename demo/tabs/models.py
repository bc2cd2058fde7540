"""The model of a browser session: the Model dropdown of the page header, callbacks that take its
value as their last input (the API's ``model`` argument), and the controls that follow a switch.

Nothing here is global: the server holds one :class:`~arpg.store.ModelStore`; the dropdown's
value lives in each browser session and every callback asks the store for that model's
pipeline, so two users can use two models at once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from arpg.data.digits import CLASS_NAMES as DIGIT_NAMES
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline
from arpg.store import SHIPPED_NAME, ModelStore

from .errors import guard, plain_errors
from .widgets import SAMPLING_FIELDS, default_steps, is_model_default

#: ``factory(pipe)`` -> a tab's callback for that model (the tabs' ``*_handler`` functions).
Factory = Callable[[Pipeline], Callable[..., Any]]
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


def _model_param() -> inspect.Parameter:
    return inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD)


def session_options(pipe: Pipeline, values: dict[str, Any]) -> SamplingOptions:
    """The sampling controls' ``values`` as options on ``pipe``: a field left out (None) is the model's
    default, the steps the page's default for it (:func:`demo.tabs.widgets.default_steps`)."""
    if values.get("steps") is None:
        values = {**values, "steps": default_steps(pipe)}
    with plain_errors():
        return pipe.defaults.replace(**values)


def api_defaults(blocks: gr.Blocks) -> None:
    """Make every input :func:`demo.tabs.widgets.model_default` marked default to None in ``blocks``' API
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
        """The pipeline of ``name`` (loaded now if needed); a plain gr.Error when it is unknown or unavailable."""
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

    def callback(self, factory: Factory) -> Callable[..., Any]:
        """A gradio callback for ``factory``'s callbacks, on the session's model.

        ``factory(pipe)`` returns ``fn(*own, [options,] [progress=...])``.  The callback takes
        the values of ``fn``'s own inputs, then (when ``fn`` takes ``options``) those of the
        sampling controls (:data:`SAMPLING_FIELDS`), then the model's name; it calls
        ``factory(store.get(model))`` with the controls' values as one ``SamplingOptions`` (from
        that model's defaults).  Its signature names every input, so the API has one named
        parameter per control and ``model`` last.
        """
        probe = factory(self.first)
        sig = inspect.signature(probe)
        own = [p for name, p in sig.parameters.items() if name not in ("options", "progress")]
        fields = SAMPLING_FIELDS if "options" in sig.parameters else ()
        n_own, n_in = len(own), len(own) + len(fields)
        at_class = next((i for i, p in enumerate(own) if p.name == "class_name"), None)

        def prepare(args: tuple) -> tuple[Callable[..., Any], tuple, dict[str, Any]]:
            pipe = self.pipe(args[n_in] if len(args) > n_in else None)
            kwargs: dict[str, Any] = {}
            if fields:
                kwargs["options"] = session_options(pipe, dict(zip(fields, args[n_own:n_in], strict=True)))
            if len(args) > n_in + 1:
                kwargs["progress"] = args[n_in + 1]
            own_args = list(args[:n_own])
            if at_class is not None and at_class < n_own and own_args[at_class] is None:
                own_args[at_class] = pipe.class_names[0]  # left out: the model's first class, as on the page
            return factory(pipe), tuple(own_args), kwargs

        if inspect.isgeneratorfunction(probe):

            def callback(*args: Any) -> Any:
                fn, own_args, kwargs = prepare(args)
                yield from fn(*own_args, **kwargs)
        else:

            def callback(*args: Any) -> Any:
                fn, own_args, kwargs = prepare(args)
                return fn(*own_args, **kwargs)

        sampling = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in fields]
        tail = [sig.parameters["progress"]] if "progress" in sig.parameters else []
        callback.__signature__ = sig.replace(parameters=[*own, *sampling, _model_param(), *tail])  # type: ignore
        callback.__name__, callback.__qualname__, callback.__doc__ = probe.__name__, probe.__qualname__, probe.__doc__
        return callback

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

    def _switch_callback(self) -> Callable[..., list[Any]]:
        """:meth:`switch` as a gradio callback of the dropdown and :attr:`kept_inputs` (one named parameter each)."""
        n = len(self.kept_inputs)

        def switch_model(name: str, *args: Any) -> list[Any]:
            return self.switch(name, args[:n], progress=args[n] if len(args) > n else gr.Progress())

        kept = [inspect.Parameter(f"kept_{i}", inspect.Parameter.POSITIONAL_OR_KEYWORD) for i in range(n)]
        progress = inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress())
        name = inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        switch_model.__signature__ = inspect.Signature([name, *kept, progress])  # type: ignore[attr-defined]
        return switch_model

    def attach(self, line: gr.Markdown) -> None:
        """Register the switch (call once every tab has added its followers): on a choice in the
        dropdown (its ``input`` event: a person's choice; examples that set it are followed by their
        own switch, see :meth:`after_example`) and after every example click."""
        outputs = [line] + [c for f in self.followers for c in f.components]
        inputs = [self.dropdown, *self.kept_inputs]
        switch = guard(self._switch_callback())
        common: dict[str, Any] = dict(
            api_visibility="private", show_progress_on=[line], concurrency_id="model-switch", concurrency_limit=1
        )
        self.dropdown.input(switch, inputs, outputs, **common)
        for examples in self.examples:
            examples.load_input_event.then(switch, inputs, outputs, **common)
