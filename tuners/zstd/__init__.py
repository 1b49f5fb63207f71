"""Zstd tuners: record-mode dictionaries, budget-driven parameters and the opt-in typed mode.

The public entry points are in :mod:`precodec.zstd`; these modules hold the machinery.
"""
