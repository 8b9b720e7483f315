"""Fine-tuning BLIP and GIT through the same trainer as ViT-GPT2: a tiny GIT learns the shapes set (it
beats its untrained self on BLEU-4), its training pairs start and end as its generate does, Florence-2
is refused with the reason, and the trainer checks the starting model's architecture."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from support.tiny_image_to_text import save_tiny  # noqa: E402
from support.tiny_vit_gpt2 import single_thread  # noqa: E402

from captioner import load_captioner  # noqa: E402
from captioner.config import ImageToTextSettings  # noqa: E402
from captioner.data.prepared import PreparedData  # noqa: E402
from captioner.errors import ModelError  # noqa: E402
from captioner.evaluation import evaluate_captioner  # noqa: E402
from captioner.models.bundle import read_bundle_info  # noqa: E402
from captioner.models.transformers.image_to_text import load_model_folder  # noqa: E402
from captioner.training.image_to_text import CaptionPairs, collate_for, train_image_to_text  # noqa: E402

SETTINGS = dict(epochs=6, batch_size=16, learning_rate=3e-3, patience=3, num_beams=0, max_length=0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def prepared(prepared_shapes):
    return prepared_shapes


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-i2t")
    return {kind: save_tiny(kind, root / kind) for kind in ("blip", "git", "florence2")}


@pytest.mark.parametrize("kind", ["blip", "git"])
def test_training_pairs_start_and_end_as_generate_does(prepared, tiny_models, kind):
    parts = load_model_folder(tiny_models[kind])
    data = PreparedData(prepared)
    pairs = CaptionPairs(data, "train", parts, max_target_length=32)
    ids = pairs[0]["input_ids"]
    config, tokenizer = parts.model.config, parts.tokenizer
    start = config.text_config.bos_token_id if kind == "blip" else tokenizer.cls_token_id
    assert ids[0] == start and ids[-1] == tokenizer.sep_token_id
    decoded = re.sub(r" ([.,;!?])", r"\1", tokenizer.decode(ids[1:-1]))  # BERT splits punctuation off
    assert decoded == data.split("train")[0].references[0].lower()
    batch = collate_for(tokenizer.pad_token_id)([pairs[0], pairs[7]])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert ((batch["labels"] == -100) == (batch["attention_mask"] == 0)).all()
    assert parts.model(**batch).loss.item() > 0


def test_florence_2_and_a_model_of_another_family_are_refused(prepared, tiny_models, tmp_path):
    with pytest.raises(ModelError, match="does not fine-tune florence-2"):
        train_image_to_text(prepared, tmp_path / "f", ImageToTextSettings(**SETTINGS),
                            from_=str(tiny_models["florence2"]))
    with pytest.raises(ModelError, match="is a git model, not blip"):
        train_image_to_text(prepared, tmp_path / "g", ImageToTextSettings(**SETTINGS), from_=str(tiny_models["git"]),
                            family="blip")


@pytest.mark.slow
def test_fine_tuning_git_beats_its_untrained_self(prepared, tiny_models, tmp_path):
    lines = []
    bundle = train_image_to_text(prepared, tmp_path / "shapes-git", ImageToTextSettings(**SETTINGS),
                                 from_=str(tiny_models["git"]), progress=lines.append, java=False, family="git")
    info = read_bundle_info(bundle)
    assert info.kind == "image-to-text" and info.settings["image_to_text"]["architecture"] == "git"
    assert sorted(p.name for p in bundle.iterdir()) == ["captioner.json", "history.csv", "loss.png", "model"]
    assert not [p for p in bundle.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    trained = load_captioner(bundle)
    assert trained.architecture == "git" and trained.default_decoding.beam_size == 4  # GIT's own default
    data = PreparedData(prepared)
    before = evaluate_captioner(load_captioner(tiny_models["git"]), data, "val", progress=False, java=False)
    after = evaluate_captioner(trained, data, "val", progress=False, java=False)
    assert after.scores["BLEU-4"] > before.scores["BLEU-4"] + 0.1, (before.captions, after.captions)
    assert info.metrics["val"]["BLEU-4"] == pytest.approx(after.scores["BLEU-4"])


@pytest.mark.parametrize("kind", ["blip", "florence2"])
def test_evaluation_scores_them_like_any_model(prepared, tiny_models, kind):
    result = evaluate_captioner(load_captioner(tiny_models[kind]), PreparedData(prepared), "val", limit=4,
                                progress=False, java=False)
    assert len(result.captions) == 4 and "BLEU-4" in result.scores and "CIDEr" in result.scores
