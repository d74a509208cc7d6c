"""User-facing errors.

An `EvalkitError` is printed by the CLI as one line (no traceback): it must name the bad
input and say what would be valid.
"""


class EvalkitError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""


class SampleError(Exception):
    """A problem with one sample (corrupt image, prompt too long); becomes a per-sample error record."""


class ImageMissing(SampleError):
    """The row names an image it does not hold. A model cannot be asked without it, but scoring
    predictions made elsewhere reads only the text and the gold answer, so score mode ignores it."""


class JudgeFailed(SampleError):
    """The judge gave no extraction for a response the model did give: the sample is an error
    record that still holds the model's own answer."""


class OutOfMemory(Exception):
    """Raised by a backend when a batch does not fit; the generator halves the batch and retries."""


def write_error(e: OSError) -> str:
    """Why a file could not be written, as a message says it: a full disk by name (the usual
    cause in a long run, and the one a user can fix), else the system's reason."""
    import errno

    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device (disk or quota full)"
    return e.strerror or str(e)
