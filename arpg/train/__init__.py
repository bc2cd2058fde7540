"""Training the shipped models on procedural data.

``recipes`` (what to train: data, canvases, stages, phases, sizes), ``loop`` (learning rate, time
budget, resumable optimisation state, ARPG's teacher-forced steps on each batch's grid), ``stages``
(tokenizer, token data sets, ARPG phases, judge), ``sharpen`` (the decoder's fine-tuning),
``plots`` (loss curves) and ``run`` (``run_recipe``: every stage in order, skipping finished ones).
The data sets and their canvases are :mod:`arpg.data`; the judge classifier is :mod:`arpg.judge`.
"""
