"""Greedy and beam search over small step functions whose answers can be worked out by hand or by
enumerating every caption."""

import itertools

import numpy as np
import pytest

from captioner.models.base import Decoding
from captioner.models.decoding import SearchRules, banned_next_tokens, beam_search, decode, greedy_search

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
    with pytest.raises(ValueError, match="greedy, beam"):
        DecodingRequest(method="sampling")
