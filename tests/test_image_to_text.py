"""The image-to-text kind on tiny random ViT-GPT2, BLIP, GIT and Florence-2 models built from their configs
(processors and tokenizers made offline, saved with save_pretrained): loading through load_captioner, the
command line and the API; batched equals one by one; exact scores; prompts; the hub cache; the offline
path; old vit-gpt2 bundles. No network."""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from support.cli import assert_clean_failure, run_main  # noqa: E402
from support.tiny_image_to_text import BLIP_PROMPT, save_tiny  # noqa: E402
from support.tiny_vit_gpt2 import single_thread  # noqa: E402

from captioner import load_captioner  # noqa: E402
from captioner.data.shapes import make_picture  # noqa: E402
from captioner.errors import ModelError, OfflineError  # noqa: E402
from captioner.models.base import Decoding  # noqa: E402
from captioner.models.transformers.generation import end_token, generation_arguments, word_limit  # noqa: E402
from captioner.models.transformers.model_inputs import given_tokens, model_inputs  # noqa: E402
from captioner.models.transformers.pretrained import KNOWN_MODELS  # noqa: E402

KINDS = ("vit-gpt2", "blip", "git", "florence2")
ARCHITECTURE = {"vit-gpt2": "vit-gpt2", "blip": "blip", "git": "git", "florence2": "florence-2"}
PROMPTS = {"blip": BLIP_PROMPT, "git": BLIP_PROMPT, "florence2": "<DETAILED_CAPTION>"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory) -> dict[str, Path]:
    """One save_pretrained folder per architecture, built once per session."""
    root = tmp_path_factory.mktemp("image-to-text")
    # A wide weight scale gives varied, peaked word choices, so options visibly change the captions.
    scale = {"vit-gpt2": {"seed": 1, "decoder_init": 0.5}, "blip": {"text_init": 0.3}, "git": {"init": 0.3},
             "florence2": {"init": 0.3}}
    return {kind: save_tiny(kind, root / kind, **scale[kind]) for kind in KINDS}


@pytest.fixture(scope="module")
def captioners(tiny_folders):
    return {kind: load_captioner(folder) for kind, folder in tiny_folders.items()}


@pytest.fixture(scope="module")
def images():
    rng = random.Random(3)
    return [make_picture(rng)[0] for _ in range(5)]


def texts(captions):
    return [c.text for c in captions]


@pytest.mark.parametrize("kind", KINDS)
def test_each_architecture_loads_from_its_folder_and_captions(captioners, images, kind):
    captioner = captioners[kind]
    assert captioner.kind == "image-to-text" and captioner.architecture == ARCHITECTURE[kind]
    assert captioner.name == kind and captioner.info.dataset == "pretrained"
    captions = captioner.caption(images[:2])
    assert len(captions) == 2
    for caption in captions:
        assert caption.score < 0 and caption.alternatives  # beam search by default: next-best captions too
        assert caption.text not in [a.text for a in caption.alternatives]


@pytest.mark.parametrize("kind", KINDS)
def test_batched_equals_one_by_one(captioners, images, kind):
    captioner = captioners[kind]
    captioner.batch_size = 3
    prompt = PROMPTS.get(kind, "")
    try:
        for decoding in (Decoding(prompt=prompt), Decoding.beam(3, prompt=prompt)):
            together = captioner.caption(images, decoding)
            alone = [captioner.caption([image], decoding)[0] for image in images]
            assert texts(together) == texts(alone)
            assert [c.score for c in together] == pytest.approx([c.score for c in alone], abs=1e-4)
            assert [[a.text for a in c.alternatives] for c in together] == \
                [[a.text for a in c.alternatives] for c in alone]
    finally:
        captioner.batch_size = 8


