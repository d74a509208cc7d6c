"""Embedded tiny random-weight builds of each model family, for tests and offline default runs."""
