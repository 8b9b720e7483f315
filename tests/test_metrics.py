"""The caption metrics: pycocoevalcap's scorers behind score_captions, checked against NLTK and against
what a perfect, a shuffled and a constant captioner must get; the Java-less fallback; the METEOR guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from captioner.evaluation import METRIC_KEYS, diversity, diversity_warning, score_captions
from captioner.evaluation import meteor as meteor_module
from captioner.evaluation.tokenize import java_available, ptb_tokenize, python_tokenize

ROOT = Path(__file__).resolve().parents[1]
needs_java = pytest.mark.skipif(not java_available(), reason="Java is not installed (PTB tokenizer and METEOR need it)")

# Five images with Flickr-like references; already lower case without punctuation, so the PTB tokenizer
# leaves them as they are and NLTK can be given the very same tokens.
REFERENCES = {
    "1.jpg": ["a black dog runs through the green grass", "a dog is running on a lawn",
              "the black dog is running outside", "a dog runs across the grass"],
    "2.jpg": ["two children play in the sand at the beach", "kids are playing on a sandy beach",
              "two young children dig in the sand"],
    "3.jpg": ["a man rides a red bicycle down the street", "a cyclist on a red bike in the city",
              "a man on a bicycle rides past some buildings", "a person riding a bike on a road"],
    "4.jpg": ["a woman in a blue dress stands by the water", "a lady is standing near a lake",
              "a woman stands on the shore of a lake"],
    "5.jpg": ["a brown horse eats hay in a field", "a horse grazing in a grassy field",
              "the horse is standing in the field eating"],
}
# Plausible captions, each at least four words with at least one matching 4-gram somewhere in the set.
GOOD = {
    "1.jpg": "a black dog runs on the grass",
    "2.jpg": "two children play on the beach",
    "3.jpg": "a man rides a bike down the road",
    "4.jpg": "a woman stands near the water",
    "5.jpg": "a horse eats in a field",
}


def derangement(captions: dict[str, str]) -> dict[str, str]:
    """Every caption moved to the next image: right words, wrong pictures."""
    images = list(captions)
    return {image: captions[images[(i + 1) % len(images)]] for i, image in enumerate(images)}


def test_bleu_equals_nltk_corpus_bleu_on_the_same_tokens():
    """pycocoevalcap's BLEU is corpus BLEU with uniform weights 1/n, no smoothing, and the brevity penalty
    from the sum over images of the reference length closest to the hypothesis (ties: the shorter one).
    NLTK's ``corpus_bleu`` with ``weights=(1/n,)*n`` and no smoothing function computes exactly that (its
    ``closest_ref_length`` breaks ties the same way). Two conditions make the match exact: every hypothesis
    has at least n tokens (NLTK counts at least one n-gram per sentence, pycocoevalcap counts zero) and
    every n-gram order has a match somewhere (NLTK then returns 0, pycocoevalcap ~1e-9 from its epsilons).
    The epsilons (1e-15, 1e-9) cost well under 1e-6."""
    from nltk.translate.bleu_score import brevity_penalty, closest_ref_length, corpus_bleu

    longer = {image: caption + " outside today" for image, caption in GOOD.items()}
    for predictions, penalised in ((GOOD, True), (longer, False)):
        scores = score_captions(predictions, REFERENCES, java=False)
        images = list(predictions)
        hypotheses = [predictions[i].split() for i in images]
        references = [[r.split() for r in REFERENCES[i]] for i in images]
        hyp_length = sum(map(len, hypotheses))
        ref_length = sum(closest_ref_length(refs, len(h)) for refs, h in zip(references, hypotheses))
        assert (brevity_penalty(ref_length, hyp_length) < 1) == penalised  # both branches of the penalty
        for n in range(1, 5):
            expected = corpus_bleu(references, hypotheses, weights=(1 / n,) * n)
            assert scores[f"BLEU-{n}"] == pytest.approx(expected, abs=1e-6), n
        assert 0 < scores["BLEU-4"] < scores["BLEU-1"] < 1


def test_a_perfect_captioner_gets_the_maximum():
    perfect = {image: refs[0] for image, refs in REFERENCES.items()}
    scores = score_captions(perfect, REFERENCES, java=False)
    for key in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L"):
        assert scores[key] == pytest.approx(1.0, abs=1e-6), key
    # CIDEr-D is an average cosine similarity x10 against every reference: with one reference per image
    # and the hypothesis equal to it, every n-gram vector matches and CIDEr reaches its ceiling of 10.
    single = {image: [refs[0]] for image, refs in REFERENCES.items()}
    assert score_captions(perfect, single, java=False)["CIDEr"] == pytest.approx(10.0, abs=1e-6)
    # With several references a perfect caption still beats a plausible one on every metric.
    good = score_captions(GOOD, REFERENCES, java=False)
    assert all(scores[k] > good[k] for k in good)


@pytest.fixture(scope="module")
def java_scores():
    """The Java path (PTB tokenizer and METEOR) on good, shuffled, perfect and awkward captions."""
    if not java_available():
        pytest.skip("Java is not installed")
    awkward = {**GOOD, "1.jpg": "A Black DOG ||| runs\non the grass!", "2.jpg": "", "3.jpg": "un homme à vélo ."}
    runs = {}
    for name, predictions in (("good", GOOD), ("shuffled", derangement(GOOD)),
                              ("perfect", {i: r[0] for i, r in REFERENCES.items()}), ("awkward", awkward)):
        started = time.perf_counter()
        runs[name] = (score_captions(predictions, REFERENCES), time.perf_counter() - started)
    return runs


@needs_java
def test_java_path_gives_every_metric_and_ranks_captioners(java_scores):
    good, shuffled, perfect = (java_scores[k][0] for k in ("good", "shuffled", "perfect"))
    for scores in (good, shuffled, perfect):
        assert set(METRIC_KEYS) <= set(scores), scores
        assert scores.tokenizer == "ptb"
        assert not any("METEOR" in note for note in scores.notes)
    for key in METRIC_KEYS:
        assert perfect[key] > good[key] > shuffled[key] >= 0, key
    assert 0 < good["METEOR"] < 1 and 0 < good["CIDEr"] < 10
    # the Java and Python tokenizers agree on these captions, so the pure-Python metrics agree too
    python = score_captions(GOOD, REFERENCES, java=False)
    for key in ("BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr"):
        assert good[key] == pytest.approx(python[key], abs=1e-12)


@needs_java
def test_awkward_captions_neither_hang_nor_break_the_scorer(java_scores):
    """Separators, newlines, non-English text and an empty caption: every metric, in seconds (once warm)."""
    scores, seconds = java_scores["awkward"]
    assert set(METRIC_KEYS) <= set(scores)
    assert scores.per_image["2.jpg"]["METEOR"] == 0 and scores.per_image["2.jpg"]["CIDEr"] == 0
    assert scores.per_image["1.jpg"]["METEOR"] > 0.3  # "a black dog runs on the grass" after cleaning
    assert seconds < 20


def test_shuffled_captions_score_lower_without_java_too():
    good, shuffled = score_captions(GOOD, REFERENCES, java=False), score_captions(derangement(GOOD), REFERENCES, java=False)
    assert set(good) == set(METRIC_KEYS) - {"METEOR"}
    for key in good:
        assert good[key] > shuffled[key], key


def test_without_java_on_path_the_fallback_reports_meteor_missing(tmp_path):
    """A fresh interpreter whose PATH holds no 'java': every pure-Python metric, and a note about METEOR."""
    script = ("import json, sys; from captioner.evaluation import score_captions; "
              "s = score_captions(json.loads(sys.argv[1]), json.loads(sys.argv[2])); "
              "print(json.dumps({'scores': dict(s), 'notes': s.notes, 'tokenizer': s.tokenizer}))")
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", script, json.dumps(GOOD), json.dumps(REFERENCES)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["scores"]) == set(METRIC_KEYS) - {"METEOR"}
    assert result["tokenizer"] == "python"
    assert any(note.startswith("METEOR missing") and "Java" in note for note in result["notes"])
    assert result["scores"] == pytest.approx(dict(score_captions(GOOD, REFERENCES, java=False)))


def test_bad_inputs_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="no predicted captions"):
        score_captions({}, REFERENCES, java=False)
    with pytest.raises(ValueError, match="1 predicted images have no reference captions: x.jpg"):
        score_captions({"x.jpg": "a dog"}, REFERENCES, java=False)
    with pytest.raises(ValueError, match="non-empty list"):
        score_captions({"1.jpg": "a dog"}, {"1.jpg": []}, java=False)
    with pytest.raises(ValueError, match="must be text"):
        score_captions({"1.jpg": None}, REFERENCES, java=False)


@needs_java
def test_python_tokenizer_matches_ptb_on_real_flickr8k_captions(flickr8k_text):
    captions = [line.split("\t", 1)[1] for line in
                (flickr8k_text / "Flickr8k.token.txt").read_text(encoding="utf-8").splitlines() if "\t" in line]
    java, python = ptb_tokenize(captions), python_tokenize(captions)
    differ = [(c, j, p) for c, j, p in zip(captions, java, python) if j != p]
    assert len(captions) > 40000 and len(differ) <= 10, differ[:5]  # 2 of 40,460 ("slip 'n' slide")


def test_python_tokenizer_follows_ptb_conventions():
    assert python_tokenize(['A dog\'s "big" ball, don\'t (red) T-shirt 3.5 cannot Mr. Smith!']) == \
        ["a dog 's big ball do n't -lrb- red -rrb- t-shirt 3.5 can not mr. smith"]


def test_diversity_catches_a_constant_captioner():
    constant = {f"{i}.jpg": "A dog runs on the grass." for i in range(20)}
    figures = diversity(constant)
    assert figures["distinct_captions"] == 1 and figures["distinct_share"] == pytest.approx(0.05)
    assert figures["vocabulary"] == 6 and figures["mean_length"] == 6
    assert figures["most_common_share"] == 1.0
    assert "1 distinct captions for 20 images" in diversity_warning(figures)
    varied = diversity(GOOD)
    assert varied["distinct_share"] == 1.0 and diversity_warning(varied) is None
    assert diversity(["A dog.", "a dog"])["distinct_captions"] == 1  # same words, same caption


FAKE_JAVA = """#!{python}
import os, sys, time
if "edu.stanford.nlp.process.PTBTokenizer" in sys.argv:  # the tokenizer is real Java
    os.execv("{java}", ["java", *sys.argv[1:]])
