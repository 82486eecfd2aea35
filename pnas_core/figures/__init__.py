"""The paper's figures, drawn from the cached Parquet results of a search; nothing is retrained.

One module per figure family (:mod:`.quality`, :mod:`.efficiency`, :mod:`.levels`, :mod:`.pareto`,
:mod:`.cell_graph`); :mod:`.style` holds the shared matplotlib setup and the byte-stable writer,
:mod:`.inputs` the checked readers. Every figure is written as ``<stem>.png``, ``<stem>.pdf`` and
``<stem>.csv`` (the plotted numbers).

Layer 6: reads the tables written by the layers below; the only part of the package that imports
matplotlib.
"""
