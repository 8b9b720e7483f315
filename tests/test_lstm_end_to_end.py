"""The whole LSTM path through the command line, on the synthetic shapes set: data, features, training,
captioning held-out pictures that the model has never seen, scored with corpus BLEU-4."""

import json
import re

import pytest

from support.cli import run_main

pytest.importorskip("keras")
nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")


def words(text):
    return re.findall(r"[a-z]+", text.lower())


@pytest.mark.slow
def test_shapes_model_learns_to_caption_held_out_pictures(tmp_path):
    from captioner.data.prepared import PreparedData

    dataset, prepared, cache, model = (tmp_path / n for n in ("shapes", "prepared", "cache", "models/shapes"))
    steps = [
        ("data", "shapes", "--out", dataset, "--images", "600", "--seed", "0"),
        ("data", "prepare", dataset, "--out", prepared, "--preset", "standard"),
        ("features", prepared, "--backbone", "thumbnail", "--image-size", "24", "--cache-dir", cache),
        ("train", "lstm", prepared, "--out", model, "--backbone", "thumbnail", "--image-size", "24",
         "--features", cache, "--epochs", "25", "--batch-size", "16", "--learning-rate", "3e-3",
         "--image-units", "128", "--embedding-dim", "128", "--lstm-units", "128", "--dense-units", "64",
         "--dropout", "0.1", "--seed", "1", "--quiet"),
    ]
    for step in steps:
        result = run_main(*step)
        assert result.returncode == 0, (step, result.stderr[-2000:])

    test_items = PreparedData(prepared).split("test")
    images = [PreparedData(prepared).image_path(item.image) for item in test_items]
    result = run_main("caption", *images, "--model", model, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    captions = json.loads(result.stdout)["captions"]
    assert [c["image"] for c in captions] == [str(p) for p in images]

    references = [[words(raw) for raw in item.references] for item in test_items]
    hypotheses = [words(c["text"]) for c in captions]
    bleu4 = nltk_bleu.corpus_bleu(references, hypotheses)
    print(f"corpus BLEU-4 on {len(hypotheses)} held-out pictures: {bleu4:.3f}")
    assert bleu4 >= 0.5, (bleu4, [c["text"] for c in captions[:5]])