if "{mode}" == "hang":
    sys.stdin.read()
    time.sleep(600)
sys.exit(3)
"""


@needs_java
@pytest.mark.parametrize("mode, message", [("hang", "stopped answering"), ("crash", "exited unexpectedly")])
def test_a_hung_or_dead_meteor_is_stopped_and_reported(tmp_path, monkeypatch, mode, message):
    """METEOR runs behind a deadline: when its JVM hangs or dies, the other metrics still come back,
    METEOR is reported missing, and the process is gone."""
    import shutil

    fake = tmp_path / "java"
    fake.write_text(FAKE_JAVA.format(python=sys.executable, java=shutil.which("java"), mode=mode))
    fake.chmod(0o755)
    meteor_module.shutdown()  # no warm process from an earlier test
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(meteor_module, "START_TIMEOUT_S", 3.0)
    monkeypatch.setattr(meteor_module, "ANSWER_TIMEOUT_S", 1.0)
    started = time.perf_counter()
    scores = score_captions(GOOD, REFERENCES)
    assert time.perf_counter() - started < 30
    assert "METEOR" not in scores and "CIDEr" in scores
    assert any(note.startswith("METEOR missing") and message in note for note in scores.notes), scores.notes
    assert meteor_module._shared is None  # the broken process was killed, the next call starts afresh


@needs_java
@pytest.mark.slow
def test_meteor_equals_pycocoevalcap_own_wrapper():
    """Same jar, same protocol: the guarded runner gives pycocoevalcap's own Meteor numbers."""
    from pycocoevalcap.meteor.meteor import Meteor

    ours = score_captions(GOOD, REFERENCES)
    theirs, each = Meteor().compute_score(REFERENCES, {i: [c] for i, c in GOOD.items()})
    assert ours["METEOR"] == pytest.approx(theirs, abs=1e-9)
    assert [ours.per_image[i]["METEOR"] for i in REFERENCES] == pytest.approx(each, abs=1e-9)


