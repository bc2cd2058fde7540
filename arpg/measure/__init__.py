"""Measurement: the judge classifier, quality evaluation and the speed/memory benchmarks.

* :mod:`arpg.measure.judge` - the judge CNN, its features and the Frechet distance;
* :mod:`arpg.measure.evaluate` - quality of generated images (accuracy, Frechet distance), orders;
* :mod:`arpg.measure.formulas` - FLOP, KV-cache and parameter formulas (no measurement);
* :mod:`arpg.measure.probes` - the machine: CPU/GPU, matmul peak, peak memory;
* :mod:`arpg.measure.runner` - :func:`~arpg.measure.runner.run_bench`, the interleaved timing run;
* :mod:`arpg.measure.report` - text tables, the reproducing command line, JSON/PNG outputs;
* :mod:`arpg.measure.scenes_tasks` - the zero-shot tasks on the scenes model against real renders;
* :mod:`arpg.measure.scenes_table` - their markdown tables (windowed vs whole, scenes beside digits).

Nothing is imported here, so ``import arpg.measure.judge`` stays light.
"""
