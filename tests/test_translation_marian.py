"""The offline MarianMT backend with a real (tiny) MarianMT model and Marian tokenizer built here:
a word-level SentencePiece model trained on the spot, and a 1-layer model trained until it knows
three sentence pairs. Nothing comes from the network."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from captioner.translation import TranslationError, TranslationSettings, create_translator
from captioner.translation.marian import MarianTranslator, find_local_models

PAIRS = [("a dog runs on the grass", "ein hund läuft auf dem gras"),
         ("a red circle", "ein roter kreis"),
         ("two children play", "zwei kinder spielen")]


def build_tiny_marian(folder: Path) -> Path:
    """An opus-mt-like folder (source.spm, target.spm, vocab.json, config, safetensors) that knows PAIRS."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True)
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter([s for pair in PAIRS for s in pair]), model_writer=proto,
                                   vocab_size=30, model_type="word", hard_vocab_limit=False, minloglevel=2)
    for name in ("source.spm", "target.spm"):
        (folder / name).write_bytes(proto.getvalue())
    pieces = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    vocab = {"</s>": 0, "<unk>": 1}  # Marian's order: end marker first, padding last
    for index in range(pieces.get_piece_size()):
        vocab.setdefault(pieces.id_to_piece(index), len(vocab))
    vocab.pop("<s>", None)
    vocab = {token: number for number, token in enumerate(vocab)}
    vocab["<pad>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = MarianTokenizer(source_spm=str(folder / "source.spm"), target_spm=str(folder / "target.spm"),
                                vocab=str(folder / "vocab.json"), source_lang="en", target_lang="de")
    config = MarianConfig(vocab_size=len(vocab), d_model=32, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                          decoder_ffn_dim=64, max_position_embeddings=32, dropout=0.0,
                          pad_token_id=vocab["<pad>"], decoder_start_token_id=vocab["<pad>"],
                          eos_token_id=0, forced_eos_token_id=0)
    torch.manual_seed(0)
    model = MarianMTModel(config)
    batch = tokenizer([s for s, _ in PAIRS], text_target=[t for _, t in PAIRS], return_tensors="pt", padding=True)
    labels = batch["labels"].masked_fill(batch["labels"] == vocab["<pad>"], -100)  # (pairs, target tokens)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("translation-models")
    build_tiny_marian(root / "opus-mt-en-de")
    return root


@pytest.mark.slow
def test_translates_offline_with_a_local_model(models_dir):
    translator = MarianTranslator.from_folder(models_dir)
    assert translator.languages() == {"de": "German"}
    for english, german in PAIRS:
        assert translator.translate(english, "de") == german
    with pytest.raises(ValueError, match="cannot translate into 'ja'"):
        translator.translate("a red circle", "ja")


@pytest.mark.slow
def test_settings_pick_local_models_when_azure_is_not_configured(models_dir):
    translator = create_translator(TranslationSettings.from_env({"CAPTIONER_TRANSLATION_MODELS": str(models_dir)}))
    assert isinstance(translator, MarianTranslator)
    assert translator.translate("two children play", "de") == "zwei kinder spielen"


@pytest.mark.slow
def test_finds_models_in_the_hugging_face_cache(models_dir, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    snapshot = cache / "models--Helsinki-NLP--opus-mt-en-jap" / "snapshots" / "0123abcd"
    shutil.copytree(models_dir / "opus-mt-en-de", snapshot)
    (cache / "models--Helsinki-NLP--opus-mt-en-jap" / "refs").mkdir()
    (cache / "models--Helsinki-NLP--opus-mt-en-jap" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    assert find_local_models(None) == {"ja": snapshot}


@pytest.mark.slow
def test_pickled_weights_are_refused(models_dir, tmp_path):
    folder = tmp_path / "opus-mt-en-it"
    shutil.copytree(models_dir / "opus-mt-en-de", folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not loaded: pickle is refused")
    translator = MarianTranslator.from_folder(tmp_path)
    assert translator.languages() == {"it": "Italian"}
    with pytest.raises(TranslationError, match="cannot load the translation model.*model.safetensors"):
        translator.translate("a red circle", "it")


def test_a_missing_models_folder_is_explained(tmp_path):
    with pytest.raises(ValueError, match="does not exist.*CAPTIONER_TRANSLATION_MODELS"):
        MarianTranslator.from_folder(tmp_path / "nowhere")
    assert MarianTranslator.from_folder(tmp_path).languages() == {}
