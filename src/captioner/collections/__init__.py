"""Captioning whole photo collections: folders walked, results appended to a file and resumed exactly,
captions translated and written into photo metadata, on this machine or on a Ray cluster; and a sample of a
collection captioned by several models and rated without references (:mod:`.compare`, :mod:`.compare_report`).

``run_collection(CollectionJob(...), captioner, decoding)`` does a run; the command line's
``captioner collection`` and the web app's jobs use the parts (:mod:`.walk`, :mod:`.results`,
:mod:`.local`, :mod:`.metadata`, :mod:`.ray_engine`).
"""

from captioner.collections.local import CollectionSettings
from captioner.collections.results import FIELDS, ResultRow, open_results, read_rows
from captioner.collections.run import CollectionJob, Summary, run_collection
from captioner.collections.walk import find_images

__all__ = ["FIELDS", "CollectionJob", "CollectionSettings", "ResultRow", "Summary", "find_images", "open_results",
           "read_rows", "run_collection"]