@needs_java
@pytest.mark.slow
def test_score_captions_equals_the_official_pycocoevalcap_pipeline(flickr8k_text):
    """On real Flickr8k test captions (one human caption scored against the other four, 200 images), the
    numbers equal those of pycocoevalcap's own PTBTokenizer + Bleu + Meteor + Rouge + Cider run, exactly."""
    import collections

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer import ptbtokenizer

    captions = collections.defaultdict(list)
    for line in (flickr8k_text / "Flickr8k.token.txt").read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            key, caption = line.split("\t", 1)
            captions[key.split("#")[0]].append(caption)
    test = (flickr8k_text / "Flickr_8k.testImages.txt").read_text(encoding="utf-8").split()[:200]
    predictions = {image: captions[image][0] for image in test}
    references = {image: captions[image][1:] for image in test}
    ours = score_captions(predictions, references)

    if not os.access(meteor_module.pycocoevalcap_dir() / "tokenizer", os.W_OK):
        pytest.skip("pycocoevalcap's PTBTokenizer writes into its install folder, which is read-only here")
    tokenizer = ptbtokenizer.PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": c} for c in references[i]] for i in test})
    res = tokenizer.tokenize({i: [{"caption": predictions[i]}] for i in test})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    official = {**{f"BLEU-{n + 1}": value for n, value in enumerate(bleu)},
                "METEOR": Meteor().compute_score(gts, res)[0], "ROUGE-L": Rouge().compute_score(gts, res)[0],
                "CIDEr": Cider().compute_score(gts, res)[0]}
    for key, value in official.items():
        assert ours[key] == pytest.approx(float(value), abs=1e-12), key
    assert 0.1 < ours["BLEU-4"] < 0.35 and 0.5 < ours["CIDEr"] < 1.2  # human agreement on Flickr8k
