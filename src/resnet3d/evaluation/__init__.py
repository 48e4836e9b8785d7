"""Evaluation: metrics, the multi-view loop, results files, two-stream fusion and the report."""
