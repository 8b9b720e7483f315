"""Fine-tuning the vit-gpt2 captioner on the shapes set with a tiny ViT + GPT-2: the data it sees, the
bundle it writes, that it learns, that an interrupted run resumes exactly, and the command line."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from support.cli import assert_clean_failure, run_main  # noqa: E402
from support.tiny_vit_gpt2 import single_thread, save_encoder_and_decoder, save_tiny_model  # noqa: E402

from captioner import load_captioner  # noqa: E402
from captioner.config import VitGpt2Settings  # noqa: E402
from captioner.data.prepared import PreparedData  # noqa: E402
from captioner.evaluation import evaluate_captioner  # noqa: E402
from captioner.models.bundle import list_bundles, read_bundle_info, run_folder  # noqa: E402
from captioner.models.transformers.vit_gpt2 import load_model_folder, load_pretrained  # noqa: E402
from captioner.training.image_to_text import CaptionPairs, collate_for, train_vit_gpt2  # noqa: E402

SETTINGS = dict(epochs=8, batch_size=16, learning_rate=2e-3, patience=3, num_beams=3, max_length=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and lose a lot when the machine is busy."""
    with single_thread():
        yield


@pytest.fixture(scope="module")
def prepared(prepared_shapes):
    return prepared_shapes


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-vit-gpt2")


@pytest.fixture(scope="module")
def trained(prepared, tiny_source, tmp_path_factory):
    """One uninterrupted fine-tuning run, shared by the tests that look at its result."""
    lines = []
    bundle = train_vit_gpt2(prepared, tmp_path_factory.mktemp("models") / "shapes-vit", VitGpt2Settings(**SETTINGS),
                            from_=str(tiny_source), progress=lines.append, java=False)
    return bundle, lines


def test_training_pairs_are_raw_captions_ending_with_the_end_token(prepared, tiny_source):
    parts = load_model_folder(tiny_source)
    data = PreparedData(prepared)
    pairs = CaptionPairs(data, "train", parts, max_target_length=32)
    assert len(pairs) == sum(len(item.references) for item in data.split("train"))
    example = pairs[0]
    end = parts.tokenizer.eos_token_id
    assert example["pixel_values"].shape == (3, 32, 32)
    assert example["labels"][-1] == end
    assert parts.tokenizer.decode(example["labels"][:-1]) == data.split("train")[0].references[0]
    batch = collate_for(parts.tokenizer.pad_token_id)([pairs[0], pairs[5], pairs[9]])
    assert batch["pixel_values"].shape == (3, 3, 32, 32)
    lengths = [len(pairs[i]["labels"]) for i in (0, 5, 9)]
    assert batch["labels"].shape == (3, max(lengths))
    for row, length in enumerate(lengths):
        assert (batch["labels"][row, length:] == -100).all() and batch["labels"][row, length - 1] == end
    short = CaptionPairs(data, "train", parts, max_target_length=4)
    assert all(len(short[i]["labels"]) <= 4 and short[i]["labels"][-1] == end for i in range(10))


def test_refuses_to_overwrite_or_to_resume_nothing(prepared, tiny_source, tmp_path):
    settings = VitGpt2Settings(**SETTINGS)
    with pytest.raises(ValueError, match="no interrupted training run"):
        train_vit_gpt2(prepared, tmp_path / "new", settings, from_=str(tiny_source), resume=True)
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "captioner.json").write_text(json.dumps({"kind": "vit-gpt2", "name": "done"}))
    with pytest.raises(ValueError, match="already holds a trained model"):
        train_vit_gpt2(prepared, tmp_path / "done", settings, from_=str(tiny_source))
    (run_folder(tmp_path / "half") / "checkpoint-4").mkdir(parents=True)
    with pytest.raises(ValueError, match="--resume"):
        train_vit_gpt2(prepared, tmp_path / "half", settings, from_=str(tiny_source))


