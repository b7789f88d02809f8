"""The hybrid engine (ONNX Runtime audio encoder + llama.cpp GGUF decoder + forced aligner).

It knows nothing about whisper result shapes, writers or the CLI.
"""
