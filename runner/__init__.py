"""shotrunner: declarative, resumable batch renders of AI video shots."""

__version__ = "0.1.0"
