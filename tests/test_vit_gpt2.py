"""The vit-gpt2 captioner on a tiny ViT + GPT-2 built from configs: bundles, batching, every decoding
option, exact scores, the local hub cache and the offline path. No network."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from support.tiny_vit_gpt2 import single_thread, fit_briefly, save_tiny_model, tiny_parts  # noqa: E402

from captioner import load_captioner  # noqa: E402
from captioner.data.shapes import describe, make_picture  # noqa: E402
from captioner.errors import ModelError, OfflineError  # noqa: E402
from captioner.models.base import Decoding  # noqa: E402
from captioner.models.bundle import BundleInfo  # noqa: E402
from captioner.models.transformers.vit_gpt2 import (ModelParts, VitGpt2Captioner, download_pretrained,  # noqa: E402
                                       load_pretrained, write_bundle)

# A random decoder with a wide weight scale: varied word choices, long captions that repeat themselves.
VARIED = {"seed": 1, "decoder_init": 0.5}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and lose a lot when the machine is busy."""
    with single_thread():
        yield


@pytest.fixture(scope="module")
def images():
    rng = random.Random(1)
    return [make_picture(rng)[0] for _ in range(7)]


@pytest.fixture(scope="module")
def parts():
    return ModelParts(*tiny_parts(**VARIED))


@pytest.fixture(scope="module")
def captioner(parts):
    return VitGpt2Captioner(parts, BundleInfo(kind="vit-gpt2", name="tiny"))


@pytest.fixture(scope="module")
def talking_parts():
    """A tiny model fitted for a moment on shapes captions: short captions that end with the end token."""
    rng = random.Random(2)
    pictures = [make_picture(rng) for _ in range(16)]
    model, processor, tokenizer = tiny_parts(seed=0)
    fit_briefly(model, processor, tokenizer, [p for p, _ in pictures], [describe(g, rng)[0] for _, g in pictures])
    return ModelParts(model, processor, tokenizer)


def texts(captions):
    return [c.text for c in captions]


def repeats_ngram(text: str, n: int) -> bool:
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def teacher_forced_log_prob(parts: ModelParts, image, text: str, ended: bool) -> float:
    """log P(text [+ end]) from one plain forward pass over the whole caption (independent of generate)."""
    tokenizer, model = parts.tokenizer, parts.model
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + ([tokenizer.eos_token_id] if ended else [])
    start = model.config.decoder_start_token_id
    pixels = parts.image_processor(images=[image], return_tensors="pt")["pixel_values"]  # (1, 3, 32, 32)
    with torch.no_grad():
        logits = model(pixel_values=pixels, decoder_input_ids=torch.tensor([[start, *ids[:-1]]])).logits  # (1, T, V)
    log_probs = torch.log_softmax(logits[0].double(), dim=-1)  # (T, vocab)
    return float(log_probs[torch.arange(len(ids)), torch.tensor(ids)].sum())


def test_default_decoding_is_the_originals_beam_4_max_length_16(captioner, images):
    assert captioner.default_decoding.method == "beam"
    assert captioner.default_decoding.beam_size == 4 and captioner.default_decoding.max_length == 16
    explicit = captioner.caption(images[:2], Decoding.beam(4, max_length=16))
    assert texts(captioner.caption(images[:2])) == texts(explicit)
    assert all(len(c.text.split()) <= 16 for c in explicit)


def test_bundle_saves_and_loads_with_identical_captions(tmp_path, parts, captioner, images):
    bundle = write_bundle(tmp_path / "tiny-bundle", parts,
                          BundleInfo(kind="vit-gpt2", name="tiny-bundle", dataset="shapes", backbone="vit-tiny"))
    assert (bundle / "model" / "model.safetensors").is_file()
    assert not list(bundle.rglob("*.bin")) and not list(bundle.rglob("*.pt"))
    loaded = load_captioner(bundle)
    assert loaded.kind == "image-to-text" and loaded.architecture == "vit-gpt2" and loaded.name == "tiny-bundle"
    for decoding in (Decoding(), Decoding.beam(3)):
        before, after = captioner.caption(images, decoding), loaded.caption(images, decoding)
        assert texts(after) == texts(before)
        assert [c.score for c in after] == pytest.approx([c.score for c in before], abs=1e-4)


