"""One module per tab of the app (``generate``, ``inpaint``, ``outpaint``, ``resolution``,
``visualize``, ``tradeoffs``), each with ``build(choice, ...)`` called inside the Blocks and
``*_handler(pipe)`` factories of its callbacks, and the pieces they share: ``models`` (the
session's Model dropdown: callbacks on the chosen model, what follows a switch), ``widgets``
(inputs, sampling controls), ``runner`` (seed, streaming of partial images, summary),
``errors`` (plain-words gr.Error, ZeroGPU durations), ``pictures`` (image inputs, display),
``examples`` (digit examples; each model's own examples from its card, which switch to it) and
``files`` (downloads)."""
