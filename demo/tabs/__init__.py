"""One module per tab of the app; each has ``build(pipe, ...)`` called inside the Blocks."""
