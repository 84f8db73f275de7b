"""movierec: MovieLens from raw files to trained, honestly evaluated recommendations."""

__version__ = "0.1.0"