def test_batched_results_equal_one_by_one(parts, images):
    batched = VitGpt2Captioner(parts, BundleInfo(kind="vit-gpt2", name="b"), batch_size=3)
    for decoding in (Decoding(), Decoding.beam(4)):
        together = batched.caption(images, decoding)
        alone = [batched.caption([image], decoding)[0] for image in images]
        assert texts(together) == texts(alone)
        assert [c.score for c in together] == pytest.approx([c.score for c in alone], abs=1e-4)
        assert [[a.text for a in c.alternatives] for c in together] == [[a.text for a in c.alternatives] for c in alone]


def test_beam_search_differs_from_greedy_and_one_beam_is_greedy(captioner, images):
    greedy = captioner.caption(images, Decoding(method="greedy"))
    beam = captioner.caption(images, Decoding.beam(4))
    one_beam = captioner.caption(images, Decoding.beam(1))
    assert texts(beam) != texts(greedy)
    assert texts(one_beam) == texts(greedy)
    assert [c.score for c in one_beam] == pytest.approx([c.score for c in greedy], abs=1e-4)


def test_max_length_bounds_the_caption(captioner, images):
    for max_length in (3, 6):
        for decoding in (Decoding(max_length=max_length), Decoding.beam(4, max_length=max_length)):
            lengths = [len(c.text.split()) for c in captioner.caption(images, decoding)]
            assert max(lengths) == max_length  # words, as for every kind


def test_no_repeat_ngram_size_removes_repeated_ngrams(captioner, images):
    plain = captioner.caption(images, Decoding())
    assert any(repeats_ngram(c.text, 2) for c in plain), texts(plain)  # the precondition: repeats exist
    banned = captioner.caption(images, Decoding(no_repeat_ngram_size=2))
    assert not any(repeats_ngram(c.text, 2) for c in banned), texts(banned)
    assert texts(banned) != texts(plain)


def test_repetition_penalty_changes_the_captions(captioner, images):
    plain = captioner.caption(images, Decoding())
    penalised = captioner.caption(images, Decoding(repetition_penalty=3.0))
    assert texts(penalised) != texts(plain)
    distinct = lambda captions: sum(len(set(c.text.split())) for c in captions)  # noqa: E731
    assert distinct(penalised) > distinct(plain)


@pytest.mark.parametrize("decoding", [Decoding(max_length=6), Decoding(max_length=20), Decoding.beam(4, max_length=6),
                                      Decoding.beam(4, max_length=20),
                                      Decoding.beam(3, repetition_penalty=2.0, no_repeat_ngram_size=2)])
@pytest.mark.parametrize("which", ["varied", "talking"])
def test_scores_are_exact_total_log_probabilities(parts, talking_parts, images, decoding, which):
    model_parts = parts if which == "varied" else talking_parts
    captioner = VitGpt2Captioner(model_parts, BundleInfo(kind="vit-gpt2", name=which), batch_size=4)
    ended_somewhere = False
    for image, caption in zip(images, captioner.caption(images, decoding)):
        candidates = caption.alternatives
        if decoding.method == "beam":
            assert len(candidates) == min(decoding.beam_size - 1, decoding.alternatives)
            assert len({caption.text, *(a.text for a in candidates)}) == len(candidates) + 1
        for text, score in [(caption.text, caption.score)] + [(a.text, a.log_prob) for a in candidates]:
            ended_somewhere |= len(text.split()) < decoding.max_length  # the model chose to end it
            assert score == pytest.approx(teacher_forced_log_prob(model_parts, image, text, True), abs=1e-3)
    if which == "talking":
        assert ended_somewhere


def test_greedy_returns_no_alternatives(captioner, images):
    assert all(c.alternatives == () for c in captioner.caption(images[:2], Decoding(method="greedy")))
    assert all(c.alternatives == () for c in captioner.caption(images[:2], Decoding.beam(3, alternatives=0)))


def test_grey_and_rgba_images_are_captioned_as_rgb(captioner, images):
    grey = images[0].convert("L")
    assert captioner.caption([grey])[0].text == captioner.caption([grey.convert("RGB")])[0].text


# --- the local cache and the offline path ------------------------------------------------------------


