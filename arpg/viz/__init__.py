"""Pictures of decoding: frames, animations, heatmaps and plots.

Submodules (imported on their own, so ``import arpg.viz`` stays light and never loads
matplotlib):

* :mod:`arpg.viz.draw`: palette, fonts, text fitting, array/PIL conversion, figure rendering.
* :mod:`arpg.viz.frames`: masks, decoding-order maps, per-step frames, side-by-side
  animations, step heatmaps, image grids.
* :mod:`arpg.viz.animate`: animation files (GIF/MP4) and frames of a pipeline's decodes.
* :mod:`arpg.viz.plots`: benchmark trade-off plots, decoding-order bars and the published
  numbers (``published.json`` beside this file).
"""
