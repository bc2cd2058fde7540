"""Measurement: quality evaluation and the speed/memory benchmarks.

* :mod:`arpg.measure.evaluate` - quality of generated images (accuracy, Frechet distance), orders;
* :mod:`arpg.measure.formulas` - FLOP, KV-cache and parameter formulas (no measurement);
* :mod:`arpg.measure.probes` - the machine: CPU/GPU, matmul peak, peak memory;
* :mod:`arpg.measure.bench` - :func:`~arpg.measure.bench.run_bench`, the interleaved timing run and its rows;
* :mod:`arpg.measure.report` - text tables, the reproducing command line, JSON/PNG outputs;
* :mod:`arpg.measure.scenes_tasks` - the zero-shot tasks on the scenes model against real renders;
* :mod:`arpg.measure.scenes_table` - their markdown tables (windowed vs whole, scenes beside digits).

The judge classifier these read images with is :mod:`arpg.judge`, below both inference and training.
"""
