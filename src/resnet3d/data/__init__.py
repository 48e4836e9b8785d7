"""Video data: annotation index, decoding, temporal sampling, spatial transforms, datasets."""
