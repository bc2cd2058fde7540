"""Measurement: the judge classifier, quality evaluation and the speed/memory benchmarks.

* :mod:`arpg.measure.judge` - the judge CNN, its features and the Frechet distance;
* :mod:`arpg.measure.evaluate` - quality of generated images (accuracy, Frechet distance), orders;
* :mod:`arpg.measure.formulas` - FLOP, KV-cache and parameter formulas (no measurement);
* :mod:`arpg.measure.probes` - the machine: CPU/GPU, matmul peak, peak memory;
* :mod:`arpg.measure.runner` - :func:`~arpg.measure.runner.run_bench`, the interleaved timing run;
* :mod:`arpg.measure.report` - text tables, the reproducing command line, JSON/PNG outputs.

Nothing is imported here, so ``import arpg.measure.judge`` stays light.
"""
