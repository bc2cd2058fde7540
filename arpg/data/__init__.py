"""The procedural data sets the shipped models learnt, rendered on demand.

``digits`` (digit glyphs in TrueType fonts) and ``scenes`` (landscapes of any width; ``scenes_canvas``
holds their coordinates and drawing primitives, ``scenes_land``/``scenes_water``/``scenes_night``
paint the classes), and ``sets`` (:data:`~arpg.data.sets.DATASETS`, the table a recipe or a model
picks its data set from by name, and the canvases images are rendered on).  Inference, training and
measurement all read them; they import nothing of those.  Nothing is imported here, so
``arpg.data.digits`` stays light for the pipeline's class names.
"""