def forward_log_prob(captioner, image, prompt: str, generated: list[int]) -> float:
    """log P(generated tokens) from one plain forward pass (independent of generate and its beams)."""
    parts = captioner.parts
    inputs = model_inputs(parts, [image], prompt, "cpu")
    given = given_tokens(parts, inputs)
    name = parts.architecture.name
    with torch.no_grad():
        if name in ("blip", "git"):
            start = parts.model.config.text_config.bos_token_id if name == "blip" else parts.tokenizer.cls_token_id
            prefix = inputs["input_ids"][0, :given].tolist() if "input_ids" in inputs else [start]
            prefix[0] = start
            ids = torch.tensor([prefix + generated[:-1]])  # (1, tokens)
            logits = parts.model(pixel_values=inputs["pixel_values"], input_ids=ids).logits[0, -len(generated):]
        else:
            start = parts.model.generation_config.decoder_start_token_id
            decoder = torch.tensor([[start, *generated[:-1]]])  # (1, tokens)
            extra = {k: v for k, v in inputs.items() if k != "pixel_values"}
            logits = parts.model(pixel_values=inputs["pixel_values"], decoder_input_ids=decoder, **extra).logits[0]
    log_probs = torch.log_softmax(logits.double(), dim=-1)  # (tokens, vocab)
    return float(log_probs[torch.arange(len(generated)), torch.tensor(generated)].sum())


@pytest.mark.parametrize("kind", ["blip", "git", "florence2"])
def test_scores_are_exact_log_probabilities_of_the_generated_tokens(captioners, images, kind):
    captioner = captioners[kind]
    parts, prompt = captioner.parts, PROMPTS[kind]
    decoding = Decoding(max_length=8, prompt=prompt)
    for image in images[:2]:
        inputs = model_inputs(parts, [image], prompt, "cpu")
        given = given_tokens(parts, inputs)
        with torch.no_grad():
            arguments = generation_arguments(decoding, word_limit(parts, decoding, prompt, given, "cpu"))
            sequence = parts.model.generate(**inputs, **arguments).sequences[0]
        generated = sequence[given:].tolist()
        end = end_token(parts)
        generated = generated[: generated.index(end) + 1] if end in generated else generated
        caption = captioner.caption([image], decoding)[0]
        assert len(caption.text.split()) <= decoding.max_length  # the caption start counts
        score = caption.score
        assert score == pytest.approx(forward_log_prob(captioner, image, prompt, generated), abs=1e-3)


def test_prompts_change_the_output_as_each_model_defines(captioners, images):
    blip, git, florence = captioners["blip"], captioners["git"], captioners["florence2"]
    for captioner in (blip, git):  # a caption prefix: the caption starts with it, and differs from the plain one
        plain = captioner.caption(images, Decoding())
        prefixed = captioner.caption(images, Decoding(prompt=BLIP_PROMPT))
        assert all(c.text.startswith(BLIP_PROMPT) for c in prefixed), texts(prefixed)
        assert texts(prefixed) != texts(plain)
    assert florence.prompt_option.default == "<CAPTION>"  # a task: "" means <CAPTION>, others change the caption
    default = florence.caption(images, Decoding())
    assert [c.score for c in florence.caption(images, Decoding(prompt="<CAPTION>"))] == \
        pytest.approx([c.score for c in default])
    detailed = florence.caption(images, Decoding(prompt="<MORE_DETAILED_CAPTION>"))
    assert [c.score for c in detailed] != pytest.approx([c.score for c in default])
    with pytest.raises(ValueError, match="<DETAILED_CAPTION>"):
        florence.caption(images[:1], Decoding(prompt="describe it"))
    with pytest.raises(ValueError, match="takes no prompt"):
        captioners["vit-gpt2"].caption(images[:1], Decoding(prompt="a photo of"))


def test_decoding_options_change_the_output(captioners, images):
    git = captioners["git"]
    plain = git.caption(images, Decoding(max_length=20))
    assert texts(git.caption(images, Decoding.beam(1, max_length=20))) == texts(plain)
    assert max(len(c.text.split()) for c in git.caption(images, Decoding(max_length=4))) == 4  # words
    banned = git.caption(images, Decoding(max_length=20, no_repeat_ngram_size=1))
    assert all(len(set(c.text.split())) == len(c.text.split()) for c in banned), texts(banned)
    assert texts(git.caption(images, Decoding(max_length=20, repetition_penalty=5.0))) != texts(plain)
    assert [len(c.alternatives) for c in git.caption(images[:2], Decoding.beam(4, alternatives=1))] == [1, 1]


@pytest.mark.parametrize("kind, prompt", [("vit-gpt2", ""), ("blip", ""), ("blip", BLIP_PROMPT), ("git", ""),
                                          ("florence2", "<DETAILED_CAPTION>")])
