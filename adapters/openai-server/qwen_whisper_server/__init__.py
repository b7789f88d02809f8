"""An OpenAI-compatible speech-to-text server for qwen-whisper-compat.

``qwen-whisper-server --model turbo`` serves ``POST /v1/audio/transcriptions`` and ``GET /v1/models`` on
127.0.0.1:8000, so that OpenAI clients (``openai.OpenAI(base_url="http://127.0.0.1:8000/v1")``) transcribe
with Qwen3-ASR. :func:`create_app` builds the ASGI application around an already loaded model.
"""

from __future__ import annotations

__version__ = "0.2.0"  # before the imports: the modules below read it

from qwen_whisper_server.app import ServerOptions, create_app

__all__ = ["ServerOptions", "__version__", "create_app"]
