"""flagctl: progressive rollouts and kill switches whose state lives in PostgreSQL."""

__version__ = "0.1.0"
