"""Recording gateway: find call-centre recordings wherever they are stored and serve them
through short-lived signed links."""

__version__ = "0.1.0"
