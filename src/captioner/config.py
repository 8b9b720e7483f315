"""Settings as dataclasses. Every model bundle stores the settings that made it (``captioner.json``),
so loading rebuilds the exact model. Each field carries a comment saying what it means.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TypeVar

T = TypeVar("T")


def settings_from_dict(cls: type[T], data: dict | None) -> T:
    """Build a settings dataclass from a dict, refusing names it does not know (a typo must not pass)."""
    data = dict(data or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**data)


def settings_to_dict(settings) -> dict:
    return asdict(settings)


@dataclass
class DataSettings:
    """How a data set becomes prepared captions (``captioner data prepare``)."""

    preset: str = "standard"  # caption cleaning: "seed" (the original's steps) or "standard" (keeps "a")
    min_count: int = 1  # words seen fewer times in the training split become <unk>
    seed: int = 42  # seed of the split when the data set brings none
    val_fraction: float = 0.1  # share of images for validation when the data set brings no split
    test_fraction: float = 0.1  # share of images for testing when the data set brings no split


@dataclass
class LstmSettings:
    """The CNN+LSTM architecture (the original's defaults)."""

    vocab_size: int = 0  # words in the vocabulary, <pad> and <unk> included (set from vocab.json)
    max_length: int = 0  # longest training caption in tokens, startseq and endseq included
    feature_dim: int = 1920  # length of the image embedding (DenseNet201 global average pooling: 1920)
    image_units: int = 256  # Dense layer applied to the image embedding
    embedding_dim: int = 256  # word embedding size (must equal image_units: both feed the LSTM as steps)
    lstm_units: int = 256  # LSTM state size (must equal image_units for the "add" model modification)
    dense_units: int = 128  # Dense layer after the LSTM and the added image vector
    dropout: float = 0.5  # dropout after the LSTM and after the Dense(128)
    backbone: str = "densenet201"  # image encoder whose features the model reads
    image_size: int = 224  # side in pixels the backbone sees


GENERATORS = ("teacher", "prefix")  # the values of TrainingSettings.generator


@dataclass
class AttentionSettings:
    """The Show-Attend-Tell captioner: an LSTM with soft attention over the backbone's grid (Xu et al. 2015)."""

    vocab_size: int = 0  # words in the vocabulary, <pad> and <unk> included (set from vocab.json)
    max_length: int = 0  # longest training caption in tokens, startseq and endseq included
    grid_cells: int = 49  # places attended over: rows x cols of the grid (DenseNet201 at 224 px: 7 x 7)
    annotation_dim: int = 1920  # values per place (DenseNet201's channels)
    embedding_dim: int = 256  # word embedding size, also the size of the deep output layer
    lstm_units: int = 512  # LSTM state size
    attention_units: int = 256  # size of the additive attention's hidden layer
    dropout: float = 0.5  # dropout before the softmax over the vocabulary
    penalty: float = 1.0  # lambda of the doubly stochastic attention penalty sum_i (1 - sum_t alpha_ti)^2
    backbone: str = "densenet201"  # image encoder whose grid the model reads
    image_size: int = 224  # side in pixels the backbone sees


@dataclass
class TrainingSettings:
    """How the LSTM captioner is trained (``captioner train lstm``)."""

    epochs: int = 100  # most passes over the training captions (the original's 100)
    batch_size: int = 64  # teacher forcing: captions of this many images per batch; prefix: samples per batch
    learning_rate: float = 1e-3  # Adam's initial learning rate
    generator: str = "teacher"  # "teacher" (whole captions at once) or "prefix" (the original generator)
    seed: int = 42  # seeds weights, shuffling and dropout, so a run repeats exactly
    patience: int = 5  # epochs without val_loss improvement before early stopping
    lr_patience: int = 3  # epochs without improvement before the learning rate is reduced
    lr_factor: float = 0.2  # factor of that reduction
    min_lr: float = 1e-8  # learning rate floor


@dataclass
class ImageToTextSettings:
    """A transformers image-to-text captioner (ViT-GPT2, BLIP, GIT, Florence-2) and its fine-tuning
    (``captioner train vit-gpt2|blip|git``)."""

    source: str = "nlpconnect/vit-gpt2-image-captioning"  # short name, model id or folder the weights came from
    architecture: str = ""  # "vit-gpt2", "blip", "git" or "florence-2" (read from the weights; "" in old bundles)
    encoder: str = ""  # encoder id when building a new ViT-GPT2 from an encoder and a decoder
    decoder: str = ""  # decoder id when building a new ViT-GPT2 from an encoder and a decoder
    epochs: int = 3  # fine-tuning epochs
    batch_size: int = 8  # images per training batch
    learning_rate: float = 5e-5  # AdamW learning rate
    max_target_length: int = 32  # longest caption in tokens during training
    patience: int = 2  # evaluations without val_loss improvement before early stopping
    seed: int = 42  # seeds weights and shuffling
    num_beams: int = 4  # default beam width when captioning (the original's 4; 0 = the architecture's own)
    max_length: int = 16  # default most words in a caption (the original's 16; 0 = the architecture's own)


VitGpt2Settings = ImageToTextSettings  # the name bundles and code used before BLIP and GIT joined
