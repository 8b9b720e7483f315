"""Fine-tuning an image-to-text captioner (ViT-GPT2, BLIP, GIT) on a prepared data set with transformers'
``Seq2SeqTrainer``. Florence-2 is not fine-tuned (see ``ARCHITECTURES`` for why).

Each training example is one (image, raw reference caption) pair: the image goes through the safe
loader and the model's image processor, the caption through the tokenizer. ViT-GPT2 reads the caption
as labels with the end token appended (GPT-2 pads with its end token, so it is added explicitly);
BLIP and GIT read it as ``start caption end`` token ids, with the same ids as labels (the models shift
them themselves), starting with the token their ``generate`` starts with. Padding is -100 in the labels.
Validation loss is computed every epoch; early stopping and the best-model pick use it. At the end the
best model captions the validation images and the evaluation module scores them (BLEU, METEOR when
Java is there, ROUGE-L, CIDEr); those metrics go into the bundle's ``captioner.json``.

The run folder ``.NAME.training/`` beside the bundle holds the Trainer's epoch checkpoints (safetensors
weights; optimizer, scheduler and random states are torch files that transformers reads back with
``torch.load(weights_only=True)``), so an interrupted run continues with ``resume=True``. The bundle is
written into a staging folder and renamed to ``OUT`` when complete (as for every kind), so an interrupted
run never leaves a half bundle; the run folder is removed after that.
Several GPUs or machines: start the same command under ``torchrun`` or ``accelerate launch``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import torch
from transformers import TrainerCallback

from captioner import environment
from captioner.config import ImageToTextSettings, settings_from_dict, settings_to_dict
from captioner.data.images import load_image
from captioner.data.prepared import PreparedData
from captioner.errors import CaptionerError, ModelError, OfflineError
from captioner.models.bundle import BUNDLE_FILE, BundleInfo, is_bundle, run_folder, staged_bundle, write_bundle_info
from captioner.models.transformers.image_to_text import (KIND, MODEL_FOLDER, SETTINGS_KEY, ImageToTextCaptioner,
                                            ModelParts, configure_torch_threads, decoding_for, encoder_name,
                                            load_model_folder, prepare_special_tokens, resolve_pretrained,
                                            write_model_folder)
from captioner.progress import showing_bars
from captioner.training.plots import plot_history, write_history_csv

RUN_FILE = "run.json"  # in the run folder: the settings of the run, so a resumed run is the same run
START_PARTS = "processing"  # in the run folder: tokenizer and image processor of the run

Progress = Callable[[str], None]


class CaptionPairs(torch.utils.data.Dataset):
    """Every (image, reference caption) pair of one split of a prepared folder."""

    def __init__(self, prepared: PreparedData, split: str, parts: ModelParts, max_target_length: int):
        self.prepared = prepared
        self.image_processor = parts.image_processor
        self.tokenizer = parts.tokenizer
        self.start, self.end = caption_markers(parts)
        self.max_tokens = max(1, max_target_length - (1 if self.start is None else 2))  # room for start and end
        self.pairs = [(item.image, caption.strip()) for item in prepared.split(split) for caption in item.references
                      if caption.strip()]
        if not self.pairs:
            raise CaptionerError(f"the {split} split of {prepared.folder} has no captions; "
                                 "run 'captioner data prepare' again")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        image_name, caption = self.pairs[index]
        image = load_image(self.prepared.image_path(image_name))
        pixels = self.image_processor(images=[image], return_tensors="pt")["pixel_values"][0]  # (3, height, width)
        ids = self.tokenizer(caption, add_special_tokens=False, truncation=True, max_length=self.max_tokens)["input_ids"]
        if self.start is None:  # an encoder-decoder: the labels are what the decoder writes
            return {"pixel_values": pixels, "labels": ids + [self.end]}
        return {"pixel_values": pixels, "input_ids": [self.start, *ids, self.end]}


def caption_markers(parts: ModelParts) -> tuple[int | None, int]:
    """(start, end) tokens around a training caption; start is None for encoder-decoders (ViT-GPT2)."""
    name, config, tokenizer = parts.architecture.name, parts.model.config, parts.tokenizer
    if name == "blip":  # BLIP's generate starts from its own start token ([DEC]) and stops at [SEP]
        return config.text_config.bos_token_id, config.text_config.sep_token_id
    if name == "git":  # GIT starts from [CLS] and stops at [SEP]
        return tokenizer.cls_token_id, tokenizer.sep_token_id
    return None, tokenizer.eos_token_id


def collate_for(pad_token_id: int | None):
    """The batch builder: stacked images, then labels padded with -100 (ignored by the loss), and for
    decoder-only captioners the same ids as ``input_ids`` with padding and an attention mask."""

    def collate(examples: list[dict]) -> dict:
        key = "labels" if "labels" in examples[0] else "input_ids"
        width = max(len(e[key]) for e in examples)
        labels = torch.full((len(examples), width), -100, dtype=torch.long)  # (batch, tokens)
        for row, example in enumerate(examples):
            labels[row, : len(example[key])] = torch.tensor(example[key])
        batch = {"pixel_values": torch.stack([e["pixel_values"] for e in examples]), "labels": labels}  # (batch, 3, H, W)
        if key == "input_ids":
            batch["attention_mask"] = (labels != -100).long()  # (batch, tokens)
            batch["input_ids"] = labels.masked_fill(labels == -100, pad_token_id or 0)  # (batch, tokens)
        return batch

    return collate


def build_parts(settings: ImageToTextSettings) -> ModelParts:
    """The model to fine-tune: a new ViT + GPT-2 pair (settings.encoder/decoder) or settings.source."""
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    if settings.encoder or settings.decoder:
        if not (settings.encoder and settings.decoder):
            raise ValueError("a new model needs both an encoder (--encoder ID) and a decoder (--decoder ID)")
        try:
            # The decoder gains cross-attention layers (randomly initialised) to read the encoder's output.
            decoder_config = AutoConfig.from_pretrained(settings.decoder)
            decoder_config.is_decoder = True  # set here: transformers 5 reads it before GPT-2's config has it
            decoder_config.add_cross_attention = True
            model = VisionEncoderDecoderModel.from_encoder_decoder_pretrained(
                settings.encoder, settings.decoder, decoder_config=decoder_config)
            image_processor = AutoImageProcessor.from_pretrained(settings.encoder, backend="pil")
            tokenizer = AutoTokenizer.from_pretrained(settings.decoder)
        except OSError as error:
            raise OfflineError(f"cannot load the encoder {settings.encoder!r} or the decoder {settings.decoder!r} "
                               f"({error}); pass local folders, or run once with internet access so they are "
                               "cached") from None
        if tokenizer.eos_token_id is None:
            raise ModelError(f"the decoder's tokenizer ({settings.decoder}) has no end token; use a GPT-2 model")
        tokenizer.pad_token = tokenizer.eos_token
        for config in (model.config, model.generation_config):
            config.decoder_start_token_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None \
                else tokenizer.eos_token_id
            config.pad_token_id = tokenizer.eos_token_id
            config.eos_token_id = tokenizer.eos_token_id
        return ModelParts(model, image_processor, tokenizer)
    source = Path(settings.source).expanduser()
    if is_bundle(source):
        source = source / MODEL_FOLDER
    return load_model_folder(resolve_pretrained(source if source.is_dir() else settings.source))


def caption_trainer_class():
    """``Seq2SeqTrainer`` whose checkpoint reloads (best model, resume) go through ``from_pretrained``.

    transformers 5 saves checkpoints under the published weight names and renames them on
    ``from_pretrained``; the Trainer's own reload uses ``load_state_dict(strict=False)`` with the saved
    names, which silently skips every renamed (ViT) weight. Reading the checkpoint with ``from_pretrained``
    and copying it strictly loads every weight or fails loudly.
    """
    from transformers import Seq2SeqTrainer

    class CaptionTrainer(Seq2SeqTrainer):
        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            _load_weights(model or self.model, resume_from_checkpoint)

        def _load_best_model(self):
            _load_weights(self.model, self.state.best_model_checkpoint)

    return CaptionTrainer


def _load_weights(model, checkpoint: str) -> None:
    saved = type(model).from_pretrained(checkpoint, use_safetensors=True)
    model.load_state_dict(saved.state_dict(), strict=True)


class _EpochReport(TrainerCallback):
    """One line per evaluation: epoch, training loss, validation loss."""

    def __init__(self, progress: Progress | None):
        self.progress = progress

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.progress and state.is_world_process_zero and metrics:
            losses = [e["loss"] for e in state.log_history if "loss" in e]
            train = f"loss {losses[-1]:.4f}, " if losses else ""
            self.progress(f"epoch {state.epoch:.0f}/{args.num_train_epochs:.0f}: {train}"
                          f"val_loss {metrics.get('eval_loss', float('nan')):.4f}")


def history_from_logs(log_history: list[dict]) -> dict[str, list[float]]:
    """Per-epoch series (loss, val_loss, learning_rate) from the Trainer's log."""
    history: dict[str, list[float]] = {"loss": [], "val_loss": [], "learning_rate": []}
    for entry in log_history:
        if "eval_loss" in entry:
            history["val_loss"].append(float(entry["eval_loss"]))
        elif "loss" in entry:
            history["loss"].append(float(entry["loss"]))
            history["learning_rate"].append(float(entry.get("learning_rate", 0.0)))
    return {name: values for name, values in history.items() if values}


