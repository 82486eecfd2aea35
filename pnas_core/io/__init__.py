"""Files and tables: atomic writes, checked text and settings reading, the Parquet table rules and
the training records, the report's landing page text.

Layer 2: imports the foundation modules and :mod:`pnas_core.space`; no torch, nothing that trains or
draws.
"""
