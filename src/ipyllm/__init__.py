"""ipyllm: stream LLM answers live into Jupyter, with a Stop button that really stops."""

__version__ = "0.1.0"
