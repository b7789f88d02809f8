"""Chinese inverse text normalisation: one table of (spoken, written) pairs, idempotence, and no-op on other text."""

from __future__ import annotations

import random

import pytest

from qwen_whisper_compat.itn import FIXED_WORDS, chinese_itn

# (input, expected). Pairs whose input equals the expected output are negatives: the text must not change.
CASES: list[tuple[str, str]] = [
    # cardinals
    ("一百二十三", "123"),
    ("两千零五", "2005"),
    ("一万二千", "12000"),
    ("一万二", "12000"),
    ("三千五", "3500"),
    ("两万五", "25000"),
    ("一百零八", "108"),
    ("一千零五十", "1050"),
    ("一万零五百", "10500"),
    ("十", "10"),
    ("十五", "15"),
    ("二十一世纪", "21世纪"),
    ("三十五万六千", "356000"),
    ("一亿三千万", "130000000"),
    ("一千二百三十四万五千六百七十八", "12345678"),
    ("大约有三百二十五个人参加", "大约有325个人参加"),
    ("一万个理由", "10000个理由"),
    ("二百五十", "250"),
    ("三十多个", "30多个"),
    ("十多岁", "10多岁"),
    # decimals and negatives
    ("三点一四", "3.14"),
    ("零点五", "0.5"),
    ("一点五", "1.5"),
    ("三点零五", "3.05"),
    ("三点五万", "3.5万"),
    ("负五", "-5"),
    ("负一", "-1"),
    ("负三点五", "-3.5"),
    ("零下五度", "零下5度"),
    # digits read one by one
    ("二零二六", "2026"),
    ("一三八零零", "13800"),
    ("打幺幺零报警", "打110报警"),
    ("零零七", "007"),
    ("幺九二点幺六八点幺点幺", "192.168.1.1"),
    ("九零后", "90后"),
    # dates
    ("二零二六年", "2026年"),
    ("二零二六年十一月二十五日", "2026年11月25日"),
    ("二〇〇八年八月八日", "2008年8月8日"),
    ("一九四九年十月一日", "1949年10月1日"),
    ("三月五号", "3月5号"),
    ("十二月三十一日", "12月31日"),
    ("一月", "1月"),
    ("零八年", "08年"),
    ("八六年三月", "86年3月"),
    ("两千零五年三月", "2005年3月"),
    # times
    ("三点十五分", "3:15"),
    ("十二点三十", "12:30"),
    ("十点零五分三十秒", "10:05:30"),
    ("八点零五分", "8:05"),
    ("下午两点半", "下午2点半"),
    ("凌晨一点", "凌晨1点"),
    ("一点钟", "1点钟"),
    ("三点一刻", "3点一刻"),
    ("十一点", "11点"),
    ("两点到三点半", "2点到3点半"),
    ("下午三点十分开会", "下午3:10开会"),
    ("下午三点到五点", "下午3点到5点"),
    ("九点五分", "9.5分"),
    # percentages, fractions, ratios
    ("百分之五十", "50%"),
    ("百分之三点五", "3.5%"),
    ("百分之零点五", "0.5%"),
    ("百分之一", "1%"),
    ("负百分之三", "-3%"),
    ("千分之五", "5‰"),
    ("百分之五到百分之十", "5%到10%"),
    ("三分之一", "1/3"),
    ("三分之二的人", "2/3的人"),
    ("十分之一", "1/10"),
    ("一百分之一", "1/100"),
    ("负三分之一", "-1/3"),
    ("三比二", "3:2"),
    # units, measures and ordinals
    ("五公斤", "5公斤"),
    ("三十度", "30度"),
    ("五块钱", "5块钱"),
    ("三个人", "3个人"),
    ("两个苹果", "2个苹果"),
    ("三分钟", "3分钟"),
    ("十分钟", "10分钟"),
    ("三年级", "3年级"),
    ("五G网络", "5G网络"),
    ("第三", "第3"),
    ("第一名和第二名", "第1名和第2名"),
    ("第十一届", "第11届"),
    ("第一百", "第100"),
    ("负一层", "-1层"),
    ("一周三次", "一周3次"),
    # ranges
    ("三到五个", "3到5个"),
    ("十至二十", "10至20"),
    ("一到两个", "1到2个"),
    ("从一到十", "从1到10"),
    # numerals standing alone
    ("一", "1"),
    ("零", "0"),
    ("两", "2"),
    # mixed text: Latin, existing digits and punctuation are left alone
    ("iPhone 15 Pro 三个", "iPhone 15 Pro 3个"),
    ("第3", "第3"),
    ("5万", "5万"),
    ("百分之5", "百分之5"),
    ("GPT-4o用了三秒。", "GPT-4o用了3秒。"),
    ("我们在二零二六年开会，共有二十个人！", "我们在2026年开会，共有20个人！"),
    # negatives: numerals that are words, idioms, approximations
    ("一心一意", "一心一意"),
    ("三心二意", "三心二意"),
    ("七上八下", "七上八下"),
    ("一五一十地说了", "一五一十地说了"),
    ("十全十美", "十全十美"),
    ("一举两得", "一举两得"),
    ("九牛一毛", "九牛一毛"),
    ("一模一样", "一模一样"),
    ("一些人", "一些人"),
    ("一样", "一样"),
    ("一起去", "一起去"),
    ("一直", "一直"),
    ("一定", "一定"),
    ("统一", "统一"),
    ("万一", "万一"),
    ("星期一", "星期一"),
    ("每周三开会", "每周三开会"),
    ("一会儿", "一会儿"),
    ("三国", "三国"),
    ("一个人", "一个人"),
    ("一公斤", "一公斤"),
    ("他有一个朋友", "他有一个朋友"),
    ("二百五", "二百五"),
    ("八九不离十", "八九不离十"),
    ("举一反三。", "举一反三。"),
    ("三十六计", "三十六计"),
    ("百分之百", "百分之百"),
    ("一千零一夜", "一千零一夜"),
    ("第一时间", "第一时间"),
    ("十分重要", "十分重要"),
    ("这一点十分重要", "这一点十分重要"),
    ("有一点累", "有一点累"),
    ("今天一点都不冷", "今天一点都不冷"),
    ("一点点", "一点点"),
    ("差一点", "差一点"),
    ("十几个", "十几个"),
    ("几十万", "几十万"),
    ("七八个", "七八个"),
    ("一两天", "一两天"),
    ("三三两两", "三三两两"),
    ("八六年", "八六年"),
    ("三到四川", "三到四川"),
    ("千万不要", "千万不要"),
    ("万里长城", "万里长城"),
    ("五湖四海", "五湖四海"),
    ("胡说八道", "胡说八道"),
    ("三角形", "三角形"),
    ("两口子", "两口子"),
    ("初三", "初三"),
    ("负责", "负责"),
    ("两十", "两十"),
]