def test_sampling_is_reproducible_by_seed_whatever_shares_the_batch(captioners, images, kind, prompt):
    """On the cached decoder step (ViT-GPT2, BLIP) and through generate (prompted BLIP, GIT, Florence-2)."""
    captioner = captioners[kind]
    decoding = Decoding(method="sample", seed=7, temperature=1.3, alternatives=2, max_length=8, prompt=prompt)
    captioner.batch_size = 3
    try:
        together = captioner.caption(images, decoding)
        alone = [captioner.caption([image], decoding)[0] for image in images]
    finally:
        captioner.batch_size = 8
    assert texts(together) == texts(alone)
    assert [c.score for c in together] == pytest.approx([c.score for c in alone], abs=1e-4)
    assert [[a.text for a in c.alternatives] for c in together] == [[a.text for a in c.alternatives] for c in alone]
    assert [len(c.alternatives) for c in together] == [2] * len(images)  # further samples, all different
    assert texts(captioner.caption(images, decoding.with_changes(alternatives=0))) == texts(together)
    assert texts(captioner.caption(images, decoding.with_changes(seed=8))) != texts(together)
    greedy = captioner.caption(images, Decoding(max_length=8, prompt=prompt))
    assert texts(captioner.caption(images, decoding.with_changes(top_p=1e-9, alternatives=0))) == texts(greedy)


def test_a_sample_drawn_through_generate_is_scored_by_the_untempered_model(captioners, images):
    git = captioners["git"]  # one token per word, so a caption's tokens are its words
    captions = git.caption(images[:2], Decoding(method="sample", seed=1, temperature=2.0, max_length=6))
    end = end_token(git.parts)
    for image, caption in zip(images[:2], captions):
        generated = git.tokenizer(caption.text, add_special_tokens=False)["input_ids"] + [end]
        assert caption.score == pytest.approx(forward_log_prob(git, image, "", generated), abs=1e-3)


def test_an_old_vit_gpt2_bundle_still_loads(tiny_folders, images, tmp_path):
    bundle = tmp_path / "old-vit"
    shutil.copytree(tiny_folders["vit-gpt2"], bundle / "model")
    settings = {"source": "nlpconnect/vit-gpt2-image-captioning", "encoder": "", "decoder": "", "epochs": 3,
                "batch_size": 8, "learning_rate": 5e-5, "max_target_length": 32, "patience": 2, "seed": 42,
                "num_beams": 2, "max_length": 9}  # as the vit-gpt2 kind wrote it
    (bundle / "captioner.json").write_text(json.dumps({"kind": "vit-gpt2", "name": "old-vit", "dataset": "shapes",
                                                       "settings": {"vit_gpt2": settings}}))
    loaded = load_captioner(bundle)
    assert loaded.architecture == "vit-gpt2" and loaded.info.kind == "vit-gpt2"
    assert loaded.default_decoding.beam_size == 2 and loaded.default_decoding.max_length == 9
    assert texts(loaded.caption(images[:2])) == texts(load_captioner(tiny_folders["vit-gpt2"]).caption(
        images[:2], Decoding.beam(2, max_length=9)))


