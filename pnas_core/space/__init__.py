"""The cell search space (docs/method.md, "The search space"): cells and blocks, their text and
canonical form, the ordered enumeration of cells with b blocks.

Layer 1 of the package: imports only numpy and the package's foundation modules
(:mod:`pnas_core.errors`, :mod:`pnas_core.limits`, :mod:`pnas_core.names`).
"""
