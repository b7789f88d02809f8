"""Chinese inverse text normalisation: spoken numerals in a transcript become digits.

Qwen3-ASR writes numbers the way they are spoken (``二零二六年十一月二十五日``); :func:`chinese_itn` rewrites
them as a reader expects (``2026年11月25日``). It is pure Python, deterministic and idempotent, and it touches
nothing but Chinese numerals: Latin text, existing digits and punctuation (full-width included) pass through.

Conventions:

* **Cardinals** become plain digits without separators: ``一百二十三`` → ``123``, ``两千零五`` → ``2005``,
  ``一亿三千万`` → ``130000000``, ``一万二`` → ``12000`` (a bare digit after 万/千/百 is the next place).
  A decimal keeps a following 万/亿: ``三点五万`` → ``3.5万``. ``负`` gives a minus sign: ``负五`` → ``-5``.
* **Digits read one by one** (three or more) become the digit string: ``一三八零零`` → ``13800``, and ``幺``
  counts as 1 there. With two or more ``点`` they form a dotted string (``幺九二点幺六八点幺点幺`` →
  ``192.168.1.1``).
* **Threshold.** A number of two or more numeral characters always converts (unless it is a fixed word below).
  A single numeral (``零``, ``二``-``九``, ``两``, ``十``) converts only when a measure word or unit follows
  (``三个人`` → ``3个人``, ``五公斤`` → ``5公斤``, ``十多岁`` → ``10多岁``, ``五G`` → ``5G``), after ``第`` or
  ``负``, when it stands alone between punctuation, spaces or the text's ends (``十`` → ``10``), or inside a
  date, time, percentage, fraction, ratio, range or decimal. Otherwise it is a word: ``三国``, ``五湖四海``,
  ``十分重要``. **一** is stricter: a measure word does not convert it (``一个人``, ``一天``, ``一公斤`` stay),
  because 一 there is closer to an article than a count; ``第一`` → ``第1``, ``负一`` → ``-1`` and
  structures (``一点五``, ``百分之一``, ``一月一日``) do convert it.
* **Approximations** stay words: two juxtaposed numerals (``三五个``, ``七八年``, ``一两天``) and any number
  next to ``几`` (``十几个``, ``几十万``). Two digits before ``后``/``年代`` are a cohort: ``九零后`` → ``90后``.
* **Dates** keep their characters: ``二零二六年十一月二十五日`` → ``2026年11月25日``, ``三月五号`` →
  ``3月5号``. A two-digit year converts only with a month or a 零 (``零八年`` → ``08年``); ``八六年`` stays,
  as it may mean "eight or six years".
* **Times**: a reading with minutes becomes clock notation, ``三点十五分`` → ``3:15``, ``十点零五分三十秒`` →
  ``10:05:30``, ``十二点三十`` → ``12:30``; otherwise the hour converts and the words stay:
  ``下午两点半`` → ``下午2点半``, ``三点一刻`` → ``3点一刻``, ``一点钟`` → ``1点钟``, ``凌晨一点`` →
  ``凌晨1点``. Minutes need 零 or 十 (``八点零五分`` → ``8:05``): ``九点五分`` is a score, ``9.5分``.
* **Percentages and fractions**: ``百分之五十`` → ``50%``, ``千分之五`` → ``5‰``, ``三分之一`` → ``1/3``;
  ratios ``三比二`` → ``3:2``.
* **Ranges** keep their word: ``三到五个`` → ``3到5个``, ``十至二十`` → ``10至20``; both ends convert when
  one of them would, a unit or date word follows, or the range ends the phrase.
* **Fixed words** stay as written: idioms (``一心一意``, ``七上八下``, ``十全十美``), words where 一 is not a
  count (``一些``, ``统一``, ``万一``), weekdays (``星期三``, ``周五``) and lexicalised ordinals
  (``第一时间``, ``第三方``, ``第二天`` "the next day"). See :data:`FIXED_WORDS`.

Known limitations (rules, not a language model, so ambiguity is settled one way):

* ``X点十分`` after a one-character hour is read as "very" unless a time word (``下午``, ``明天``) precedes
  or the phrase ends: ``三点十分开会`` gives ``3点十分开会``, ``下午三点十分开会`` gives ``下午3:10开会``.
* Two-digit years without a month (``九九年``), ``百分之三到五`` (the second end stays ``五``), ``一百十``,
  ``万分之一`` and ``三块五`` (``3块五``) are left partly or wholly as words.
* Idioms are a curated list; one that is missing and has a multi-character number (``十八罗汉``) converts.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["FIXED_WORDS", "chinese_itn"]

_NUM = "零〇一二两三四五六七八九十百千万亿幺"  # every character that can be part of a spoken number
_DIG = "零〇一二三四五六七八九幺"  # characters of a digit-by-digit reading
_DIGIT_VALUE = {
    "零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_SMALL_UNIT = {"十": 10, "百": 100, "千": 1000}
_BIG_UNITS = (("亿", 10**8), ("万", 10**4))

#: Words whose numerals stay as characters. Entries that begin (end) with a numeral are not matched right
#: after (before) another numeral, so ``二百五`` is kept but ``二百五十`` is 250.
FIXED_WORDS: tuple[str, ...] = (
    # 一 as part of a word rather than a count
    "一些", "一样", "一起", "一直", "一定", "一切", "一般", "一旦", "一致", "一向", "一律", "一再", "一齐",
    "一会儿", "一下子", "一点儿", "一点点", "一点都", "一点也", "一点一滴", "一点一点", "一点半点", "一星半点",
    "统一", "万一", "唯一", "同一", "单一", "一一",
    # ordinals that are words
    "第一时间", "第一手", "第一线", "第一人称", "第二人称", "第三人称", "第三者", "第三方", "第二天",
    # idioms and fixed phrases
    "一心一意", "三心二意", "七上八下", "一五一十", "十全十美", "一举两得", "九牛一毛", "一模一样",
    "三番五次", "三番两次", "五次三番", "三天两头", "三天打鱼", "两天晒网", "三年五载", "三人行", "三岁看老",
    "七年之痒", "十年寒窗", "十年磨一剑", "三步并作两步", "四人帮", "三五成群", "七七八八", "乱七八糟",
    "十有八九", "十之八九", "八九不离十", "略知一二", "九九归一", "三十而立", "四十不惑", "五十知天命",
    "三十六计", "五十步笑百步", "九九八十一", "三七二十一", "十万火急", "十万八千里", "十八般武艺",
    "一千零一夜", "二百五", "百分之百", "大年三十", "十月怀胎", "十八大", "十九大", "二十大", "九一八",
    "三个代表", "举一反三", "接二连三", "颠三倒四", "朝三暮四", "不三不四", "丢三落四", "三国", "五湖四海",
    "四面八方",
)  # fmt: skip

#: Measure words and units after which a single numeral (not 一) is a count.
_UNITS = (
    "个", "位", "名", "人", "口人", "只", "条", "张", "本", "件", "台", "辆", "架", "艘", "部", "家", "所",
    "座", "栋", "间", "层", "楼", "号", "户", "次", "遍", "趟", "场", "届", "期", "页", "章", "节", "篇",
    "首", "句", "项", "种", "类", "份", "套", "双", "批", "组", "支", "把", "根", "颗", "粒", "片", "块",
    "杯", "瓶", "碗", "盒", "包", "袋", "箱", "桌", "匹", "棵", "朵", "封", "笔", "枚", "岁", "倍", "级",
    "折", "步", "点", "秒", "分钟", "小时", "钟头", "天", "日", "周", "星期", "年", "世纪", "季度", "元",
    "块钱", "毛钱", "角钱", "美元", "欧元", "英镑", "日元", "港元", "港币", "韩元", "公斤", "千克", "克", "斤",
    "吨", "公里", "千米", "米", "厘米", "毫米", "英里", "英尺", "英寸", "亩", "平方米", "平米", "平方公里",
    "立方米", "升", "毫升", "度", "摄氏度", "瓦", "千瓦", "赫兹", "分贝", "千卡", "%", "％",
)  # fmt: skip
_UNIT_RE = re.compile("[多余来]?(?:" + "|".join(sorted(_UNITS, key=len, reverse=True)) + "|[A-Za-z])")
_DATE_WORD_RE = re.compile("[月日号年]")
_TIME_PREFIXES = frozenset(
    "上午 下午 早上 早晨 晚上 中午 凌晨 傍晚 夜里 半夜 深夜 午夜 清晨 今早 今晚 明早 明晚 昨晚 "
    "今天 明天 昨天 后天 每天 当天".split()
)

_N = f"[{_NUM}]"
_NOT_AFTER_NUM = f"(?<!{_N})"
_NOT_BEFORE_NUM = f"(?!{_N})"
_BODY = f"[{_NUM}]+(?:点[{_DIG}]+)?"  # an operand of a percentage, fraction, ratio or range
_HOUR = "(?:二十[一二三四]?|十[一二三四五六七八九]?|[零〇一二两三四五六七八九])"
_MINUTE = "(?:零[一二三四五六七八九]分|[二三四五]?十[一二三四五六七八九]?分?)"
_SECOND = "(?:零?[一二三四五六七八九]|[二三四五]?十[一二三四五六七八九]?)秒"
_CLOCK = f"{_HOUR}点(?:{_MINUTE}(?:{_SECOND})?|半|[一三]刻|钟|整)?"
_CLOCK_RE = re.compile(f"(?P<h>{_HOUR})点(?:(?P<m>{_MINUTE})(?P<s>{_SECOND})?|(?P<half>半)|(?P<rest>[一三]刻|钟|整))?")
_MONTH = "(?:十[一二]?|[一二三四五六七八九])"
_DAY = "(?:三十一?|二十[一二三四五六七八九]?|十[一二三四五六七八九]?|[一二三四五六七八九])"


def _fixed_word_pattern(word: str) -> str:
    before = _NOT_AFTER_NUM if word[0] in _NUM else ""
    after = _NOT_BEFORE_NUM if word[-1] in _NUM else ""
    return before + re.escape(word) + after


_FIXED_RE = re.compile("|".join(_fixed_word_pattern(w) for w in sorted(FIXED_WORDS, key=len, reverse=True)))
# A weekday, unless a count follows (一周三次) or the numeral goes on (周一百块).
_WEEKDAY_RE = re.compile("(?:星期|礼拜|周)[一二三四五六日天](?![百千万亿次个])")
_PERCENT_RE = re.compile(f"{_NOT_AFTER_NUM}(?P<neg>负)?(?P<base>[百千])分之(?P<num>{_BODY}){_NOT_BEFORE_NUM}")
_TIME_RE = re.compile(f"{_NOT_AFTER_NUM}(?P<a>{_CLOCK})(?:(?P<sep>到|至)(?P<b>{_CLOCK}))?{_NOT_BEFORE_NUM}")
_DATE_RE = re.compile(
    f"{_NOT_AFTER_NUM}(?:(?P<y>[零〇一二三四五六七八九]{{2,4}})年(?:(?P<m>{_MONTH})月(?:(?P<d>{_DAY})(?P<dw>[日号]))?)?"
    f"|(?P<m2>{_MONTH})月(?:(?P<d2>{_DAY})(?P<dw2>[日号]))?)"
)
_FRACTION_RE = re.compile(f"{_NOT_AFTER_NUM}(?P<neg>负)?(?P<den>{_BODY})分之(?P<num>{_BODY}){_NOT_BEFORE_NUM}")
_RATIO_RE = re.compile(f"{_NOT_AFTER_NUM}(?P<a>{_BODY})比(?P<b>{_BODY}){_NOT_BEFORE_NUM}")
_RANGE_RE = re.compile(f"{_NOT_AFTER_NUM}(?P<a>(?<!正)负?{_BODY})(?P<sep>到|至)(?P<b>负?{_BODY}){_NOT_BEFORE_NUM}")
_NUMBER_RE = re.compile(f"(?P<neg>(?<!正)负)?(?P<int>{_N}+)(?P<frac>(?:点[{_DIG}]+)*)")
_LONE_TWO_OK = re.compile("后|年代")


def _parse_small(s: str, leading_zero: bool) -> int | None:
    """Value of a section below 万 (``三千零五``, ``十五``, ``三千五``), or None if it is not well formed."""
    total, pending, last_unit, zero = 0, -1, 10_000, False
    for i, ch in enumerate(s):
        if ch in "零〇":
            if pending >= 0 or zero or (i == 0 and not leading_zero) or i == len(s) - 1:
                return None
            zero = True
        elif ch in _DIGIT_VALUE:
            if pending >= 0 or ch == "幺":
                return None
            pending = _DIGIT_VALUE[ch]
        elif ch in _SMALL_UNIT:
            unit = _SMALL_UNIT[ch]
            if unit >= last_unit:
                return None
            if pending < 0:
                if ch != "十" or i != 0:  # only a leading 十 may drop its 一
                    return None
                pending = 1
            if ch == "十" and i > 0 and s[i - 1] == "两":
                return None
            total, pending, last_unit, zero = total + pending * unit, -1, unit, False
        else:
            return None
    if pending >= 0:
        # 三千五 is 3500: a bare last digit takes the place below the last unit, unless 零 intervened.
        total += pending if zero or last_unit in (10, 10_000) else pending * last_unit // 10
    return total


def _parse_cardinal(s: str, leading_zero: bool = False) -> int | None:
    """Value of a cardinal with 万/亿 sections (``一亿三千万``, ``一万二``), or None."""
    for unit, value in _BIG_UNITS:
        if unit in s:
            high_text, low_text = s.split(unit, 1)
            high = _parse_cardinal(high_text, leading_zero) if high_text else None
            if not high:
                return None
            if not low_text:
                return high * value
            if len(low_text) == 1 and low_text in "一二三四五六七八九":  # 一万二: 12000
                return high * value + _DIGIT_VALUE[low_text] * value // 10
            low = _parse_cardinal(low_text, leading_zero=True)
            if low is None or low >= value:
                return None
            return high * value + low
    return _parse_small(s, leading_zero)


def _digits(s: str) -> str:
    return "".join(str(_DIGIT_VALUE[c]) for c in s)


def _integer(s: str) -> tuple[str, str] | None:
    """Digits of an integer reading and its kind: single, one (一/幺 alone), pair, digits or cardinal."""
    if len(s) == 1:
        if s in "一幺":
            return "1", "one"
        if s == "十":
            return "10", "single"
        return (str(_DIGIT_VALUE[s]), "single") if s in _DIGIT_VALUE else None
    if all(c in _DIG for c in s):
        return _digits(s), "pair" if len(s) == 2 else "digits"
    if re.search("两(?![百千万亿])|幺", s):
        return None
    value = _parse_cardinal(s)
    return None if value is None else (str(value), "cardinal")


def _number(body: str) -> tuple[str, bool] | None:
    """Digits of an operand (integer or decimal) and whether it was a lone numeral, or None."""
    int_text, _, frac_text = body.partition("点")
    parsed = _integer(int_text)
    if parsed is None or parsed[1] == "pair":
        return None
    digits, kind = parsed
    if frac_text:
        return f"{digits}.{_digits(frac_text)}", False
    return digits, kind in ("single", "one")


def _is_boundary(text: str, i: int) -> bool:
    """Whether position ``i`` is outside the text or holds neither a letter, a digit nor a CJK character."""
    return i < 0 or i >= len(text) or not text[i].isalnum()


def _near_ji(text: str, start: int, end: int) -> bool:
    return (start > 0 and text[start - 1] == "几") or text.startswith("几", end)


def _keep(_m: re.Match[str]) -> str:
    return _m.group(0)


def _percent(m: re.Match[str]) -> str | None:
    number = _number(m["num"])
    if number is None:
        return None
    sign = "-" if m["neg"] else ""
    return sign + number[0] + ("%" if m["base"] == "百" else "‰")


def _value(s: str) -> int:
    """Value of a numeral the surrounding pattern already validated (an hour, minute, second, month or day)."""
    value = _DIGIT_VALUE[s] if s in _DIGIT_VALUE else _parse_cardinal(s)
    assert value is not None, s
    return value


def _clock(text: str) -> str:
    c = _CLOCK_RE.fullmatch(text)
    assert c is not None  # the same pattern matched it inside _TIME_RE
    hour = _value(c["h"])
    if not c["m"]:
        return f"{hour}点" + (c["half"] or c["rest"] or "")
    out = f"{hour}:{_value(c['m'].rstrip('分').lstrip('零')):02d}"
    if c["s"]:
        out += f":{_value(c['s'].rstrip('秒').lstrip('零')):02d}"
    return out


def _time(m: re.Match[str], text: str) -> str | None:
    a, b = m["a"], m["b"]
    start = m.start()
    licensed = bool(b) or text[max(start - 2, 0) : start] in _TIME_PREFIXES
    tail = a[a.index("点") + 1 :]
    if not licensed and tail:
        # 这三点十分重要 ("these three points are very important"): 十分 after a one-character hour is read
        # as "very" unless the phrase ends there.
        licensed = tail != "十分" or a.index("点") > 1 or a.startswith("十") or _is_boundary(text, m.end())
    if not licensed:
        return None
    return _clock(a) + (m["sep"] + _clock(b) if b else "")


def _date(m: re.Match[str]) -> str | None:
    year, month, day, day_word = m["y"], m["m"] or m["m2"], m["d"] or m["d2"], m["dw"] or m["dw2"]
    if year and len(year) == 2 and not month and not re.search("[零〇]", year):
        return None
    out = f"{_digits(year)}年" if year else ""
    if month:
        out += f"{_value(month)}月"
    if day:
        out += f"{_value(day)}{day_word}"
    return out


def _fraction(m: re.Match[str]) -> str | None:
    den, num = _number(m["den"]), _number(m["num"])
    if den is None or num is None or den[0] in ("0", "1"):
        return None
    return ("-" if m["neg"] else "") + f"{num[0]}/{den[0]}"


def _ratio(m: re.Match[str]) -> str | None:
    a, b = _number(m["a"]), _number(m["b"])
    return None if a is None or b is None else f"{a[0]}:{b[0]}"


def _signed(body: str) -> tuple[str, bool] | None:
    number = _number(body.removeprefix("负"))
    if number is None:
        return None
    return ("-" if body.startswith("负") else "") + number[0], number[1]


def _range(m: re.Match[str], text: str) -> str | None:
    a, b = _signed(m["a"]), _signed(m["b"])
    end = m.end()
    if a is None or b is None or _near_ji(text, m.start(), end):
        return None
    if a[1] and b[1] and not (_UNIT_RE.match(text, end) or _DATE_WORD_RE.match(text, end) or _is_boundary(text, end)):
        return None
    return f"{a[0]}{m['sep']}{b[0]}"


def _number_run(m: re.Match[str], text: str) -> str:
    """A maximal run of numerals (with decimals): converted, or returned whole so no part of it is read alone."""
    original, start, end = m.group(0), m.start(), m.end()
    if _near_ji(text, start, end):
        return original
    parsed = _integer(m["int"])
    if parsed is None:
        return original
    digits, kind = parsed
    sign = "-" if m["neg"] else ""
    groups = m["frac"].split("点")[1:]
    if len(groups) > 1:  # 幺九二点幺六八点幺点幺: an address or a version, digits only
        if kind == "cardinal" or m["neg"]:
            return original
        return ".".join([digits, *(_digits(g) for g in groups)])
    if groups:
        return original if kind in ("pair", "digits") else f"{sign}{digits}.{_digits(groups[0])}"
    if kind in ("cardinal", "digits"):
        return sign + digits
    if kind == "pair":
        return digits if _LONE_TWO_OK.match(text, end) else original
    ordinal = start > 0 and text[start - 1] == "第"
    if m["neg"] or ordinal or (_is_boundary(text, start - 1) and _is_boundary(text, end)):
        return sign + digits
    if kind == "single" and _UNIT_RE.match(text, end):
        return digits
    return original


_Rule = Callable[[re.Match[str], str], "str | None"]
# Tried in order at each place a number could begin; the first rule whose pattern matches there and whose
# handler returns a string wins. _NUMBER_RE always answers, so a run of numerals is never split.
_RULES: tuple[tuple[re.Pattern[str], _Rule], ...] = (
    (_FIXED_RE, lambda m, _t: _keep(m)),
    (_WEEKDAY_RE, lambda m, _t: _keep(m)),
    (_PERCENT_RE, lambda m, _t: _percent(m)),
    (_TIME_RE, _time),
    (_DATE_RE, lambda m, _t: _date(m)),
    (_FRACTION_RE, lambda m, _t: _fraction(m)),
    (_RATIO_RE, lambda m, _t: _ratio(m)),
    (_RANGE_RE, _range),
    (_NUMBER_RE, _number_run),
)
_START_CHARS = sorted(set(_NUM + "负星礼周").union(w[0] for w in FIXED_WORDS))
_START_RE = re.compile("[" + re.escape("".join(_START_CHARS)) + "]")


def chinese_itn(text: str) -> str:
    """Rewrite the Chinese numerals of ``text`` as digits (see the module docstring for the conventions).

    Args:
        text: A transcript, in any mix of scripts.

    Returns:
        ``text`` with its spoken numbers, dates, times, percentages, fractions and ranges written with digits;
        everything else unchanged. ``chinese_itn(chinese_itn(x)) == chinese_itn(x)``.
    """
    out: list[str] = []
    pos = 0
    while (start := _START_RE.search(text, pos)) is not None:
        i = start.start()
        out.append(text[pos:i])
        for pattern, handler in _RULES:
            m = pattern.match(text, i)
            if m is not None and m.end() > i:
                replacement = handler(m, text)
                if replacement is not None:
                    out.append(replacement)
                    pos = m.end()
                    break
        else:
            out.append(text[i])
            pos = i + 1
    out.append(text[pos:])
    return "".join(out)
