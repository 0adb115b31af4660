"""ra2: Sharp/van der Heijde damage scoring of hand and foot radiographs (RA2 DREAM Challenge).

Importing ``ra2`` is cheap: TensorFlow is imported only inside the functions that need it.
"""

__version__ = "0.1.0"


class Ra2Error(Exception):
    """A user's mistake (bad file, bad argument): the CLI prints its message as one line and exits 1."""
