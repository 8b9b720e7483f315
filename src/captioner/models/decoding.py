"""Greedy search, beam search and sampling over a step function, for any model that predicts one word at a time.

A step function takes the last token of every row and the rows' state, and returns the log-probabilities
of the next token and the new state::

    step(tokens: (rows,) int, state: tuple of arrays (rows, ...)) -> (log_probs (rows, vocab), new state)

Every image of a batch (and every beam of every image) is one row, so one step call advances them all.
The state is opaque to this module: it is only counted, repeated and reordered by row, through a
:class:`StateOps`. The default works on tuples of numpy arrays (row = first axis); a model whose state is
not that (torch tensors, or parts shared by every beam of an image) passes its own. Rows are always
image-major: the beams of image ``i`` are rows ``i * beams ... (i + 1) * beams - 1``, and a reorder only
ever moves rows within their own image.

Scores: ``log_prob`` is the caption's total log-probability under the model (its words plus endseq), as
:mod:`captioner.models.base` defines it. ``ranking_score`` is what the search ranks by: the same sum after
the repetition rules, divided by ``length ** length_penalty`` (length counts endseq). Tokens in
``forbidden`` (``<pad>``, ``<unk>``, ``startseq``) are never emitted. A caption that holds ``max_length``
words is ended there: the next step may only choose endseq, so every caption ends with it.

Sampling draws each next token from ``softmax(ranked / temperature)`` (``ranked``: the log-probabilities after
the same rules), kept to the nucleus: the fewest most likely tokens that together hold ``top_p`` of the
probability. Each sample of an image is one row with its own random generator, derived from the seed
alone and the sample's number (:func:`sample_generators`): a caption does not depend on the other images of
its batch, nor on how many alternatives were asked for. :func:`draw` is the one rule for choosing a token,
which ``generate``-based kinds use too.

Beam search stops as transformers' ``generate`` does (``early_stopping=False``), so a model decoded here
and there gets the same captions: the same top-``2 * beams`` candidates, the same rule for finished beams,
and the same stopping test (an image is done when ``beams`` captions are finished and none of its live
beams, were it to end now, would rank above the worst of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from captioner.models.base import Decoding

State = Any  # a tuple of numpy arrays (rows, ...) by default; anything its StateOps handle otherwise
StepFunction = Callable[[np.ndarray, State], tuple[np.ndarray, State]]


def _rows(state: tuple[np.ndarray, ...]) -> int:
    return len(state[0])


def _repeat(state: tuple[np.ndarray, ...], times: int) -> tuple[np.ndarray, ...]:
    return tuple(np.repeat(s, times, axis=0) for s in state)


def _select(state: tuple[np.ndarray, ...], rows: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(s[rows] for s in state)


@dataclass(frozen=True)
class StateOps:
    """How the search handles a model's decoding state; the defaults work on tuples of numpy arrays."""

    rows: Callable[[State], int] = _rows  # how many rows (images, or images * beams) the state holds
    repeat: Callable[[State, int], State] = _repeat  # each row ``times`` times, the copies of a row adjacent
    select: Callable[[State, np.ndarray], State] = _select  # rows by index (rows,), a row may be taken twice


NUMPY_STATE = StateOps()


@dataclass(frozen=True)
class Hypothesis:
    """One decoded caption."""

    tokens: tuple[int, ...]  # generated word ids, without startseq and endseq
    log_prob: float  # total model log-probability, endseq included
    ranking_score: float  # adjusted log-probability / length ** length_penalty (length counts endseq)


