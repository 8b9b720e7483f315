"""Error types whose message is meant for the person at the keyboard.

Front ends (command line, web) print ``str(error)`` as one line: write messages that say what was wrong
and what to do about it.
"""


class CaptionerError(Exception):
    """Base class for errors that reach the user as one clear message."""


class DataError(CaptionerError, ValueError):
    """A data set, caption file or prepared folder is missing, malformed or empty."""


class ImageError(CaptionerError, ValueError):
    """An image could not be read safely (wrong format, corrupt, too large)."""


class ModelError(CaptionerError):
    """A model bundle is missing, incomplete or of an unknown kind."""


class DownloadError(CaptionerError):
    """A download failed, was interrupted or did not match its checksum."""


class OfflineError(CaptionerError):
    """Something had to come from the network and the network could not be reached."""


class RemoteError(CaptionerError):
    """A remote model's endpoint is down, refused the request, or answered something that is not a caption.

    ``unavailable`` is true when the endpoint could not be reached or stayed busy (429, 5xx, timeouts) after
    every retry: trying again later may work. It is false when it answered, but wrongly (a 4xx refusal, a
    body that is not the protocol's JSON): the registration or the endpoint needs fixing.
    """

    def __init__(self, message: str, unavailable: bool = True):
        super().__init__(message)
        self.unavailable = unavailable

    def __reduce__(self):  # it crosses process boundaries (Ray actors) whole
        return type(self), (str(self), self.unavailable)
