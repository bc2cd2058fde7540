"""One module per tab of the app (``generate``, ``inpaint``, ``outpaint``, ``resolution``, ``visualize``,
``tradeoffs``, with ``tradeoffs_results``: the saved and measured results behind the Trade-offs tab), each with
``build(choice, ...)`` called inside the Blocks and one ``<endpoint>_callback(choice)`` per API endpoint: a
function whose ``def`` line lists the endpoint's parameters in order, ``model`` last, and that runs the task on
that model. The parts they share are in :mod:`demo.parts`."""
