"""mimdarts: differentiable architecture search with masked image modeling."""

__version__ = "0.1.0"
