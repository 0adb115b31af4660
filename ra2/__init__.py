"""ra2: Sharp/van der Heijde damage scoring of hand and foot radiographs (RA2 DREAM Challenge).

Importing ``ra2`` is cheap: TensorFlow is imported only inside the functions that need it. It sets the
environment that keeps libraries off the network (:data:`NO_NETWORK_ENV`).
"""

import os as _os

__version__ = "0.1.0"

NO_NETWORK_ENV = {
    "NO_ALBUMENTATIONS_UPDATE": "1",  # albumentations checks PyPI for a newer version at import
}
"""Set (unless the user set them) before any library is imported through ``ra2``: no library may open a
connection (the container has no network and must never try); tests/test_container_contract.py checks it."""
for _key, _value in NO_NETWORK_ENV.items():
    _os.environ.setdefault(_key, _value)


class Ra2Error(Exception):
    """A user's mistake (bad file, bad argument): the CLI prints its message as one line and exits 1."""
