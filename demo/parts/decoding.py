"""Canvas decoding, shared by the Outpaint and Resolution tabs: the "Decoding" choice of a canvas bigger than
the grids the model was trained on (in windows or whole, :data:`arpg.windows.DECODINGS`) and the words a result's
summary says about how it was decoded."""

from __future__ import annotations

import gradio as gr

from arpg import tasks
from arpg.pipeline import Pipeline
from arpg.windows import DECODINGS

from .model_choice import ModelChoice
from .runner import plural
from .widgets import model_default

DECODING_INFO = (
    "windowed: in windows of a grid size the model was trained on, each seeing every known token "
    "inside it; whole: the bigger grid in one decode (positions the model may never have seen)"
)


def decoding_radio(choice: ModelChoice, task: str) -> gr.Radio:
    """The "Decoding" choice of a canvas task (:data:`arpg.windows.DECODINGS`), on the session model's
    decoding for ``task`` (what measured best on it, :attr:`arpg.pipeline.Pipeline.decodings`), set again
    when the model changes."""

    def value(pipe: Pipeline) -> str:
        return tasks.decoding_for(task, None, pipe.decodings)

    radio = model_default(gr.Radio(list(DECODINGS), value=value(choice.first), label="Decoding", info=DECODING_INFO))
    choice.follow([radio], lambda pipe: [gr.update(value=value(pipe))])
    return radio


def decoding_note(pipe: Pipeline, grid: tuple[int, int], used: tasks.Used) -> str | None:
    """How a canvas of ``grid`` (rows, cols) tokens was decoded, as its result's record ``used`` says
    (:attr:`arpg.tasks.TaskResult.used`: in windows or whole), beside the grids ``pipe``'s model was trained
    on (its config's ``trained_sizes``); None when nothing was decoded."""
    if not used.steps:
        return None
    sizes = pipe.model.cfg.trained_sizes
    trained = " or ".join(f"{c}×{r}" for r, c in sizes)
    bigger = f"the {grid[1]}×{grid[0]}-token grid is bigger than the {trained} the model was trained on"
    if used.windows is not None and used.windows > 1:
        return f"decoded in windows: {bigger} ({plural(used.windows, 'window')} of {used.window[1]}×{used.window[0]})"
    if any(grid[0] <= r and grid[1] <= c for r, c in sizes):
        return "decoded whole: a grid size the model was trained on"
    return f"decoded whole: {bigger} (positions beyond them never seen)"
