"""A tiny random causal LM with a real tokenizer and ChatML template, built in seconds for tests."""
from __future__ import annotations

import json
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def corpus(root: Path) -> list[str]:
    texts = []
    for path in sorted((root / "fixtures" / "demo").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            texts.extend(m["content"] for m in json.loads(line)["messages"])
    return texts


def build_tiny_model(out: Path, repo_root: Path, seed: int = 0, hidden_size: int = 32) -> Path:
    """Train a small byte-level BPE on the demo texts and save a 2-layer Llama beside it. (bitsandbytes' 4-bit
    layers need at least 64 input features: QLoRA tests ask for hidden_size=64.)"""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus(repo_root), trainers.BpeTrainer(vocab_size=512, special_tokens=specials,
                                                                   initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tok.chat_template = CHATML
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         tie_word_embeddings=False, initializer_range=0.3)  # varied greedy output
    model = LlamaForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out
