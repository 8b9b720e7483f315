"""The attention captioner trained for real on the shapes set: it learns, it looks where the shapes are
(against chance, from the boxes the generator recorded), it captions at least as well as the LSTM kind on
the same data, an interrupted run resumes to the same weights, and the command line and the API show the
maps. The look-in-the-right-place figure is written to $CAPTIONER_FIGURES_DIR when set (the README's)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")

from captioner.config import DataSettings, TrainingSettings  # noqa: E402
from captioner.data.prepare import prepare_dataset  # noqa: E402
from captioner.data.prepared import PreparedData  # noqa: E402
from captioner.data.shapes import read_boxes, write_shapes_dataset  # noqa: E402
from captioner.models.base import Decoding  # noqa: E402
from captioner.training import demo  # noqa: E402

from support.cli import assert_clean_failure, run_cli  # noqa: E402

BEAM = Decoding.beam(3)


@pytest.fixture(scope="session")
def shapes_run(tmp_path_factory):
    """Once per session: 300 shapes pictures, the attention demo and the LSTM demo trained on the same
    prepared folder, and both models' beam-3 captions of the 60 held-out (val and test) pictures."""
    from captioner.data.images import load_image
    from captioner.features import BackboneSpec
    from captioner.models.registry import load_captioner
    from captioner.training.lstm import train_lstm

    root = tmp_path_factory.mktemp("attention-shapes")
    dataset = write_shapes_dataset(root / "shapes", images=demo.ATTENTION_DEMO_IMAGES, seed=0)
    prepare_dataset(dataset, root / "prepared", DataSettings(preset="standard"))
    prepared = PreparedData(root / "prepared")
    attention = demo.build_attention_demo(root / "models", root / "prepared", features=root / "features")
    training, architecture = demo.demo_lstm_settings()
    lstm = train_lstm(root / "prepared", root / "models" / "shapes-lstm", training, architecture,
                      BackboneSpec("thumbnail", image_size=demo.DEMO_THUMBNAIL), feature_cache=root / "features",
                      progress=False)
    items = prepared.split("val") + prepared.split("test")
    images = [load_image(prepared.image_path(item.image)) for item in items]
    captions = {name: load_captioner(path).caption(images, BEAM) for name, path in
                (("attention", attention), ("lstm", lstm))}
    return {"root": root, "dataset": dataset, "prepared": prepared, "attention": attention, "lstm": lstm,
            "items": items, "captions": captions}


def bleu4(run, name):
    from captioner.evaluation.metrics import score_captions

    predictions = {item.image: caption.text for item, caption in zip(run["items"], run["captions"][name])}
    return score_captions(predictions, {item.image: list(item.references) for item in run["items"]},
                          java=False)["BLEU-4"]


@pytest.mark.slow
def test_it_learns_and_captions_at_least_as_well_as_the_lstm(shapes_run):
    history = list(csv.DictReader(open(shapes_run["attention"] / "history.csv")))
    assert float(history[-1]["loss"]) < 0.5 * float(history[0]["loss"])
    attention, lstm = bleu4(shapes_run, "attention"), bleu4(shapes_run, "lstm")
    print(f"BLEU-4 on 60 held-out pictures: attention {attention:.3f}, lstm {lstm:.3f}")
    assert attention >= lstm and attention > 0.3, (attention, lstm)


