#!/usr/bin/env python3
"""Gate vectors for `gate_mode: hidden` (amalgam moe): the base model's hidden states on each
expert's prompts, as the widely used tool's mergekit-moe computes them, written to a safetensors
file that the config then names with `gate_vectors: FILE`.

Amalgam runs no model, so this one step runs here, with transformers, on a machine that can hold
the base model (a GPU if `--device cuda`). Usage:

    scripts/gate-vectors.py CONFIG OUT.safetensors [--device cpu|cuda|auto]

The file holds one float32 tensor per layer, `layers.N`, of shape [gated experts, hidden]: the
experts in config order, then the shared experts that have prompts. Per expert and layer: the
hidden state entering the layer at the last prompt token (`hidden`, `hidden_last`) or averaged
over the tokens (`hidden_avg`), averaged over the prompts, minus the same for the negative
prompts, normalized to length one.
"""
import argparse

import torch
import transformers
import yaml
from safetensors.torch import save_file


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    mode = config.get("gate_mode", "hidden")
    if mode not in ("hidden", "hidden_avg", "hidden_last"):
        raise SystemExit(f"{args.config}: gate_mode is {mode}; gate vectors are for hidden, hidden_avg or hidden_last")
    base = config["base_model"]
    tokenizer = transformers.AutoTokenizer.from_pretrained(base)
    tokenizer.padding_side = "left"
    tokenizer.pad_token_id = tokenizer.bos_token_id
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16, device_map=args.device)
    gated = list(config["experts"]) + [e for e in (config.get("shared_experts") or []) if e.get("positive_prompts")]

    def states(prompts):
        batch = tokenizer([(tokenizer.bos_token or "") + p for p in prompts], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model(**batch, output_hidden_states=True, return_dict=True)
        hidden = torch.stack(out.hidden_states[:-1])  # layers, prompts, tokens, hidden
        hidden = hidden.sum(dim=2) / hidden.shape[2] if mode == "hidden_avg" else hidden[:, :, -1, :]
        return hidden.sum(dim=1) / hidden.shape[1]

    vectors = []
    for expert in gated:
        v = states(expert["positive_prompts"])
        if expert.get("negative_prompts"):
            v = v - states(expert["negative_prompts"])
        v = v / v.norm(p=2, dim=-1, keepdim=True).clamp(min=1e-8)
        vectors.append(v)
    gates = torch.stack(vectors, dim=0).permute(1, 0, 2)  # layers, gated experts, hidden
    save_file({f"layers.{i}": gates[i].float().cpu().contiguous() for i in range(gates.shape[0])}, args.out)
    print(f"{args.out}: {gates.shape[0]} layers x {gates.shape[1]} gated experts x {gates.shape[2]}")


if __name__ == "__main__":
    main()
