"""Training the shipped models on procedural data.

``digits`` and ``scenes`` (the data sets; ``scenes_*`` paint the scene classes), ``data`` (the
table a recipe picks its data set from, and the canvases images are rendered on), ``recipes``
(what to train: data, canvases, stages, phases, sizes), ``loop`` (learning rate, time budget,
resumable optimisation state, ARPG's teacher-forced steps on each batch's grid), ``stages``
(tokenizer, token data sets, ARPG phases, judge), ``plots`` (loss curves) and ``run``
(``run_recipe``: every stage in order, skipping finished ones).  Nothing is imported here,
so ``arpg.train.digits`` stays light for the pipeline's class names.
"""
