"""Pre-processing in front of the stock encoders (noise estimation, denoising, content guard)."""