def test_a_folder_of_another_architecture_is_one_clear_error(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "preprocessor_config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match="'bert' is not an image-to-text architecture"):
        load_captioner(folder)


# --- the hub cache and the offline path ---------------------------------------------------------------


def lay_out_hub_cache(cache: Path, model_id: str, revision: str, source: Path) -> Path:
    repo = cache / f"models--{model_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    shutil.copytree(source, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    (repo / "blobs").mkdir()
    return snapshot


def test_short_names_load_the_pinned_revision_from_the_cache_and_models_lists_it(tiny_folders, images,
                                                                                  tmp_path, monkeypatch):
    blip = KNOWN_MODELS["blip-base"]
    cache = tmp_path / "hub"
    lay_out_hub_cache(cache, blip.model_id, blip.revision, tiny_folders["blip"])
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    loaded = load_captioner("blip-base")
    assert loaded.name == "blip-base" and loaded.reference.coco_cider == 133.3
    assert texts(loaded.caption(images[:2])) == texts(load_captioner(tiny_folders["blip"]).caption(images[:2]))
    result = run_main("models", "--json", "--models-dir", tmp_path / "none")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["pretrained"]
    assert row["name"] == "blip-base" and row["architecture"] == "blip" and row["revision"] == blip.revision
    assert row["size_bytes"] > 0 and row["source"] == "hub cache" and row["coco_cider"] == 133.3


def test_a_missing_model_offline_names_the_download_command_quickly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    started = time.perf_counter()
    with pytest.raises(OfflineError, match="captioner models download florence-2-base-ft"):
        load_captioner("florence-2-base-ft", models_folder=tmp_path)
    with pytest.raises(OfflineError, match="captioner models download someone/other-captioner"):
        load_captioner("someone/other-captioner", models_folder=tmp_path)
    assert time.perf_counter() - started < 5


def test_command_line_offline_errors_are_one_line(tmp_path, images, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    picture = tmp_path / "p.png"
    images[0].save(picture)
    started = time.perf_counter()
    assert_clean_failure(run_main("caption", picture, "--model", "blip-large", "--models-dir", tmp_path),
                         "captioner models download blip-large")
    assert_clean_failure(run_main("models", "download", "git-base-coco"), "captioner models download git-base-coco")
    assert time.perf_counter() - started < 5


# --- the command line and the API ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_caption_command_with_a_model_folder(tiny_folders, captioners, images, tmp_path, kind):
    """``captioner caption --model PATH [--prompt P]`` for every architecture."""
    picture = tmp_path / "p.png"
    images[0].save(picture)
    extra = ["--prompt", PROMPTS[kind]] if kind in PROMPTS else []
    result = run_main("caption", picture, "--model", tiny_folders[kind], "--json", *extra)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["captions"]
    captioner = captioners[kind]
    expected = captioner.caption([images[0]], captioner.default_decoding.with_changes(prompt=PROMPTS.get(kind, "")))[0]
    assert row["text"] == expected.text and row["score"] == pytest.approx(expected.score, abs=1e-4)
    if kind == "vit-gpt2":
        assert_clean_failure(run_main("caption", picture, "--model", tiny_folders[kind], "--prompt", "a"),
                             "takes no prompt")


def test_api_serves_pretrained_models_with_prompts_and_compares_them(make_app, tiny_folders, tmp_path, images):
    import io

    app = make_app(tmp_path / "models", try_pretrained=True,
                   pretrained=",".join(str(tiny_folders[kind]) for kind in KINDS))
    service = app.extensions["captioner"]
    try:
        assert sorted(service.models) == sorted(KINDS), service.readiness()
        client = app.test_client()
        buffer = io.BytesIO()
        images[0].save(buffer, format="PNG")

        def post(**fields):
            return client.post("/api/v1/captions", data={"image": (io.BytesIO(buffer.getvalue()), "p.png"),
                                                         **fields})

        blip = post(model="blip", prompt=BLIP_PROMPT, method="greedy")
        assert blip.status_code == 200 and blip.json["caption"].startswith(BLIP_PROMPT)
        assert blip.json["decoding"]["prompt"] == BLIP_PROMPT
        florence = post(model="florence2", prompt="<DETAILED_CAPTION>")
        assert florence.status_code == 200 and florence.json["decoding"]["prompt"] == "<DETAILED_CAPTION>"
        refused = post(model="florence2", prompt="a photo of")
        assert refused.status_code == 400 and refused.json["error"]["code"] == "bad_parameter"
        assert post(model="vit-gpt2", prompt="a").status_code == 400
        compared = post(compare="all", prompt=BLIP_PROMPT)  # the prefix reaches BLIP and GIT, not the others
        assert compared.status_code == 200
        by_model = {r["model"]: r for r in compared.json["results"]}
        assert set(by_model) == set(KINDS) and not any("error" in r for r in by_model.values())
        assert by_model["git"]["caption"].startswith(BLIP_PROMPT)
        assert by_model["vit-gpt2"]["decoding"]["prompt"] == ""
        listed = {m["name"]: m for m in client.get("/api/v1/models").json["models"]}
        assert listed["florence2"]["prompt"]["choices"][1] == "<DETAILED_CAPTION>"
        assert listed["blip"]["architecture"] == "blip" and listed["blip"]["latency_ms"] > 0
        assert (listed["blip"]["runtime"], listed["blip"]["precision"]) == ("torch", "float32")  # the test environment's
        page = client.get("/models").get_data(as_text=True)
        assert "Latency here" in page and "ms per image" in page and "PyTorch, float32" in page
        assert 'id="prompt-input"' in client.get("/caption").get_data(as_text=True)
    finally:
        service.close()
