#!/usr/bin/env python3
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Write a tiny random Llama (about 0.3 M parameters) that vLLM can serve, without the hub.

    vllm_tiny_model.py OUTDIR [--seed 0]

A byte-level BPE tokenizer (vocab 512) trained on a short built-in text, and
LlamaConfig(hidden_size=128, intermediate_size=256, 2 layers, 2 heads, 1 KV head; head_dim 64:
the CPU attention backend refuses head_dim 16). Deterministic for a seed. Used by the lab and
the tests only: its answers are noise, its point is a real server answering.
Run it with the release venv's python (transformers and tokenizers come with vLLM).
"""

import argparse
import json
import os
import sys


TEXT = """The quick brown fox jumps over the lazy dog. vLLM serves language models over an
OpenAI-compatible API. Blackwell GPUs run FP8 and FP4 kernels. Ansible makes a second run change
nothing. A health check that answers is the only proof that a service works. 0123456789
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab-size", type=int, default=512)
    args = ap.parse_args()

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    os.makedirs(args.outdir, exist_ok=True)
    torch.manual_seed(args.seed)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=args.vocab_size, special_tokens=["<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TEXT] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                          "{% if add_generation_prompt %}assistant:{% endif %}")
    fast.save_pretrained(args.outdir)

    config = LlamaConfig(
        vocab_size=args.vocab_size, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(args.outdir, safe_serialization=True)
    with open(os.path.join(args.outdir, "blackwell-tiny-model.json"), "w") as f:
        json.dump({"generator": "blackwell.vllm vllm_tiny_model.py", "seed": args.seed,
                   "parameters": sum(p.numel() for p in model.parameters())}, f)
    print(json.dumps({"outdir": args.outdir, "parameters": sum(p.numel() for p in model.parameters())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
