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

from arpg.pipeline import Pipeline
from arpg.store import SHIPPED_NAME, ModelStore
from arpg.train.digits import CLASS_NAMES as DIGIT_NAMES

from .errors import guard, plain_errors
from .widgets import SAMPLING_FIELDS

#: ``factory(pipe)`` -> a tab's callback for that model (the tabs' ``*_handler`` functions).
Factory = Callable[[Pipeline], Callable[..., Any]]
#: ``update(pipe)`` -> new values (or gr.update) of some components after a switch to ``pipe``.
Update = Callable[[Pipeline], Sequence[Any]]


def model_line(pipe: Pipeline) -> str:
    """One line about a model: name, parameters, classes, image and token grid, device."""
    dev = pipe.device.type.upper() if pipe.device.type != "cpu" else "CPU"
    size = pipe.image_size
    n_par = pipe.num_params / 1e6
    return (
        f"**Model:** {pipe.name} · {n_par:.1f} M parameters · {pipe.num_classes} classes · "
        f"{size}×{size} px images from {pipe.grid[0]}×{pipe.grid[1]} tokens · running on {dev}"
    )


def _model_param() -> inspect.Parameter:
    return inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD)


@dataclass
class ModelChoice:
    """The Model dropdown, the store behind it and what follows a switch."""

    store: ModelStore
    dropdown: gr.Dropdown
    followers: list[tuple[list[Any], Update]] = field(default_factory=list)

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
        classes, else the shipped model's when it is offered; None: no examples."""
        if self.first.num_classes == len(DIGIT_NAMES):
            return list(self.first.class_names)
        return list(DIGIT_NAMES) if SHIPPED_NAME in self.store.names() else None

    def follow(self, components: Sequence[Any], update: Update) -> None:
        """After a switch, set ``components`` to ``update(new pipe)`` (one value per component)."""
        self.followers.append((list(components), update))

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

        def prepare(args: tuple) -> tuple[Callable[..., Any], tuple, dict[str, Any]]:
            pipe = self.pipe(args[n_in] if len(args) > n_in else None)
            kwargs: dict[str, Any] = {}
            if fields:
                with plain_errors():
                    kwargs["options"] = pipe.defaults.replace(**dict(zip(fields, args[n_own:n_in], strict=True)))
            if len(args) > n_in + 1:
                kwargs["progress"] = args[n_in + 1]
            return factory(pipe), args[:n_own], kwargs

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

    def switch(self, name: str, progress: gr.Progress = gr.Progress()) -> list[Any]:
        """Load ``name`` (with a progress message when it is not in memory yet) and return the
        model line and the new values of every follower."""
        if name not in self.store.resident() and name in self.store.names():
            gr.Info(f"Loading {name} …", duration=4)
            progress(0, desc=f"Loading {name} …")
        pipe = self.pipe(name)
        out: list[Any] = [model_line(pipe)]
        for components, update in self.followers:
            values = list(update(pipe))
            if len(values) != len(components):
                raise RuntimeError(f"a model follower returned {len(values)} values for {len(components)} components")
            out += values
        return out

    def attach(self, line: gr.Markdown) -> None:
        """Register the dropdown's change event (call once every tab has added its followers)."""
        outputs = [line] + [c for components, _ in self.followers for c in components]
        self.dropdown.change(
            guard(self.switch),
            [self.dropdown],
            outputs,
            api_visibility="private",
            show_progress_on=[line],
            concurrency_id="model-switch",
            concurrency_limit=1,
        )