@pytest.mark.slow
def test_fine_tuning_lowers_validation_loss_and_beats_the_untrained_model(trained, prepared, tiny_source):
    bundle, lines = trained
    info = read_bundle_info(bundle)
    assert info.kind == "image-to-text" and info.dataset == "shapes"
    assert info.settings["image_to_text"]["epochs"] == SETTINGS["epochs"]
    assert info.settings["image_to_text"]["architecture"] == "vit-gpt2"
    assert sorted(p.name for p in bundle.iterdir()) == ["captioner.json", "history.csv", "loss.png", "model"]
    assert (bundle / "model" / "model.safetensors").is_file()
    assert not [p for p in bundle.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    assert len([line for line in lines if line.startswith("epoch ")]) == SETTINGS["epochs"]

    rows = (bundle / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    val_loss = [float(row.split(",")[header.index("val_loss")]) for row in rows[1:]]
    assert len(val_loss) == SETTINGS["epochs"]
    assert min(val_loss) < 0.75 * val_loss[0]

    data = PreparedData(prepared)
    before = evaluate_captioner(load_pretrained(tiny_source), data, "val", progress=False, java=False)
    after = evaluate_captioner(load_captioner(bundle), data, "val", progress=False, java=False)
    assert after.scores["BLEU-4"] > before.scores["BLEU-4"] + 0.15, (before.captions, after.captions)
    assert info.metrics["val"]["BLEU-4"] == pytest.approx(after.scores["BLEU-4"])  # the bundle's own record


@pytest.mark.slow
def test_an_interrupted_run_resumes_where_it_stopped(trained, prepared, tiny_source, tmp_path):
    out = tmp_path / "resumed"

    def stop_in_epoch_three(line):
        if line.startswith("epoch 3/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_vit_gpt2(prepared, out, VitGpt2Settings(**SETTINGS), from_=str(tiny_source),
                       progress=stop_in_epoch_three, java=False)
    assert not out.exists() and list_bundles(tmp_path) == []
    assert len(list(run_folder(out).glob("checkpoint-*"))) == 2  # epochs 1 and 2

    resumed = []

    def stop_while_writing_the_bundle(line):
        resumed.append(line)
        if line.startswith("captioning the validation images"):  # model/ and history.csv are written by now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_vit_gpt2(prepared, out, VitGpt2Settings(epochs=1), resume=True, progress=stop_while_writing_the_bundle,
                       java=False)
    assert "run's own settings" in resumed[0]
    assert [line for line in resumed if line.startswith("epoch ")][0].startswith("epoch 3/8")
    assert not out.exists() and list_bundles(tmp_path) == []  # no half bundle for `captioner models` or the app
    assert sorted(p.name for p in tmp_path.iterdir()) == [run_folder(out).name]  # no staging folder left either
    lines = []
    bundle = train_vit_gpt2(prepared, out, VitGpt2Settings(epochs=1), resume=True, progress=lines.append,
                            java=False)
    assert not run_folder(out).exists() and [path for path, _ in list_bundles(tmp_path)] == [out]
    assert (bundle / "history.csv").read_text() == (trained[0] / "history.csv").read_text()


@pytest.mark.slow
def test_cli_builds_a_new_model_from_an_encoder_and_a_decoder(prepared, tmp_path):
    encoder, decoder = save_encoder_and_decoder(tmp_path)
    out = tmp_path / "models" / "fresh"
    result = run_main("train", "vit-gpt2", prepared, "--out", out, "--encoder", encoder, "--decoder", decoder,
                     "--epochs", "2", "--batch-size", "16", "--learning-rate", "1e-3", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "model bundle written to" in result.stdout
    assert "epoch 2/2" in result.stderr
    info = read_bundle_info(out)
    assert info.kind == "image-to-text" and info.backbone == str(encoder) and info.dataset == "shapes"
    assert info.settings["image_to_text"]["decoder"] == str(decoder) and info.settings["image_to_text"]["seed"] == 3
    captioner = load_captioner(out)
    assert captioner.model.config.decoder.add_cross_attention
    assert captioner.model.config.decoder_start_token_id == captioner.tokenizer.eos_token_id


def test_cli_bad_input_is_one_clear_line(prepared, tmp_path):
    result = run_main("train", "vit-gpt2", tmp_path / "nowhere", "--out", tmp_path / "m")
    assert_clean_failure(result, "not a prepared data folder")
    result = run_main("train", "vit-gpt2", prepared, "--out", tmp_path / "m", "--encoder", "x")
    assert_clean_failure(result, "--decoder")
