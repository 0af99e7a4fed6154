"""OpenTicket: sell seats to high-demand events without ever selling a seat twice."""

__version__ = "0.1.0"