@pytest.mark.parametrize(("spoken", "written"), CASES, ids=[c[0] for c in CASES])
def test_chinese_itn(spoken: str, written: str) -> None:
    assert chinese_itn(spoken) == written


def test_table_is_large_and_has_no_duplicates() -> None:
    inputs = [c[0] for c in CASES]
    assert len(inputs) >= 80
    assert len(set(inputs)) == len(inputs)
    assert sum(spoken == written for spoken, written in CASES) >= 20  # negatives


@pytest.mark.parametrize(("spoken", "written"), CASES, ids=[c[0] for c in CASES])
def test_idempotent(spoken: str, written: str) -> None:
    once = chinese_itn(spoken)
    assert chinese_itn(once) == once
    assert chinese_itn(written) == written


@pytest.mark.parametrize("word", FIXED_WORDS)
def test_fixed_words_stay(word: str) -> None:
    assert chinese_itn(word) == word
    assert chinese_itn(f"他说{word}。") == f"他说{word}。"


def test_cases_joined_into_one_text() -> None:
    # Pieces separated by full-width punctuation do not affect each other.
    assert chinese_itn("，".join(c[0] for c in CASES)) == "，".join(c[1] for c in CASES)


def _random_non_chinese(rng: random.Random) -> str:
    pools = [
        "abcxyzABCXYZ0123456789 .,;:!?-+*/%()[]'\"\n\t",
        "àéîõüßñçÆØÅ",
        "абвгдежзийклмнопрст",
        "αβγδεζηθ",
        "あいうえおかきくけこアイウエオカキクケコ",
        "한국어숫자",
        "，。！？、；：“”‘’（）《》【】…—",
        "０１２３４５６７８９ＡＢＣ％",
        "½²³¼①②③ⅠⅡⅢ",
        "🙂🚀",
    ]
    length = rng.randint(0, 40)
    return "".join(rng.choice(rng.choice(pools)) for _ in range(length))


def test_non_chinese_text_is_unchanged() -> None:
    rng = random.Random(0)
    samples = [_random_non_chinese(rng) for _ in range(2000)]
    samples += ["", "2026-11-25 15:30", "50%", "3.14", "-5", "1/3", "Hello, world!", "ＡＢＣ１２３"]
    for text in samples:
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in text)
        assert chinese_itn(text) == text, text


def test_long_text_converts_every_repetition() -> None:
    text = "我们在二零二六年十一月二十五日下午两点半开会，大约有三百二十五个人参加，百分之五十的人同意。" * 500
    expected = "我们在2026年11月25日下午2点半开会，大约有325个人参加，50%的人同意。" * 500
    assert chinese_itn(text) == expected
