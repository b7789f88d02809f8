"""A Qwen3-ASR-GGUF-style model folder made from a tiny checkpoint, for testing that the runtime reads one.

Emulates the layout of github.com/HaujetZhao/Qwen3-ASR-GGUF (not its code): the official audio tower is
exported with torch as a static 100-frame conv frontend (``chunk_mel [1,128,100] -> [1,13,d]``, positions
included) and a transformer backend taking ``hidden_states [1,T,d]`` and an additive
``attention_mask [1,1,T,T]``; the decoder is written as llama.cpp arch ``qwen3vl`` with an explicit head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def export_hz_folder(ckpt: Path, out: Path, llm_precision: str = "f32") -> Path:
    import torch
    import torch.nn.functional as F
    from qwen_asr.core.transformers_backend.modeling_qwen3_asr import Qwen3ASRForConditionalGeneration

    from qwen_whisper_compat.convert.checkpoint import Checkpoint
    from qwen_whisper_compat.convert.gguf_decoder import write_decoder_gguf
    from qwen_whisper_compat.convert.tokenizer import read_tokenizer

    out.mkdir(parents=True, exist_ok=True)
    model = Qwen3ASRForConditionalGeneration.from_pretrained(str(ckpt), dtype=torch.float32).eval()
    tower = model.thinker.audio_tower.requires_grad_(False)
    tower.config._attn_implementation = "eager"

    class Frontend(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tower = tower

        def forward(self, chunk_mel: Any) -> Any:
            x = chunk_mel.unsqueeze(1)
            x = F.gelu(tower.conv2d1(x))
            x = F.gelu(tower.conv2d2(x))
            x = F.gelu(tower.conv2d3(x))
            b, c, f, t = x.shape
            x = tower.conv_out(x.permute(0, 3, 1, 2).reshape(b, t, c * f))
            return x + tower.positional_embedding.positional_embedding[:t].unsqueeze(0)

    class Backend(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tower = tower

        def forward(self, hidden_states: Any, attention_mask: Any) -> Any:
            x = hidden_states[0]
            cu = torch.tensor([0, 1], dtype=torch.int32)  # read by flash-attention only; eager uses the mask
            for layer in tower.layers:
                x = layer(x, cu, attention_mask=attention_mask)[0]
            x = tower.proj2(tower.act(tower.proj1(tower.ln_post(x))))
            return x.unsqueeze(0)

    d = tower.config.d_model
    with torch.no_grad():
        torch.onnx.export(
            Frontend(), (torch.zeros(1, 128, 100),), str(out / "qwen3_asr_encoder_frontend.fp32.onnx"),
            input_names=["chunk_mel"], output_names=["chunk_out"], dynamo=False, opset_version=17,
        )  # fmt: skip
        torch.onnx.export(
            Backend(), (torch.zeros(1, 30, d), torch.zeros(1, 1, 30, 30)),
            str(out / "qwen3_asr_encoder_backend.fp32.onnx"),
            input_names=["hidden_states", "attention_mask"], output_names=["last_hidden_state"],
            dynamic_axes={"hidden_states": {1: "T"}, "attention_mask": {2: "T", 3: "T"},
                          "last_hidden_state": {1: "T"}},
            dynamo=False, opset_version=17,
        )  # fmt: skip
    source = Checkpoint(ckpt)
    tok = read_tokenizer(ckpt, source.decoder_dims().vocab_size)
    tokens = source.special_tokens(tok.vocab, tok.special_ids)
    write_decoder_gguf(source, tok, tokens, out / f"qwen3_asr_llm.{llm_precision}.gguf", llm_precision, arch="qwen3vl")
    return out