def lay_out_hub_cache(cache: Path, model_id: str, source: Path, pickled: bool = False) -> Path:
    """The hub cache's layout for one model: models--ORG--NAME/refs/main + snapshots/COMMIT/."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{model_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for path in source.iterdir():
        if pickled and path.name == "model.safetensors":
            from safetensors.torch import load_file

            torch.save(load_file(path), snapshot / "pytorch_model.bin")  # a repository that only has a .bin
        else:
            (snapshot / path.name).write_bytes(path.read_bytes())
    return snapshot


def test_download_finds_a_cached_model_and_loads_it(tmp_path, images):
    source = save_tiny_model(tmp_path / "source", **VARIED)
    snapshot = lay_out_hub_cache(tmp_path / "hub", "someone/tiny-captioner", source)
    folder = download_pretrained("someone/tiny-captioner", cache_dir=tmp_path / "hub")
    assert folder == snapshot
    assert texts(load_pretrained(folder).caption(images[:3])) == texts(load_pretrained(source).caption(images[:3]))


def test_a_cached_pickle_only_model_is_converted_to_safetensors(tmp_path, images):
    source = save_tiny_model(tmp_path / "source", **VARIED)
    lay_out_hub_cache(tmp_path / "hub", "someone/old-captioner", source, pickled=True)
    folder = download_pretrained("someone/old-captioner", cache_dir=tmp_path / "hub")
    assert (folder / "model.safetensors").is_file() and not (folder / "pytorch_model.bin").exists()
    assert download_pretrained("someone/old-captioner", cache_dir=tmp_path / "hub") == folder  # converted once
    assert texts(load_pretrained(folder).caption(images[:3])) == texts(load_pretrained(source).caption(images[:3]))


def test_download_of_a_local_folder_checks_it(tmp_path):
    source = save_tiny_model(tmp_path / "source")
    assert download_pretrained(str(source)) == source
    (source / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="model.safetensors"):
        download_pretrained(str(source))


def test_uncached_model_offline_is_one_clear_error_quickly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(OfflineError, match="captioner models download nobody/not-a-cached-model") as error:
        download_pretrained("nobody/not-a-cached-model", cache_dir=tmp_path)
    assert "copy" in str(error.value) and "path" in str(error.value)
    with pytest.raises(OfflineError, match="captioner models download nobody/not-a-cached-model"):
        load_pretrained("nobody/not-a-cached-model")
    assert time.perf_counter() - started < 5


def test_pretrained_alias_offline_without_cache_raises_offline_error(monkeypatch):
    from captioner.models.transformers.hub import DEFAULT_MODEL_ID, find_pretrained

    if find_pretrained(DEFAULT_MODEL_ID) is not None:
        pytest.skip("the pretrained model is cached on this machine")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="not in the local cache"):
        load_captioner("vit-gpt2", models_folder=os.devnull)


def test_a_plain_folder_or_copied_snapshot_loads_by_path_name_and_command_line(tmp_path, images, monkeypatch,
                                                                                capsys):
    import shutil

    from huggingface_hub import constants

    from captioner import available_captioners
    from captioner.cli import main

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))  # where a .bin copy is converted
    models = tmp_path / "models"
    plain = save_tiny_model(models / "my-vit", **VARIED)  # save_pretrained, no captioner.json
    snapshot = lay_out_hub_cache(tmp_path / "hub", "someone/old-captioner", plain, pickled=True)
    shutil.copytree(snapshot, models / "old-snapshot")  # a copied hub snapshot: pytorch_model.bin only
    expected = texts(load_pretrained(plain).caption(images[:2]))
    for name in (plain, "my-vit", models / "old-snapshot", "old-snapshot"):
        loaded = load_captioner(name, models)
        assert loaded.kind == "image-to-text" and loaded.architecture == "vit-gpt2"
        assert loaded.name == Path(name).name
        assert texts(loaded.caption(images[:2])) == expected
    assert {(info.name, info.kind) for info in available_captioners(models)} == {("my-vit", "image-to-text"),
                                                                                  ("old-snapshot", "image-to-text")}
    picture = tmp_path / "picture.png"
    images[0].save(picture)
    assert main(["caption", str(picture), "--model", str(plain)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{picture}\t{expected[0]}"