@dataclass(frozen=True)
class SearchRules:
    """What every search shares: the markers, the forbidden tokens and the repetition rules."""

    start_id: int
    end_id: int
    forbidden: tuple[int, ...] = ()
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    # a model's own rule on the next token (the word limit of sub-word kinds):
    # (histories, ranked (rows, vocab)) -> ranked, with the tokens it rules out at -inf
    token_filter: Callable[[Sequence[Sequence[int]], np.ndarray], np.ndarray] | None = None

    def adjust(self, log_probs: np.ndarray, histories: Sequence[Sequence[int]], must_end: bool = False) -> np.ndarray:
        """Log-probabilities for ranking: forbidden tokens and repeated n-grams at -inf, used words penalised;
        with ``must_end`` (the captions hold max_length words) every token but endseq at -inf."""
        ranked = np.array(log_probs, dtype=np.float64)  # (rows, vocab)
        if must_end:
            ended = np.full_like(ranked, -np.inf)  # (rows, vocab)
            ended[:, self.end_id] = ranked[:, self.end_id]
            return ended
        if self.forbidden:
            ranked[:, list(self.forbidden)] = -np.inf
        if self.repetition_penalty != 1.0:
            for row, history in enumerate(histories):
                used = list(set(history))
                if used:
                    # a used word's probability is divided by the penalty
                    ranked[row, used] -= np.log(self.repetition_penalty)
        if self.no_repeat_ngram_size > 0:
            for row, history in enumerate(histories):
                banned = banned_next_tokens(history, self.no_repeat_ngram_size)
                if banned:
                    ranked[row, list(banned)] = -np.inf
        if self.token_filter is not None:
            ranked = self.token_filter(histories, ranked)
        return ranked


def banned_next_tokens(history: Sequence[int], n: int) -> set[int]:
    """Tokens that would repeat an n-gram already in ``history``."""
    if n < 1 or len(history) < n - 1:
        return set()
    if n == 1:
        return set(history)
    prefix = tuple(history[len(history) - n + 1:])
    return {history[i + n - 1] for i in range(len(history) - n + 1) if tuple(history[i:i + n - 1]) == prefix}


def _normalised(score: float, length: int, length_penalty: float) -> float:
    return score / (max(length, 1) ** length_penalty) if length_penalty else score


def greedy_search(step: StepFunction, state: State, rules: SearchRules, max_length: int,
                  length_penalty: float = 0.0, ops: StateOps = NUMPY_STATE) -> list[Hypothesis]:
    """The most likely next word each time (the original's decoding); one hypothesis per row."""
    return _one_path_per_row(step, state, rules, max_length, lambda ranked: np.argmax(ranked, axis=1),
                             length_penalty, ops)


def sample_search(step: StepFunction, state: State, rules: SearchRules, max_length: int, samples: int,
                  temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
                  length_penalty: float = 0.0, ops: StateOps = NUMPY_STATE) -> list[list[Hypothesis]]:
    """``samples`` captions drawn per image, in the order drawn (sample ``r`` of every image from
    :func:`sample_generators`' generator ``r``); all samples of all images move in one step call."""
    images = ops.rows(state)
    # row image * samples + r draws from its own generator r (fresh entropy for each row when seed is None)
    generators = [generator for _ in range(images) for generator in sample_generators(seed, samples)]

    def choose(ranked: np.ndarray) -> np.ndarray:
        uniforms = np.array([generator.random() for generator in generators])  # (rows,) in [0, 1)
        return draw(ranked, temperature, top_p, 1.0 - uniforms)

    drawn = _one_path_per_row(step, ops.repeat(state, samples), rules, max_length, choose, length_penalty, ops)
    return [drawn[image * samples:(image + 1) * samples] for image in range(images)]


def sample_generators(seed: int | None, samples: int) -> list[np.random.Generator]:
    """One random generator per sample number ``r``, made from ``seed`` and ``r`` alone (fresh ones for
    ``seed=None``). Any whole number is a seed (taken modulo 2**64)."""
    if seed is None:
        return [np.random.default_rng() for _ in range(samples)]
    root = np.random.SeedSequence(seed % 2**64)
    return [np.random.default_rng(child) for child in root.spawn(samples)]


