"""Inference: the fast path, the inference core shared by predict, features, eval, explain, stream and export."""
