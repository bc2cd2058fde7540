"""The parts the tabs (:mod:`demo.tabs`) are built from: ``model_choice`` (the session's Model dropdown, the
model an API call names, what follows a switch), ``widgets`` (inputs, the sampling controls and their options),
``runner`` (seed, streaming of partial images, summary), ``errors`` (plain-words gr.Error), ``gpu`` (a callback
as registered: errors in plain words, on ZeroGPU for the seconds its arguments need), ``cancel`` (work stops
when its caller leaves), ``pictures`` (image inputs, display), ``decoding`` (how a canvas bigger than the
model's grids is decoded), ``examples`` (digit examples; each model's own examples from its card, which switch
to it) and ``downloads`` (files handed out)."""
