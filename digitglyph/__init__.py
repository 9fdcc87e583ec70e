"""DigitGlyph: handwritten digits (MNIST and real pen handwriting) and "not a digit", with canvas front ends."""

__version__ = "0.1.0"

__all__ = ["Recognizer", "Prediction", "__version__"]


def __getattr__(name):  # lazy: `import digitglyph` imports nothing; Recognizer runs LiteRT, not TensorFlow
    if name in ("Recognizer", "Prediction"):
        from . import recognizer

        return getattr(recognizer, name)
    raise AttributeError(name)
