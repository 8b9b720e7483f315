"""``max_length`` in words for models that write sub-word tokens (transformers image-to-text kinds).

The decoding contract (:mod:`captioner.models.base`) counts a caption's length in words. A transformers
decoder writes tokens, and a word may take several (GPT-2's BPE: ``Ġsk`` ``ate`` ``board``). Each token
either starts a new word (its text begins with a space once decoded after another token) or continues
the current one; :func:`word_start_table` works that out once per tokenizer, and :class:`WordLimit`
(a transformers ``LogitsProcessor``) uses it while generating: once a caption holds ``max_length``
words it may only finish its last word or end, and at the token budget it must end. So no caption
exceeds ``max_length`` words, every caption ends with the end token, and scores (taken from the raw
logits) stay the model's own log-probabilities.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

TOKENS_PER_WORD = 4  # token budget per allowed word: far above real captions, a bound on odd ones


def word_start_table(tokenizer) -> list[bool]:
    """Per token id: True when the token starts a new word (never for special tokens)."""
    special = set(tokenizer.all_special_ids)
    vocab = len(tokenizer)
    probe = next(i for i in range(vocab) if i not in special and tokenizer.decode([i]).strip().isalpha())
    prefix = tokenizer.decode([probe], clean_up_tokenization_spaces=False)
    texts = tokenizer.batch_decode([[probe, token] for token in range(vocab)], clean_up_tokenization_spaces=False)
    return [token not in special and text[len(prefix):][:1].isspace() for token, text in enumerate(texts)]


def token_budget(max_words: int, positions: int | None) -> int:
    """Most new tokens a caption of ``max_words`` words may take (end token included), within the model's positions."""
    budget = TOKENS_PER_WORD * max_words + 1
    return min(budget, positions - 1) if positions else budget


def words_so_far(generated: torch.Tensor, starts: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
    """Words in each row of generated tokens (rows, steps) -> (rows,): the first token always opens one."""
    opens = starts[generated]  # (rows, steps)
    if generated.shape[1]:
        opens[:, 0] = ~special[generated[:, 0]]
    return opens.sum(dim=1)


class WordLimit(LogitsProcessor):
    """A transformers LogitsProcessor: at most ``max_words`` words, and the end token by ``budget`` tokens."""

    def __init__(self, starts: torch.Tensor, special: torch.Tensor, end_id: int, max_words: int,
                 prompt_length: int, budget: int):
        self.starts = starts  # (vocab,) bool: the token starts a new word
        self.special = special  # (vocab,) bool: a special token (start, end, padding)
        self.end_id = end_id
        self.max_words = max_words
        self.prompt_length = prompt_length  # tokens before the first generated one (the decoder start token)
        self.budget = budget  # most generated tokens, the end token included
        self._masks: dict = {}  # (vocab, device) -> (all but the end, what a full caption may not write)

    def masks(self, vocab: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(every token but the end, the tokens a full caption may not write), each (vocab,), made once for a
        vocabulary size and device: they are the same at every step."""
        key = (vocab, str(device))
        if key not in self._masks:
            all_but_end = torch.ones(vocab, dtype=torch.bool, device=device)  # (vocab,)
            all_but_end[self.end_id] = False
            # once full, a caption may only finish its last word or end: no new word, and no special token
            # (padding, unknown, mask) that would only pad it out to the budget
            closing = torch.zeros(vocab, dtype=torch.bool, device=device)  # (vocab,)
            closing[: len(self.starts)] = self.starts[:vocab] | self.special[:vocab]
            closing[self.end_id] = False
            self._masks[key] = (all_but_end, closing)
        return self._masks[key]

    def rule(self, input_ids: torch.Tensor, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(the rows the limit binds (rows,), the tokens it rules out in them (vocab,)) for sequences so far."""
        generated = input_ids[:, self.prompt_length:]  # (rows, steps)
        all_but_end, closing = self.masks(vocab, input_ids.device)
        if generated.shape[1] >= self.budget - 1:  # the last token the budget allows: the end token
            return torch.ones(len(input_ids), dtype=torch.bool, device=input_ids.device), all_but_end
        return words_so_far(generated, self.starts, self.special) >= self.max_words, closing

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        rows, banned = self.rule(input_ids, scores.shape[1])
        return scores.masked_fill(rows[:, None] & banned[None, :], -torch.inf)  # (rows, vocab)