def draw(ranked: np.ndarray, temperature: float, top_p: float, uniforms: np.ndarray) -> np.ndarray:
    """One token per row from ``softmax(ranked / temperature)`` within the ``top_p`` nucleus, by inverting the
    cumulative distribution at ``uniforms`` (rows,), each in (0, 1]. Tokens at -inf are never drawn; a row
    with every token at -inf gets token 0 (callers always leave one allowed)."""
    scaled = np.asarray(ranked, dtype=np.float64) / temperature  # (rows, vocab)
    top = np.max(scaled, axis=1, keepdims=True)  # (rows, 1)
    weights = np.exp(scaled - np.where(np.isfinite(top), top, 0.0))  # (rows, vocab), unnormalised
    if top_p < 1.0:
        order = np.argsort(-weights, axis=1, kind="stable")  # (rows, vocab), most likely first
        sorted_weights = np.take_along_axis(weights, order, axis=1)
        before = np.cumsum(sorted_weights, axis=1) - sorted_weights  # (rows, vocab): mass of the more likely ones
        outside = before >= top_p * sorted_weights.sum(axis=1, keepdims=True)  # the nucleus is already full
        np.put_along_axis(weights, order, np.where(outside, 0.0, sorted_weights), axis=1)
    cumulative = np.cumsum(weights, axis=1)  # (rows, vocab)
    thresholds = np.asarray(uniforms, dtype=np.float64)[:, None] * cumulative[:, -1:]  # (rows, 1)
    chosen = np.sum(cumulative < thresholds, axis=1)  # the first token whose cumulative weight reaches it
    return np.minimum(chosen, ranked.shape[1] - 1)


def _one_path_per_row(step: StepFunction, state: State, rules: SearchRules, max_length: int,
                      choose: Callable[[np.ndarray], np.ndarray], length_penalty: float,
                      ops: StateOps) -> list[Hypothesis]:
    """Every row follows the tokens ``choose`` picks from the ranked log-probabilities (rows, vocab)."""
    rows = ops.rows(state)
    tokens = np.full(rows, rules.start_id, dtype=np.int32)
    histories: list[list[int]] = [[] for _ in range(rows)]
    total = np.zeros(rows)  # model log-probability so far
    ranked_total = np.zeros(rows)  # adjusted log-probability so far
    finished = np.zeros(rows, dtype=bool)
    for length in range(max_length + 1):  # max_length words, then endseq at the latest
        log_probs, state = step(tokens, state)  # (rows, vocab)
        ranked = rules.adjust(log_probs, histories, must_end=length == max_length)
        choice = choose(ranked)  # (rows,)
        for row in np.flatnonzero(~finished):
            word = int(choice[row])
            total[row] += float(log_probs[row, word])
            ranked_total[row] += float(ranked[row, word])
            if word == rules.end_id:
                finished[row] = True
            else:
                histories[row].append(word)
        if finished.all():
            break
        tokens = np.where(finished, rules.end_id, choice).astype(np.int32)
    return [Hypothesis(tuple(histories[row]), float(total[row]),
                       _normalised(float(ranked_total[row]), len(histories[row]) + 1, length_penalty))
            for row in range(rows)]


def beam_search(step: StepFunction, state: State, rules: SearchRules, max_length: int, beam_size: int,
                length_penalty: float = 1.0, ops: StateOps = NUMPY_STATE) -> list[list[Hypothesis]]:
    """Beam search, all beams of all images in one step call; per image, hypotheses best first.

    At each step the ``2 * beam_size`` best extensions of an image's beams are ranked; those among the
    first ``beam_size`` that end with endseq are finished, the best others stay live. An image is done
    when it has ``beam_size`` finished captions and no live beam, ended at its present length, would rank
    above the worst of them (transformers' default heuristic).
    """
    images = ops.rows(state)
    k = beam_size
    state = ops.repeat(state, k)  # (images * k, ...)
    ranked_score = np.full((images, k), -np.inf)  # adjusted log-probability of each live beam
    ranked_score[:, 0] = 0.0  # one live beam to start with, so no duplicates
    model_score = np.zeros((images, k))
    beams: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(images)]
    finished: list[list[Hypothesis]] = [[] for _ in range(images)]
    done = np.zeros(images, dtype=bool)
    tokens = np.full(images * k, rules.start_id, dtype=np.int32)
    for length in range(1, max_length + 2):  # length counts endseq: max_length words, then endseq
        log_probs, state = step(tokens, state)  # (images * k, vocab)
        vocab = log_probs.shape[1]
        ranked = rules.adjust(log_probs, [beam for image_beams in beams for beam in image_beams],
                              must_end=length == max_length + 1)
        candidates = (ranked_score.reshape(-1, 1) + ranked).reshape(images, k * vocab)  # (images, k * vocab)
        best = _top_candidates(candidates, 2 * k)  # (images, 2k), best first
        source = np.arange(images * k).reshape(images, k) // k * k  # dead beams copy beam 0
        next_tokens = np.full((images, k), rules.end_id, dtype=np.int32)
        new_ranked = np.full((images, k), -np.inf)
        new_model = np.zeros((images, k))
        new_beams: list[list[list[int]]] = [[[] for _ in range(k)] for _ in range(images)]
        for image in np.flatnonzero(~done):
            kept = 0
            for rank, flat in enumerate(best[image]):
                score = candidates[image, flat]
                if not np.isfinite(score) or kept == k:
                    break
                beam, word = divmod(int(flat), vocab)
                row = image * k + beam
                total = float(model_score[image, beam] + log_probs[row, word])
                if word == rules.end_id:
                    if rank < k:
                        finished[image].append(Hypothesis(tuple(beams[image][beam]), total,
                                                          _normalised(float(score), length, length_penalty)))
                    continue
                source[image, kept] = row
                next_tokens[image, kept] = word
                new_ranked[image, kept] = score
                new_model[image, kept] = total
                new_beams[image][kept] = beams[image][beam] + [word]
                kept += 1
            if kept == 0 or _cannot_improve(finished[image], new_ranked[image, :kept], k, length, length_penalty):
                done[image] = True
        if done.all():
            break
        state = ops.select(state, source.reshape(-1))
        tokens = next_tokens.reshape(-1)
        ranked_score, model_score, beams = new_ranked, new_model, new_beams
    return [sorted(hypotheses, key=lambda h: -h.ranking_score) for hypotheses in finished]


