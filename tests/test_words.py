"""Word splitting and timestamp repair against the official forced-aligner processor."""

from __future__ import annotations

import random

import numpy as np
import pytest
from qwen_asr.inference.qwen3_forced_aligner import Qwen3ForceAlignProcessor

from qwen_whisper_compat.engine.timestamps import fix_timestamps
from qwen_whisper_compat.engine.words import split_words

OFFICIAL = Qwen3ForceAlignProcessor()

TEXTS = {
    "English": [
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
        "It's 2026 -- rock'n'roll isn't dead; 3.14 % of 1,000 \"quoted\" (words)!",
        "  leading and trailing spaces  ",
        "",
    ],
    "Chinese": [
        "广州市房地产中介协会分析，今年上半年全市二手房成交量同比上升。",
        "我们用Qwen3-ASR做语音识别，it's 2026年的新模型，准确率99.5%。",
        "Hello world, 你好世界！ it's 2026.",
        "𠀀𪜀 rare ideographs 丽 compatibility",
    ],
    "Cantonese": ["佢哋話今日會落雨，you know 嗎？"],
    "German": ["Größe, Straße und Äpfel: 12 Stück!"],
    "Japanese": ["今日はいい天気ですね。東京タワーに行きましょう！", "カタカナとひらがな、漢字の混在テキスト。"],
    "Korean": ["오늘 날씨가 정말 좋네요. 서울에 가고 싶어요!", "한국어 형태소 분석기 테스트입니다."],
}


@pytest.mark.parametrize(("language", "text"), [(lang, t) for lang, ts in TEXTS.items() for t in ts])
def test_split_words_matches_official(language: str, text: str) -> None:
    words, _ = OFFICIAL.encode_timestamp(text, language)
    assert split_words(text, language) == words


def _sequences() -> list[list[int]]:
    rng = random.Random(0)
    out = [[0, 80, 40, 160, 3000, 240, 320, 320, 10, 400], [], [5], [3, 2, 1], [7, 7, 7]]
    for _ in range(200):
        n = rng.randint(1, 40)
        base = sorted(rng.randrange(0, 400) for _ in range(n))
        for _ in range(rng.randint(0, n // 2 + 1)):  # sprinkle anomalies, some in runs
            k = rng.randrange(n)
            base[k] = rng.choice([0, rng.randrange(0, 5000), base[k] + rng.randint(-50, 50)])
        out.append([v * 80 for v in base])
    return out


@pytest.mark.parametrize("values", _sequences())
def test_fix_timestamps_matches_official(values: list[int]) -> None:
    expected = OFFICIAL.fix_timestamp(np.array(values, dtype=np.int64)) if values else []
    assert fix_timestamps(values) == expected
    assert all(a <= b for a, b in zip(fix_timestamps(values), fix_timestamps(values)[1:], strict=False))
