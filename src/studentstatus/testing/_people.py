"""Realistic names and guardians for the strategies.

* Surnames come first, drawn from the 100 most common surnames in the order of the
  Ministry of Public Security's household-registration name report (公安部户政管理研究中心
  《二〇二〇年全国姓名报告》, published February 2021), weighted so that a surname of
  rank ``r`` is drawn about ``1 / r`` as often as 王 (a Zipf-shaped approximation of the
  report's shares, where the top five hold about 30 %); a few compound surnames (欧阳,
  司马, 诸葛, 上官) are drawn rarely.
* Given names have one or two characters (about one in seven has one), from pools of
  characters common in names of the sex.
* About one child in twenty gets a Uyghur-style name ``本名·父名`` (own name, middle dot,
  father's name) with ethnicity ``05`` (维吾尔族), the form the national ID system uses.
* Guardians: the father (male, the child's surname) and the mother (female, a surname of
  her own), sometimes a grandparent; the relation always fits the guardian's sex.
"""

from __future__ import annotations

import bisect
import itertools

from hypothesis import strategies as st

from studentstatus.domain.enums import Sex

__all__ = ["MIDDLE_DOT", "SURNAMES", "given_names", "person_names", "surnames"]

MIDDLE_DOT = "·"

#: The 100 most common surnames, most common first (公安部《二〇二〇年全国姓名报告》 order).
SURNAMES: tuple[str, ...] = tuple(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩邓冯曹彭曾肖田董潘袁蔡蒋余于杜叶程魏"
    "苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚"
    "邵万覃武钱戴严莫孔向常"
)
_COMPOUND = ("欧阳", "司马", "诸葛", "上官")
_CUMULATIVE = tuple(itertools.accumulate(round(10_000 / r) for r in range(1, len(SURNAMES) + 1)))

_MALE = "伟强磊军洋勇杰涛明超浩宇轩子辰睿博泽文俊宸皓然一航铭嘉晨逸鑫鹏"
_FEMALE = "芳娜静敏丽艳娟霞婷雪欣怡梓涵诗雨萱佳琪悦可馨彤妍思语晴心瑶若"
_UYGHUR_MALE = ("艾力", "买买提", "阿卜杜拉", "艾合买提", "吐尔逊", "依明", "热合曼", "艾尔肯")
_UYGHUR_FEMALE = ("古丽", "阿依古丽", "热依拉", "迪丽拉", "帕提古丽", "努尔古丽", "米热", "祖丽")


@st.composite
def surnames(draw: st.DrawFn) -> str:
    """A surname: common ones often (王, 李, 张 …), a compound one (欧阳 …) about 1 in 100."""
    if draw(st.integers(0, 99)) == 0:
        return draw(st.sampled_from(_COMPOUND))
    ticket = draw(st.integers(0, _CUMULATIVE[-1] - 1))
    return SURNAMES[bisect.bisect_right(_CUMULATIVE, ticket)]


def given_names(sex: Sex) -> st.SearchStrategy[str]:
    """A one- or two-character given name with characters common for ``sex``."""
    pool = _MALE if sex is Sex.M else _FEMALE
    one = st.sampled_from(pool)
    two = st.tuples(one, one).map("".join)
    return st.integers(0, 6).flatmap(lambda n: one if n == 0 else two)


def _uyghur(sex: Sex) -> st.SearchStrategy[str]:
    return st.sampled_from(_UYGHUR_MALE if sex is Sex.M else _UYGHUR_FEMALE)


def person_names(sex: Sex, *, surname: str | None = None) -> st.SearchStrategy[str]:
    """A Han-style name, surname first (``surname`` if given)."""
    family = st.just(surname) if surname is not None else surnames()
    return st.tuples(family, given_names(sex)).map("".join)


def dotted_names(sex: Sex, *, father: str | None = None) -> st.SearchStrategy[str]:
    """A Uyghur-style name ``本名·父名`` (the father's own name after the dot)."""
    dad = st.just(father) if father is not None else _uyghur(Sex.M)
    return st.tuples(_uyghur(sex), dad).map(MIDDLE_DOT.join)


def own_part(name: str) -> str:
    """The bearer's own part of a dotted name (before the middle dot)."""
    return name.split(MIDDLE_DOT, 1)[0]
