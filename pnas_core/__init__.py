"""pnas: Progressive Neural Architecture Search (Liu et al., ECCV 2018) as a reproducible workflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pnas")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
