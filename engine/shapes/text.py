"""The tiny teacher's text side: a word-level tokenizer over the world's words and a small UMT5 encoder.

Both are standard transformers classes (PreTrainedTokenizerFast, UMT5EncoderModel), so they save and
reload inside a diffusers pipeline folder exactly like Wan2.1's own tokenizer and text encoder.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"


def build_tokenizer(words: list[str], model_max_length: int) -> PreTrainedTokenizerFast:
    """A lower-casing, whitespace-splitting word tokenizer that ends every text with </s> (T5 style)."""
    vocab = {PAD: 0, EOS: 1, UNK: 2}
    for word in words:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(WordLevel(vocab=vocab, unk_token=UNK))
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    core.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        eos_token=EOS,
        unk_token=UNK,
        model_max_length=model_max_length,
        padding_side="right",
    )


def build_text_encoder(
    vocab_size: int, d_model: int, seed: int, num_layers: int = 2, d_ff: int | None = None
) -> UMT5EncoderModel:
    """A small randomly initialised UMT5 encoder. It stays frozen, as Wan's text encoder does:
    random but fixed word embeddings mixed by attention are distinct enough to condition on."""
    config = UMT5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=d_model // 4,
        d_ff=d_ff or d_model * 2,
        num_layers=num_layers,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(seed)
    return UMT5EncoderModel(config).eval().requires_grad_(False)


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts: list[str], max_sequence_length: int) -> torch.Tensor:
    """Prompt embeddings (B, max_sequence_length, d) exactly as WanPipeline makes them: the encoder
    sees the attention mask, and every position past the prompt is set to zero."""
    tokens = tokenizer(
        [" ".join(p.split()) for p in prompts],
        padding="max_length",
        max_length=max_sequence_length,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    device = next(text_encoder.parameters()).device
    hidden = text_encoder(tokens.input_ids.to(device), tokens.attention_mask.to(device)).last_hidden_state
    mask = tokens.attention_mask.to(device=device, dtype=hidden.dtype).unsqueeze(-1)
    return hidden * mask