def _cannot_improve(finished: list[Hypothesis], live_scores: np.ndarray, k: int, length: int,
                    length_penalty: float) -> bool:
    """True when ``k`` captions are finished and the best live beam, normalised at its present ``length``,
    would not rank above the k-th best of them (exact without a length penalty, a heuristic with one)."""
    if len(finished) < k:
        return False
    kth_best = sorted((h.ranking_score for h in finished), reverse=True)[k - 1]
    best_possible = _normalised(float(np.max(live_scores)), length, length_penalty)
    return kth_best >= best_possible


def _top_candidates(candidates: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` highest scores per row, best first; ties go to the lower index (as argmax)."""
    count = min(count, candidates.shape[1])
    part = np.argpartition(-candidates, count - 1, axis=1)[:, :count]  # (rows, count), unordered
    order = np.array([np.lexsort((idx, -candidates[r, idx])) for r, idx in enumerate(part)])
    return np.take_along_axis(part, order, axis=1)


def decode(step: StepFunction, state: State, decoding: Decoding, start_id: int, end_id: int,
           forbidden: Iterable[int] = (), ops: StateOps = NUMPY_STATE, max_tokens: int | None = None,
           token_filter=None) -> list[list[Hypothesis]]:
    """Decode every row of ``state`` as ``decoding`` says; per image, hypotheses best first (sampling: the
    caption, then the further samples, in the order drawn; see :func:`sampled_captions`).

    Models that step one word at a time leave ``max_tokens`` out (``decoding.max_length`` words). A sub-word
    kind passes ``max_tokens`` (its token budget before the end token) and its word limit as ``token_filter``.
    """
    rules = SearchRules(start_id, end_id, tuple(sorted(set(forbidden))), decoding.no_repeat_ngram_size,
                        decoding.repetition_penalty, token_filter)
    longest = decoding.max_length if max_tokens is None else max_tokens
    if decoding.method == "sample":
        return sample_search(step, state, rules, longest, sampled_captions(decoding), decoding.temperature,
                             decoding.top_p, decoding.seed, decoding.length_penalty, ops)
    if decoding.method == "greedy" or decoding.beam_size == 1:  # a beam of one is greedy search
        return [[h] for h in greedy_search(step, state, rules, longest, decoding.length_penalty, ops)]
    return beam_search(step, state, rules, longest, decoding.beam_size, decoding.length_penalty, ops)


def sampled_captions(decoding: Decoding) -> int:
    """How many captions sampling draws per image: the caption, and two spares per alternative asked for,
    so that ``alternatives`` different ones are usually found (:mod:`captioner.models.base`)."""
    return 1 + 2 * decoding.alternatives