@pytest.mark.slow
def test_attention_peaks_on_the_shape_it_names_well_above_chance(shapes_run):
    from captioner.evaluation.attention import hit_rate_figure, save_png, shape_hit_rate

    boxes = read_boxes(shapes_run["dataset"])
    captions = shapes_run["captions"]["attention"]
    for caption in captions:
        weights = np.asarray(caption.attention.weights)
        assert caption.attention.grid == (6, 6) and weights.shape == (len(caption.text.split()), 36)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    hits = shape_hit_rate([c.attention for c in captions], [boxes[item.image] for item in shapes_run["items"]],
                          (96, 96))
    print(f"attention peak on the named shape: {hits.to_dict()}")
    assert hits.words >= 40
    required = 0.9 if hits.chance >= 0.45 else min(2 * hits.chance, 0.9)
    assert hits.rate >= required, hits.to_dict()
    folder = Path(os.environ.get("CAPTIONER_FIGURES_DIR") or shapes_run["root"])
    figure = hit_rate_figure({"attention (shapes-attention)": hits},
                             "Shapes set, 60 held-out pictures, beam 3: where the attention peaks")
    assert save_png(figure, folder / "attention-shapes.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_caption_command_draws_the_maps_and_refuses_an_lstm(shapes_run, tmp_path):
    image = shapes_run["prepared"].image_path(shapes_run["items"][0].image)
    out = tmp_path / "maps.png"
    result = run_cli("caption", image, "--model", shapes_run["attention"], "--beam", "3", "--attention", out,
                     "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    entry = json.loads(result.stdout)["captions"][0]
    assert entry["attention"]["words"] == entry["text"].split() and entry["attention"]["grid"] == [6, 6]
    from PIL import Image

    with Image.open(out) as drawn:
        assert drawn.format == "PNG" and drawn.width > 400
    assert_clean_failure(run_cli("caption", image, "--model", shapes_run["lstm"], "--attention", tmp_path / "x.png"),
                         "needs a model that attends")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_api_returns_the_maps_on_request(shapes_run, make_app):
    app = make_app(shapes_run["root"] / "models")
    image = shapes_run["prepared"].image_path(shapes_run["items"][1].image).read_bytes()
    with app.test_client() as client:
        def post(**fields):
            return client.post("/api/v1/captions", data={"image": (io.BytesIO(image), "shape.png"), **fields},
                               content_type="multipart/form-data")
        plain = post(model="shapes-attention").get_json()
        assert "attention" not in plain
        answer = post(model="shapes-attention", attention="1", method="beam", beam="3").get_json()
        maps = answer["attention"]
        assert maps["grid"] == [6, 6] and maps["words"] == answer["caption"].split()
        assert all(abs(sum(weights) - 1) < 1e-3 and len(weights) == 36 for weights in maps["maps"])
        assert post(model="shapes-lstm", attention="1").get_json()["attention"] is None
        refused = post(model="shapes-attention", attention="maybe")
        assert refused.status_code == 400 and "attention" in refused.get_json()["error"]["message"]


@pytest.mark.slow
def test_an_interrupted_run_resumed_equals_an_uninterrupted_one(shapes_dataset, tmp_path):
    import keras

    from captioner.models.keras.lstm import load_sequence_model
    from captioner.training.attention import train_attention
    from captioner.models.bundle import run_folder
    from captioner.training.lstm import TrainingInterrupted

    ATTENTION_NETWORK = "captioner.models.keras.attention_network"  # registers its layers before loading

    class InterruptAfter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    prepare_dataset(shapes_dataset, tmp_path / "prepared")
    training = TrainingSettings(epochs=3, batch_size=16, learning_rate=5e-3, seed=5, lr_patience=1, patience=10)
    tiny = {"embedding_dim": 8, "lstm_units": 8, "attention_units": 8, "penalty": 0.5}
    spec = demo.demo_grid_spec()
    common = {"feature_cache": tmp_path / "features", "progress": False}
    straight = train_attention(tmp_path / "prepared", tmp_path / "straight", training, tiny, spec, **common)
    with pytest.raises(TrainingInterrupted, match="after 1 of 3 epoch.*--resume"):
        train_attention(tmp_path / "prepared", tmp_path / "resumed", training, tiny, spec,
                        callbacks=[InterruptAfter()], **common)
    assert not (tmp_path / "resumed").exists() and run_folder(tmp_path / "resumed").is_dir()
    resumed = train_attention(tmp_path / "prepared", tmp_path / "resumed", resume=True, **common)
    for a, b in zip(load_sequence_model(straight / "model.keras", ATTENTION_NETWORK).get_weights(),
                    load_sequence_model(resumed / "model.keras", ATTENTION_NETWORK).get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    rows = [list(csv.DictReader(open(path / "history.csv"))) for path in (straight, resumed)]
    assert [r["val_loss"][:7] for r in rows[0]] == [r["val_loss"][:7] for r in rows[1]] and len(rows[0]) == 3
    info = json.loads((straight / "captioner.json").read_text())
    assert info["kind"] == "attention" and set(info["settings"]) == {"attention", "training", "data", "backbone"}
    assert info["settings"]["backbone"]["grid"] is True and info["settings"]["attention"]["grid_cells"] == 36
    assert {"loss.png", "accuracy.png", "history.csv", "model.keras", "vocab.json"} <= {p.name for p in straight.iterdir()}
    with pytest.raises(ValueError, match="generator"):
        train_attention(tmp_path / "prepared", tmp_path / "prefix", TrainingSettings(generator="prefix"), tiny, spec,
                        **common)
