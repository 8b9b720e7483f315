"""Evaluation: the official COCO caption metrics, diversity, reports and the results figure.

```python
from captioner.evaluation import score_captions, evaluate_captioner, write_report
scores = score_captions({"img1.jpg": "a dog runs"}, {"img1.jpg": ["A dog is running .", "..."]})
scores["BLEU-4"], scores["CIDEr"], scores.notes
```
"""

from captioner.evaluation.diversity import diversity, diversity_warning
from captioner.evaluation.metrics import METRIC_KEYS, OPTIONAL_KEYS, Scores, score_captions
from captioner.evaluation.run import (EvaluationResult, evaluate_captioner, evaluate_predictions, read_predictions,
                                      record_in_bundle, score_split)
from captioner.evaluation.figure import results_figure
from captioner.evaluation.report import markdown_report, text_table, write_report

__all__ = [
    "METRIC_KEYS", "OPTIONAL_KEYS", "Scores", "score_captions", "diversity", "diversity_warning",
    "EvaluationResult", "evaluate_captioner", "evaluate_predictions", "read_predictions", "record_in_bundle",
    "score_split", "write_report", "results_figure", "text_table", "markdown_report",
]

