"""What ``generate`` is given and how its answer is read, for every transformers architecture.

One place turns a :class:`~captioner.models.base.Decoding` into ``generate`` arguments (the word limit, the
beams, the sampled tokens), names the token that ends a caption, and scores the returned sequences from the raw
logits. The image-to-text captioner and the vision-language path both use it, so neither imports the other for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from captioner.models.base import Decoding

if TYPE_CHECKING:
    import torch

# Tokens that end an assistant's turn (SmolVLM, ChatML models, Gemma): the caption's end when the model lists it
# among its end tokens (Gemma 3 lists its plain <eos> first).
TURN_ENDS = ("<end_of_utterance>", "<|im_end|>", "<end_of_turn>")


def turn_end(model, tokenizer) -> int | None:
    """The token that ends the assistant's turn, where the model stops there (SmolVLM, ChatML models, Gemma 3,
    which lists its plain <eos> first); None for a model without chat turns (PaliGemma)."""
    ends = model.generation_config.eos_token_id
    ends = set(ends) if isinstance(ends, (list, tuple)) else {ends}
    for token in TURN_ENDS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id in ends:
            return token_id
    return None


def end_token(parts) -> int:
    """The token that ends a caption."""
    model = parts.model
    if parts.architecture.name == "blip":
        return model.config.text_config.sep_token_id  # BLIP's generate stops at [SEP]
    if parts.architecture.vision_language:
        end = turn_end(model, parts.tokenizer)
        if end is not None:
            return end
    end = model.generation_config.eos_token_id
    if isinstance(end, (list, tuple)):
        end = end[0]
    return end if end is not None else parts.tokenizer.eos_token_id


def generation_arguments(decoding: Decoding, word_limit, images: int = 1) -> dict:
    """``generate`` keyword arguments for a Decoding, with its :class:`~captioner.models.transformers.word_limit.WordLimit`.

    Sampling is a greedy ``generate`` over ``images`` images, each given :func:`samples_per_image` times,
    whose last logits processor draws the tokens (:mod:`captioner.models.transformers.sampling`).
    """
    from transformers import LogitsProcessorList

    beams = decoding.beam_size if decoding.method == "beam" else 1
    processors = [word_limit]
    if decoding.method == "sample":
        from captioner.models.transformers.sampling import SampledTokens, sampling_forbidden

        processors.append(SampledTokens(decoding, images, samples_per_image(decoding),
                                        sampling_forbidden(word_limit)))
    arguments = {
        "num_beams": beams,
        "do_sample": False,  # sampling draws in SampledTokens; generate then takes the one token left
        "max_new_tokens": word_limit.budget,
        "logits_processor": LogitsProcessorList(processors),
        "num_return_sequences": samples_per_image(decoding) if beams > 1 else 1,
        "repetition_penalty": decoding.repetition_penalty,
        "no_repeat_ngram_size": decoding.no_repeat_ngram_size,
        "output_logits": True,
        "return_dict_in_generate": True,
    }
    if beams > 1:
        arguments["length_penalty"] = decoding.length_penalty
    return arguments


def samples_per_image(decoding: Decoding) -> int:
    """Captions decoded per image: the drawn ones when sampling, else as many as ``generate`` returns."""
    from captioner.models.decoding import sampled_captions

    if decoding.method == "sample":
        return sampled_captions(decoding)
    return min(decoding.beam_size, decoding.alternatives + 1) if decoding.method == "beam" and \
        decoding.beam_size > 1 else 1


def sequence_log_probs(output, end_token_id: int, given: int = 1) -> "torch.Tensor":
    """Total log-probability of each returned sequence's generated tokens, from generate's raw logits.

    Follows each sequence back through the beams that produced it (``beam_indices``), takes
    ``log_softmax`` of the raw logits at each step and adds the chosen token's value, up to and
    including the first end token. Tokens given to the decoder (start token, prompt) are not scored.
    """
    import torch

    tokens = output.sequences[:, given:]  # (rows, steps): the generated tokens
    rows, steps = tokens.shape
    if getattr(output, "beam_indices", None) is None:  # greedy: row i of the logits always belongs to sequence i
        beam_rows = torch.arange(rows, device=tokens.device)[:, None].expand(rows, steps)  # (rows, steps)
    else:
        beam_rows = output.beam_indices[:, :steps].long()  # (rows, steps), -1 after a sequence ended
    total = torch.zeros(rows, dtype=torch.float64, device=tokens.device)  # (rows,)
    alive = torch.ones(rows, dtype=torch.bool, device=tokens.device)  # (rows,)
    for step in range(steps):
        source = beam_rows[:, step]  # (rows,)
        logits = output.logits[step][source.clamp(min=0)].float()  # (rows, vocab)
        chosen = torch.log_softmax(logits, dim=-1).gather(1, tokens[:, step : step + 1]).squeeze(1)  # (rows,)
        total += torch.where(alive & (source >= 0), chosen.double(), torch.zeros_like(total))
        alive &= tokens[:, step] != end_token_id
    return total


def word_limit(parts, decoding: Decoding, prompt: str, given: int, device):
    """The WordLimit processor for ``decoding.max_length`` words (a caption start given as prompt counts)."""
    import torch

    from captioner.models.transformers.word_limit import WordLimit, token_budget, word_start_table

    if parts.word_starts is None:
        starts = torch.tensor(word_start_table(parts.tokenizer), dtype=torch.bool, device=device)  # (vocab,)
        special = torch.zeros_like(starts)  # (vocab,)
        special[list(parts.tokenizer.all_special_ids)] = True
        parts.word_starts = (starts, special)
    prefix_words = len(prompt.split()) if parts.architecture.prompt and parts.architecture.prompt.style == "prefix" \
        else 0
    config = parts.model.config
    decoder = getattr(config, "decoder", None) or getattr(config, "text_config", None) or config
    positions = getattr(decoder, "n_positions", None) or getattr(decoder, "max_position_embeddings", None)
    budget = token_budget(max(1, decoding.max_length - prefix_words), positions and positions - given + 1)
    return WordLimit(*parts.word_starts, end_token(parts), max(1, decoding.max_length - prefix_words),
                     prompt_length=given, budget=budget)
