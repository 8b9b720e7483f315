"""`captioner caption`, `captioner models` and `captioner train lstm` as a user runs them."""

import json
import shutil

import pytest

from support.cli import assert_clean_failure, run_main

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def models_dir(demo_models_dir):
    """The session's models folder with the shapes demo model (read-only)."""
    return demo_models_dir


@pytest.fixture(scope="module")
def pictures(shapes_dataset):
    return sorted((shapes_dataset / "Images").iterdir())[:3]


def test_build_demo_model_is_a_complete_bundle_and_is_reused(models_dir):
    from captioner.models.bundle import read_bundle_info
    from captioner.training.demo import build_demo_model

    bundle = models_dir / "shapes-demo"
    info = read_bundle_info(bundle)
    assert info.kind == "lstm" and info.dataset == "shapes" and info.backbone == "thumbnail"
    before = (bundle / "model.keras").stat().st_mtime_ns
    assert build_demo_model(models_dir) == bundle  # already there: not trained again
    assert (bundle / "model.keras").stat().st_mtime_ns == before


def test_caption_prints_one_line_per_image_and_json(models_dir, pictures):
    result = run_main("caption", *pictures, "--model", "shapes-demo", "--models-dir", models_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(p) for p in pictures]
    assert all(line.split("\t")[1].strip() for line in lines)

    result = run_main("caption", pictures[0], "--model", models_dir / "shapes-demo", "--beam", "3",
                     "--alternatives", "2", "--max-length", "6", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "lstm" and data["decoding"]["method"] == "beam" and data["decoding"]["beam_size"] == 3
    (caption,) = data["captions"]
    assert caption["image"] == str(pictures[0]) and len(caption["text"].split()) <= 6
    assert len(caption["alternatives"]) == 2  # the next-best two, never the caption itself
    assert caption["text"] not in {a["text"] for a in caption["alternatives"]}
    assert caption["score"] < 0 and all(a["log_prob"] < 0 for a in caption["alternatives"])


def test_caption_bad_inputs_fail_with_one_clear_line(models_dir, pictures, tmp_path):
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("hello")
    result = run_main("caption", pictures[0], not_an_image, "--model", "shapes-demo", "--models-dir", models_dir)
    assert_clean_failure(result, "notes.jpg")
    assert_clean_failure(run_main("caption", tmp_path / "missing.png", "--model", "shapes-demo",
                                 "--models-dir", models_dir), "missing.png")
    assert_clean_failure(run_main("caption", pictures[0], "--model", "nothing-here", "--models-dir", models_dir),
                         "nothing-here")
    assert_clean_failure(run_main("caption", pictures[0], "--model", "shapes-demo", "--models-dir", models_dir,
                                 "--greedy", "--beam", "3"), "greedy", "contradict")


def test_caption_samples_with_a_seed_and_refuses_contradictions(models_dir, pictures):
    def sampled(*options):
        result = run_main("caption", *pictures, "--model", "shapes-demo", "--models-dir", models_dir, "--json",
                          "--max-length", "6", *options)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    first = sampled("--sample", "--seed", "5", "--temperature", "1.5", "--top-p", "0.9", "--alternatives", "1")
    decoding = first["decoding"]
    assert (decoding["method"], decoding["seed"], decoding["temperature"], decoding["top_p"]) == \
        ("sample", 5, 1.5, 0.9)
    again = sampled("--seed", "5", "--temperature", "1.5", "--top-p", "0.9", "--alternatives", "1")  # implied
    assert again["captions"] == first["captions"]
    assert all(len(c["text"].split()) <= 6 and c["score"] < 0 for c in first["captions"])
    for options, fragments in ((["--sample", "--greedy"], ["--greedy", "--sample"]),
                               (["--sample", "--beam", "3"], ["sampling", "contradict"]),
                               (["--sample", "--temperature", "0"], ["temperature 0"]),
                               (["--temperature", "-2"], ["temperature"]),
                               (["--top-p", "1.5"], ["top_p"])):
        assert_clean_failure(run_main("caption", pictures[0], "--model", "shapes-demo", "--models-dir", models_dir,
                                      *options), *fragments)
    from captioner.cli import build_parser

    every_command_that_captions = (["collection", "folder", "--model", "m", "--out", "o.csv"],
                                   ["evaluate", "model", "--dataset", "d"])
    for command in every_command_that_captions:
        args = build_parser().parse_args([*command, "--sample", "--temperature", "0.5", "--top-p", "0.8",
                                          "--seed", "-1"])
        assert (args.sample, args.temperature, args.top_p, args.seed) == (True, 0.5, 0.8, -1)


def test_models_lists_installed_bundles(models_dir, tmp_path):
    shutil.copytree(models_dir / "shapes-demo", tmp_path / "demo-copy")
    (tmp_path / "half-written").mkdir()  # no captioner.json: not a bundle
    result = run_main("models", "--models-dir", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (row,) = data["models"]
    assert row["name"] == "shapes-demo" and row["kind"] == "lstm" and row["dataset"] == "shapes"
    assert row["size_bytes"] > 0 and "val" in row["metrics"]
    text = run_main("models", "--models-dir", tmp_path)
    assert text.returncode == 0 and "shapes-demo\tlstm\tshapes" in text.stdout and "val: loss=" in text.stdout
    empty = run_main("models", "--models-dir", tmp_path / "none")
    assert empty.returncode == 0 and "no models" in empty.stdout


def test_train_lstm_bad_inputs_fail_with_one_clear_line(tmp_path, models_dir):
    assert_clean_failure(run_main("train", "lstm", tmp_path / "nowhere", "--out", tmp_path / "m"), "prepared")
    result = run_main("train", "lstm", tmp_path, "--out", tmp_path / "m", "--learning-rate", "x")
    assert result.returncode != 0 and "Traceback" not in result.stderr
