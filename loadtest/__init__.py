"""Load and soak testing for streaming WebSocket chat APIs."""

__version__ = "0.1.0"
