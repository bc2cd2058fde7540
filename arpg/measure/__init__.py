"""Measurement: quality evaluation and the speed/memory benchmarks.

* :mod:`arpg.measure.evaluate` - quality of generated images (accuracy, Frechet distance), orders;
* :mod:`arpg.measure.formulas` - FLOP, KV-cache and parameter formulas (no measurement);
* :mod:`arpg.measure.probes` - the machine: CPU/GPU, matmul peak, peak memory;
* :mod:`arpg.measure.bench` - :func:`~arpg.measure.bench.run_bench`, the interleaved timing run and its rows;
* :mod:`arpg.measure.report` - text tables, the reproducing command line, JSON/PNG outputs;
* :mod:`arpg.measure.canvas_tasks` - the canvas tasks of any model trained here, windowed vs whole, judged, against
  true renders where its data set has them; :mod:`arpg.measure.canvas_table` - their markdown tables (runs side by
  side); :mod:`arpg.measure.canvas_examples` - one input through every task, as a picture;
* :mod:`arpg.measure.task_quality` - inpaint, edit, stroke edit and resize scales, judged;
* :mod:`arpg.measure.blur`, :mod:`~arpg.measure.resize_sweep`, :mod:`~arpg.measure.tokenizers`,
  :mod:`~arpg.measure.variants` - what the benchmark scripts measure (``scripts/`` parse arguments and call these);
* :mod:`arpg.measure.pixels` - the windows, downscaling and PSNR the benchmarks share.

The judge classifier these read images with is :mod:`arpg.judge`, below both inference and training.
"""
