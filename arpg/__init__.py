"""ARPG Sandbox: randomized parallel decoding for autoregressive image generation."""

__version__ = "0.1.0"
