"""Greedy search, beam search and sampling over small step functions whose answers can be worked out by
hand, by enumerating every caption, or (sampling) by counting many draws."""

import itertools

import numpy as np
import pytest

from captioner.models.base import Decoding
from captioner.models.decoding import (SearchRules, banned_next_tokens, beam_search, decode, greedy_search,
                                       sample_search)

pytestmark = pytest.mark.backend

PAD, UNK, START, END = 0, 1, 2, 3


def markov_step(table: np.ndarray):
    """A step function from a table of next-token logits (vocab, vocab) plus a per-row bias (the state)."""

    def step(tokens, state):
        (bias,) = state
        logits = table[tokens] + bias  # (rows, vocab)
        logits = logits - logits.max(axis=1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return log_probs, state

    return step


def random_problem(seed: int, vocab: int = 9, images: int = 3, scale: float = 2.0):
    rng = np.random.default_rng(seed)
    table = rng.normal(scale=scale, size=(vocab, vocab))
    bias = rng.normal(scale=scale, size=(images, vocab))
    return markov_step(table), (bias,)


def sequence_log_prob(step, state_row, words):
    tokens = [START, *words, END]
    total = 0.0
    for previous, nxt in zip(tokens, tokens[1:]):
        log_probs, _ = step(np.array([previous]), state_row)
        total += log_probs[0, nxt]
    return total


RULES = SearchRules(START, END, (PAD, UNK, START))


def test_greedy_follows_the_most_likely_word_and_never_emits_forbidden_tokens():
    vocab = 7
    table = np.full((vocab, vocab), -5.0)
    table[:, [PAD, UNK, START]] = 10.0  # the forbidden tokens are the most likely: never emitted
    table[START, 4] = 5.0
    table[4, 5] = 5.0
    table[5, END] = 5.0
    step = markov_step(table)
    (h,) = greedy_search(step, (np.zeros((1, vocab)),), RULES, max_length=10)
    assert h.tokens == (4, 5)
    assert h.log_prob == pytest.approx(sequence_log_prob(step, (np.zeros((1, vocab)),), [4, 5]))


def test_a_caption_that_never_ends_is_ended_after_max_length_words():
    vocab = 6
    table = np.zeros((vocab, vocab))
    table[:, 4] = 5.0
    table[:, END] = -20.0
    step = markov_step(table)
    state = (np.zeros((2, vocab)),)
    for decoding in (Decoding(max_length=5), Decoding.beam(3, max_length=5)):
        hypotheses = decode(step, state, decoding, START, END, (PAD, UNK, START))
        for best, *_ in hypotheses:
            assert best.tokens == (4,) * 5
            # the end marker it was given counts in its log-probability
            assert best.log_prob == pytest.approx(sequence_log_prob(step, (np.zeros((1, vocab)),), [4] * 5))


@pytest.mark.parametrize("seed", range(8))
def test_beam_of_one_is_greedy_search(seed):
    step, state = random_problem(seed)
    greedy = greedy_search(step, state, RULES, max_length=6)
    beam = beam_search(step, state, RULES, max_length=6, beam_size=1, length_penalty=0.0)
    assert [b[0].tokens for b in beam] == [g.tokens for g in greedy]
    assert [b[0].log_prob for b in beam] == pytest.approx([g.log_prob for g in greedy])
    # through Decoding, a beam of one is greedy search whatever the length penalty
    beam_one = decode(step, state, Decoding.beam(1, max_length=6, length_penalty=1.0), START, END, RULES.forbidden)
    assert [b[0].tokens for b in beam_one] == [g.tokens for g in greedy]


@pytest.mark.parametrize("seed", range(4))
def test_a_wide_beam_finds_the_most_likely_caption_among_all_captions(seed):
    vocab, max_length = 6, 3  # words 4, 5 only: every caption can be enumerated
    step, state = random_problem(seed, vocab=vocab, images=2)
    hypotheses = beam_search(step, state, RULES, max_length=max_length, beam_size=32, length_penalty=0.0)
    for image in range(2):
        row = (state[0][image:image + 1],)
        every_caption = [sequence_log_prob(step, row, list(words))
                         for n in range(max_length + 1) for words in itertools.product((4, 5), repeat=n)]
        best = hypotheses[image][0]
        assert best.log_prob == pytest.approx(max(every_caption))
        assert best.log_prob == pytest.approx(sequence_log_prob(step, row, list(best.tokens)))


def test_batched_decoding_equals_one_image_at_a_time():
    step, state = random_problem(11, images=4)
    for decoding in (Decoding(max_length=7), Decoding.beam(3, max_length=7), Decoding.beam(4, max_length=7,
                                                                                          no_repeat_ngram_size=2)):
        together = decode(step, state, decoding, START, END, (PAD, UNK, START))
        alone = [decode(step, (state[0][i:i + 1],), decoding, START, END, (PAD, UNK, START))[0] for i in range(4)]
        assert [[h.tokens for h in hs] for hs in together] == [[h.tokens for h in hs] for hs in alone]
        assert [h.log_prob for hs in together for h in hs] == pytest.approx([h.log_prob for hs in alone for h in hs])


def test_beam_hypotheses_are_ranked_and_scored_by_their_own_log_probability():
    step, state = random_problem(5, images=2)
    for image_hypotheses in beam_search(step, state, RULES, max_length=6, beam_size=4, length_penalty=1.0):
        scores = [h.ranking_score for h in image_hypotheses]
        assert scores == sorted(scores, reverse=True) and len(image_hypotheses) >= 4
        for h in image_hypotheses:
            length = len(h.tokens) + 1  # endseq counts
            assert h.ranking_score == pytest.approx(h.log_prob / length)  # no repetition rules: log-prob / length
            assert not {PAD, UNK, START, END} & set(h.tokens)


def test_length_penalty_favours_longer_captions():
    vocab = 6
    table = np.full((vocab, vocab), -3.0)
    table[START, END] = 0.5  # an empty caption is most likely at once
    table[START, 4] = 0.4
    table[4, 5] = 3.0
    table[4, END] = -10.0
    table[5, END] = 3.0  # "4 5" is nearly certain once started
    step = markov_step(table)
    state = (np.zeros((1, vocab)),)
    plain = beam_search(step, state, RULES, max_length=5, beam_size=2, length_penalty=0.0)[0][0]
    normalised = beam_search(step, state, RULES, max_length=5, beam_size=2, length_penalty=2.0)[0][0]
    assert plain.tokens == ()
    assert normalised.tokens == (4, 5)


def test_no_repeat_ngram_and_repetition_penalty_stop_loops():
    vocab = 7
    table = np.full((vocab, vocab), -4.0)
    table[START, 4] = 3.0
    table[4, 5] = 3.0
    table[5, 4] = 3.0  # 4 5 4 5 4 5 ... unless forbidden
    table[:, 6] = 1.0
    step = markov_step(table)
    state = (np.zeros((1, vocab)),)
    looping = decode(step, state, Decoding(max_length=6), START, END, (PAD, UNK, START))[0][0]
    assert looping.tokens == (4, 5, 4, 5, 4, 5)
    no_repeat = decode(step, state, Decoding(max_length=6, no_repeat_ngram_size=2), START, END, (PAD, UNK, START))[0][0]
    pairs = list(zip(no_repeat.tokens, no_repeat.tokens[1:]))
    assert len(pairs) == len(set(pairs))
    penalised = decode(step, state, Decoding(max_length=6, repetition_penalty=10.0), START, END, (PAD, UNK, START))[0][0]
    assert penalised.tokens[:2] == (4, 5) and penalised.tokens != looping.tokens


def test_banned_next_tokens():
    assert banned_next_tokens([4, 5, 4], 2) == {5}
    assert banned_next_tokens([4, 5, 6, 4, 5], 3) == {6}
    assert banned_next_tokens([4, 5], 1) == {4, 5}
    assert banned_next_tokens([4], 3) == set()


def test_one_rule_merges_the_decoding_options_every_front_end_takes():
    from captioner.models.base import DecodingRequest

    beam_default, greedy_default = Decoding.beam(4, max_length=16), Decoding(max_length=12)
    assert DecodingRequest().for_default(beam_default) == beam_default
    assert DecodingRequest(beam_size=2).for_default(greedy_default) == Decoding.beam(2, max_length=12)
    assert DecodingRequest(method="beam").for_default(beam_default) == beam_default  # keeps the model's width
    assert DecodingRequest(method="beam", beam_size=3).for_default(greedy_default).beam_size == 3
    assert DecodingRequest(method="greedy").for_default(beam_default).method == "greedy"
    assert DecodingRequest(method="greedy", beam_size=1).for_default(beam_default).method == "greedy"
    changed = DecodingRequest(max_length=5, alternatives=1).for_default(beam_default)
    assert (changed.max_length, changed.alternatives, changed.beam_size) == (5, 1, 4)
    with pytest.raises(ValueError, match="contradict"):
        DecodingRequest(method="greedy", beam_size=3)
    with pytest.raises(ValueError, match="greedy, beam, sample"):
        DecodingRequest(method="sampling")


def test_one_rule_says_when_to_sample():
    from captioner.models.base import DecodingRequest

    beam_default = Decoding.beam(4, max_length=16, alternatives=3)
    sampled = DecodingRequest(method="sample").for_default(beam_default)
    assert (sampled.method, sampled.temperature, sampled.top_p, sampled.seed) == ("sample", 1.0, 1.0, None)
    assert sampled.alternatives == 0 and sampled.max_length == 16  # further samples only when asked for
    for request in (DecodingRequest(temperature=0.7), DecodingRequest(top_p=0.9), DecodingRequest(seed=5)):
        assert request.for_default(beam_default).method == "sample"  # each asks for sampling
    chosen = DecodingRequest(temperature=0.5, top_p=0.8, seed=-3, alternatives=2).for_default(beam_default)
    assert (chosen.temperature, chosen.top_p, chosen.seed, chosen.alternatives) == (0.5, 0.8, -3, 2)
    # temperature 0: the model's own deterministic decoding; a seed or top_p beside it is ignored
    assert DecodingRequest(temperature=0, seed=42, top_p=0.5).for_default(beam_default) == beam_default
    assert DecodingRequest(temperature=0).for_default(sampled).method == "greedy"
    assert DecodingRequest(temperature=0, beam_size=2).for_default(beam_default).beam_size == 2
    for contradiction in (dict(method="greedy", seed=1), dict(method="beam", temperature=0.5),
                          dict(beam_size=3, top_p=0.5), dict(method="sample", beam_size=2)):
        with pytest.raises(ValueError, match="contradict"):
            DecodingRequest(**contradiction)
    for bad, message in ((dict(method="sample", temperature=0), "temperature 0"),
                         (dict(temperature=-0.1), "temperature"), (dict(temperature=float("nan")), "temperature"),
                         (dict(top_p=0), "top_p"), (dict(top_p=1.5), "top_p"), (dict(seed=1.5), "seed")):
        with pytest.raises(ValueError, match=message):
            DecodingRequest(**bad)


def nucleus(log_probs: np.ndarray, temperature: float, top_p: float) -> np.ndarray:
    """The distribution sampling should draw from, worked out directly: tempered softmax, the smallest set
    of most likely tokens holding top_p of it, renormalised."""
    probabilities = np.exp(log_probs / temperature)
    probabilities /= probabilities.sum()
    kept, mass = np.zeros_like(probabilities), 0.0
    for token in np.argsort(-probabilities, kind="stable"):
        if mass >= top_p:
            break
        kept[token], mass = probabilities[token], mass + probabilities[token]
    return kept / kept.sum()


@pytest.mark.parametrize("temperature, top_p", [(1.0, 1.0), (0.6, 1.0), (1.5, 0.8)])
def test_sampled_words_follow_the_tempered_nucleus_of_the_model(temperature, top_p):
    vocab, draws = 10, 6000
    table = np.zeros((vocab, vocab))
    table[START, 4:] = [2.0, 1.5, 1.0, 0.5, 0.0, -1.0]
    table[START, PAD] = 3.0  # the most likely token is forbidden: never drawn
    table[:, END] = 50.0
    table[START, END] = -50.0
    step = markov_step(table)
    (hypotheses,) = sample_search(step, (np.zeros((1, vocab)),), RULES, max_length=3, samples=draws,
                                  temperature=temperature, top_p=top_p, seed=1)
    first = np.bincount([h.tokens[0] for h in hypotheses], minlength=vocab) / draws
    allowed = step(np.array([START]), (np.zeros((1, vocab)),))[0][0]
    allowed[[PAD, UNK, START]] = -np.inf
    expected = nucleus(allowed, temperature, top_p)
    assert first[[PAD, UNK, START, END]].sum() == 0 and first[expected == 0].sum() == 0
    bound = 5 * np.sqrt(expected * (1 - expected) / draws) + 1e-9  # five standard deviations
    assert np.all(np.abs(first - expected) <= bound), (first, expected)


@pytest.mark.parametrize("seed", range(4))
def test_a_tiny_nucleus_is_greedy_search(seed):
    step, state = random_problem(seed)
    greedy = greedy_search(step, state, RULES, max_length=6)
    sampled = decode(step, state, Decoding(method="sample", top_p=1e-9, temperature=2.0, max_length=6, seed=seed),
                     START, END, RULES.forbidden)
    assert [s[0].tokens for s in sampled] == [g.tokens for g in greedy]
    assert [s[0].log_prob for s in sampled] == pytest.approx([g.log_prob for g in greedy])


def test_samples_are_seeded_per_image_and_scored_by_the_untempered_model():
    step, state = random_problem(7, images=4, scale=1.0)
    decoding = Decoding(method="sample", seed=3, temperature=1.7, top_p=0.9, alternatives=2, max_length=6)
    together = decode(step, state, decoding, START, END, RULES.forbidden)
    alone = [decode(step, (state[0][i:i + 1],), decoding, START, END, RULES.forbidden)[0] for i in range(4)]
    assert [[h.tokens for h in hs] for hs in together] == [[h.tokens for h in hs] for hs in alone]
    assert [len(hs) for hs in together] == [5] * 4  # the caption and two spare draws per alternative
    first_only = decode(step, state, decoding.with_changes(alternatives=0), START, END, RULES.forbidden)
    assert [hs[0].tokens for hs in first_only] == [hs[0].tokens for hs in together]  # whatever N is
    for image, hypotheses in enumerate(together):
        for h in hypotheses:  # the model's own log-probability, not the tempered one
            assert h.log_prob == pytest.approx(sequence_log_prob(step, (state[0][image:image + 1],), list(h.tokens)))
    other_seed = decode(step, state, decoding.with_changes(seed=4), START, END, RULES.forbidden)
    unseeded = [decode(step, state, decoding.with_changes(seed=None), START, END, RULES.forbidden) for _ in range(2)]
    tokens = [[[h.tokens for h in hs] for hs in run] for run in (together, other_seed, *unseeded)]
    assert len({repr(t) for t in tokens}) == 4  # 20 captions of up to 6 words: all four runs differ