def _check_output(out: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from (None: a fresh start); refuses to overwrite a bundle or an unfinished run."""
    from transformers.trainer_utils import get_last_checkpoint

    checkpoints = run_folder(out)
    if not _is_main_process():  # the first process checks; the others follow its files, written meanwhile
        last = get_last_checkpoint(str(checkpoints)) if resume and checkpoints.is_dir() else None
        return Path(last) if last else None
    if is_bundle(out):
        raise ValueError(f"{out} already holds a trained model ({BUNDLE_FILE}); choose another --out or delete it")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder; choose another --out")
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if resume:
        if not (checkpoints / RUN_FILE).is_file():
            raise ValueError(f"there is no interrupted training run in {out} to resume; run without --resume")
        return Path(last) if last else None
    if checkpoints.exists() and any(checkpoints.iterdir()):
        raise ValueError(f"an unfinished training run of {out} is in {checkpoints}; add --resume to continue it, "
                         "or delete that folder to start again")
    return None


def _is_main_process() -> bool:
    return environment.current().rank == 0


def _mixed_precision() -> dict:
    if not torch.cuda.is_available():
        return {}
    return {"bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True}


def train_image_to_text(prepared_dir: str | os.PathLike, out_dir: str | os.PathLike,
                        settings: ImageToTextSettings | None = None, from_: str | None = None, resume: bool = False,
                        progress: Progress | None = None, java: bool | None = None,
                        family: str | None = None) -> Path:
    """Fine-tune on ``prepared_dir`` and write an image-to-text bundle to ``out_dir``; returns the bundle folder.

    ``from_`` (a hub id, a model folder or a bundle) overrides ``settings.source``; ``settings.encoder``
    and ``settings.decoder`` instead build a new model from a ViT encoder and a GPT-2 decoder.
    ``resume=True`` continues the interrupted run in ``out_dir`` with that run's own settings.
    ``progress`` receives one line per epoch; ``java`` is passed to the scorer (None: use it when installed).
    ``family`` ("vit-gpt2", "blip", "git"), when given, is the architecture the starting model must have.
    """
    from transformers import EarlyStoppingCallback, PrinterCallback, Seq2SeqTrainingArguments, set_seed

    say = progress or (lambda message: None)
    out = Path(out_dir).expanduser()
    prepared = PreparedData(prepared_dir)
    checkpoint = _check_output(out, resume)
    checkpoints = run_folder(out)
    if resume:
        run = json.loads((checkpoints / RUN_FILE).read_text(encoding="utf-8"))
        settings = settings_from_dict(ImageToTextSettings, run["settings"])
        say(f"resuming {'from ' + checkpoint.name if checkpoint else 'from the start'} with the run's own settings")
    else:
        settings = settings or ImageToTextSettings()
        if from_:
            if settings.encoder or settings.decoder:
                raise ValueError("start either from a model (--from) or from an encoder and a decoder, not both")
            settings.source = str(from_)
    if settings.epochs < 1 or settings.batch_size < 1 or settings.learning_rate <= 0 or settings.patience < 1:
        raise ValueError("epochs, batch size and patience must be at least 1 and the learning rate positive")
    set_seed(settings.seed)
    if not torch.cuda.is_available():
        configure_torch_threads()

    if checkpoint is not None:  # the architecture and weights of the interrupted run
        parts = load_model_folder_from_checkpoint(checkpoint, checkpoints / START_PARTS)
    else:
        parts = build_parts(settings)
    if not parts.architecture.fine_tunable:
        raise ModelError(f"captioner train does not fine-tune {parts.architecture.name} models: "
                         f"{parts.architecture.not_fine_tuned}")
    if family and parts.architecture.name != family:
        raise ModelError(f"{settings.source} is a {parts.architecture.name} model, not {family}; "
                         f"use 'captioner train {parts.architecture.name}' for it")
    settings.architecture = parts.architecture.name
    prepare_special_tokens(parts.model, parts.tokenizer)
    # The models return the mean loss over their batch's tokens and ignore the Trainer's token count;
    # without this the Trainer would multiply that mean by the number of processes.
    parts.model.accepts_loss_kwargs = False
    train = CaptionPairs(prepared, "train", parts, settings.max_target_length)
    val = CaptionPairs(prepared, "val", parts, settings.max_target_length)
    if _is_main_process() and not resume:
        checkpoints.mkdir(parents=True, exist_ok=True)
        save_processing(parts, checkpoints / START_PARTS)
        from captioner.files import write_json_atomic

        write_json_atomic(checkpoints / RUN_FILE, {"settings": settings_to_dict(settings),
                                                   "prepared": str(prepared.folder)})

    workers = min(8, max(0, (os.cpu_count() or 1) // max(1, torch.cuda.device_count()) - 1)) \
        if torch.cuda.is_available() else 0
    arguments = Seq2SeqTrainingArguments(
        output_dir=str(checkpoints), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, weight_decay=0.0, seed=settings.seed, data_seed=settings.seed,
        eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch",
        load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
        save_total_limit=2, report_to="none", remove_unused_columns=False, dataloader_num_workers=workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),  # also what makes torchrun on CPUs one distributed (gloo) run
        disable_tqdm=not showing_bars(), predict_with_generate=False, **_mixed_precision(),
    )
    callbacks = [EarlyStoppingCallback(early_stopping_patience=settings.patience), _EpochReport(progress)]
    trainer = caption_trainer_class()(model=parts.model, args=arguments, train_dataset=train, eval_dataset=val,
                                      data_collator=collate_for(parts.tokenizer.pad_token_id), callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # _EpochReport says the same in one line per epoch
    say(f"fine-tuning on {len(train)} caption pairs ({len(val)} for validation), "
        f"{settings.epochs} epochs, batch {settings.batch_size}, on {arguments.device}")
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    trainer.accelerator.wait_for_everyone()  # every process has read the best checkpoint before it is removed
    if not trainer.is_world_process_zero():
        return out
    parts.model = trainer.model
    history = history_from_logs(trainer.state.log_history)
    bundle = write_trained_bundle(out, prepared, parts, settings, history, say, java)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return bundle


def save_processing(parts: ModelParts, folder: Path) -> None:
    """The run's image processor and tokenizer (as the transformers processor when the model has one)."""
    if parts.processor is not None:
        parts.processor.save_pretrained(folder)
    else:
        parts.image_processor.save_pretrained(folder)
        parts.tokenizer.save_pretrained(folder)


def load_model_folder_from_checkpoint(checkpoint: Path, processing: Path) -> ModelParts:
    """A Trainer checkpoint (config + safetensors weights) with the run's tokenizer and image processor."""
    for name in os.listdir(processing):
        if not (checkpoint / name).exists():
            shutil.copyfile(processing / name, checkpoint / name)
    return load_model_folder(checkpoint)


def write_trained_bundle(out: Path, prepared: PreparedData, parts: ModelParts, settings: ImageToTextSettings,
                         history: dict[str, list[float]], say: Progress, java: bool | None = None) -> Path:
    """model/, history.csv, loss.png and captioner.json (with validation metrics), staged, then renamed to ``out``."""
    with staged_bundle(out) as staging:
        write_trained_files(staging, out.name, prepared, parts, settings, history, say, java)
    return out


def write_trained_files(folder: Path, name: str, prepared: PreparedData, parts: ModelParts, settings: ImageToTextSettings,
                        history: dict[str, list[float]], say: Progress, java: bool | None) -> None:
    from captioner.evaluation import evaluate_captioner

    write_model_folder(folder / MODEL_FOLDER, parts)
    write_curves(history, folder)
    info = BundleInfo(kind=KIND, name=name, dataset=prepared.name, backbone=settings.encoder or encoder_name(parts),
                      settings={SETTINGS_KEY: settings_to_dict(settings)})
    say("captioning the validation images with the best model")
    captioner = ImageToTextCaptioner(parts, info, decoding_for(settings, parts.architecture),
                                     batch_size=max(8, settings.batch_size))
    result = evaluate_captioner(captioner, prepared, "val", progress=showing_bars(), java=java)
    info.metrics = {"val": result.bundle_metrics()}
    write_bundle_info(folder, info)
    say(f"validation: {', '.join(f'{k} {v:.3f}' for k, v in result.scores.items())}")


def write_curves(history: dict[str, list[float]], out: Path) -> list[Path]:
    """history.csv and the learning curves (training and validation loss per epoch)."""
    return [write_history_csv(history, out / "history.csv"), *plot_history(history, out)]


train_vit_gpt2 = train_image_to_text  # the name before BLIP and GIT joined
