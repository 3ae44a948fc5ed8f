"""The world generator's reference catalogue: certificate types (from
shared/data/ecert_types.csv), what persons and businesses are issued, and the
name lists. Data only; used by ``nodes.world``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True, slots=True)
class CertType:
    """An e-certificate type. ``synthetic`` codes are made up here, NOT official."""

    code: str
    name_zh: str
    defining_authority: str
    holder_kind: str
    holder_code_type: str
    synthetic: bool
    source: str

    def to_json(self) -> dict[str, Any]:
        """The manifest's ``cert_types`` entry."""
        return {
            "code": self.code, "name": self.name_zh, "defining_authority":
            self.defining_authority, "holder_kind": self.holder_kind, "holder_code_type":
            self.holder_code_type, "synthetic": self.synthetic, "source": self.source,
        }


def _syn(authority: int, seq: int) -> str:
    """A SYNTHETIC 21-character type code: ``SYN`` + 15-digit authority no. + 3 digits.

    Used where data/ecert_types.csv found no public code; never an official code.
    """
    return f"SYN{authority:015d}{seq:03d}"


_PUB = "public code sample (data/ecert_types.csv)"
_NF = "type listed, code not found: synthetic code"
# From data/ecert_types.csv. Omitted: the two 二级造价工程师 rows (authority prefix
# possibly mistyped in the source), the inferred 竣工验收备案 and the Hefei 不动产 sample.
CERT_TYPES: tuple[CertType, ...] = (
    CertType("11100000000013338W032", "建筑施工特种作业人员操作资格证书", "住房和城乡建设部",
             "自然人", "111", False, _PUB),
    CertType("11100000000013338W011", "建筑施工企业安全生产管理人员考核合格证书",
             "住房和城乡建设部", "自然人", "111", False, _PUB),
    CertType("11100000000013338W001", "二级建造师(执业资格/注册)证书", "住房和城乡建设部",
             "自然人", "111", False, _PUB),
    CertType(_syn(1, 1), "居民身份证", "公安部", "自然人", "111", True, _NF),
    CertType(_syn(1, 2), "居民户口簿", "公安部", "自然人", "111", True, _NF),
    CertType(_syn(1, 3), "机动车驾驶证", "公安部", "自然人", "111", True, _NF),
    CertType(_syn(1, 4), "机动车行驶证", "公安部", "自然人/法人", "111/001", True, _NF),
    CertType(_syn(2, 1), "护照", "国家移民管理局", "自然人", "111", True, _NF),
    CertType(_syn(3, 1), "营业执照", "市场监管总局", "法人", "001", True, _NF),
    CertType(_syn(4, 1), "社会保障卡", "人社部", "自然人", "111", True, _NF),
    CertType(_syn(5, 1), "结婚证", "民政部", "自然人", "111", True, _NF),
    CertType(_syn(6, 1), "出生医学证明", "国家卫健委", "自然人", "111", True, _NF),
    CertType(_syn(7, 1), "不动产权证书", "自然资源部", "自然人/法人", "111/001", True, _NF),
    CertType(_syn(8, 1), "危险化学品经营许可证", "应急管理部 [inferred]", "法人", "001", True,
             "type as-found, code not shown: synthetic code"),
)
_TYPE_BY_NAME = {t.name_zh: t for t in CERT_TYPES}


@dataclass(frozen=True, slots=True)
class IssueSpec:
    """Who gets a type and how: rule ``window`` / ``id_card`` / ``birth``."""

    type_name: str
    probability: float
    min_age: int = 0
    validity_years: int = 0  # 0: long-term (valid_to "")
    lookback_years: int = 20
    number: str = "generic"
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rule: str = "window"


PERSON_PLAN: tuple[IssueSpec, ...] = (
    IssueSpec("居民身份证", 1.0, number="holder", rule="id_card"),
    IssueSpec("社会保障卡", 0.80, 16, 10, number="holder",
              extra=(("bank", ("中国工商银行", "中国农业银行", "中国银行", "中国建设银行")),)),
    IssueSpec("结婚证", 0.45, 22, 0, 40, number="marriage"),
    IssueSpec("机动车驾驶证", 0.35, 18, 10, number="holder",
              extra=(("vehicle_class", ("C1", "C1", "C1", "C2", "B2", "A2", "A1")),)),
    IssueSpec("居民户口簿", 0.20, 0, 0, 30, extra=(("household_type", ("家庭户", "集体户")),)),
    IssueSpec("不动产权证书", 0.15, 22, 0, 20, number="estate",
              extra=(("usage", ("住宅", "住宅", "住宅", "商业")),)),
    IssueSpec("护照", 0.10, 16, 10, number="passport"),
    IssueSpec("机动车行驶证", 0.10, 18, 0, 15, number="plate",
              extra=(("vehicle_type", ("小型轿车", "小型普通客车", "轻型厢式货车")),)),
    IssueSpec("出生医学证明", 1.0, rule="birth"),
    IssueSpec("建筑施工特种作业人员操作资格证书", 0.01, 18, 2, extra=(("operation_class", (
        "建筑电工", "建筑架子工", "建筑起重信号司索工", "建筑起重机械司机")),)),
    IssueSpec("建筑施工企业安全生产管理人员考核合格证书", 0.005, 22, 3,
              extra=(("category", ("A", "B", "C")),)),
    IssueSpec("二级建造师(执业资格/注册)证书", 0.005, 25, 3, extra=(("specialty", (
        "建筑工程", "市政公用工程", "机电工程", "公路工程")),)),
)
BUSINESS_PLAN: tuple[IssueSpec, ...] = (
    IssueSpec("营业执照", 1.0, 0, 0, 30, number="holder", extra=(("company_type", (
        "有限责任公司(自然人投资或控股)", "有限责任公司(自然人独资)", "股份有限公司(非上市)")),)),
    IssueSpec("不动产权证书", 0.10, 0, 0, 20, number="estate",
              extra=(("usage", ("商业", "工业", "办公")),)),
    IssueSpec("机动车行驶证", 0.15, 0, 0, 15, number="plate",
              extra=(("vehicle_type", ("小型普通客车", "轻型厢式货车", "重型半挂牵引车")),)),
    IssueSpec("危险化学品经营许可证", 0.02, 0, 3, extra=(("business_mode", ("批发", "零售")),)),
)

# Rough frequencies (per mille) of common surnames; approximate, for realism only.
_SURNAMES = (
    "王71 李70 张66 刘54 陈46 杨31 黄25 赵24 吴21 周21 徐16 孙15 马14 朱13 胡13 郭12 何12 "
    "林11 高11 罗10 郑9 梁9 谢8 宋7 唐7 许7 韩7 冯7 邓7 曹6 彭6 曾6 肖6 田5 董5 袁5 潘5 "
    "于5 蒋5 蔡5 余5 杜5 叶5 程5 苏4 魏4 吕4 丁4 任4 沈4 姚4 卢4 姜4 崔4 钟4 谭3 陆3 汪3 "
    "范3 金3 石3 廖3 贾3 夏3 韦3 付3 方3 白3 邹3 孟3 熊3 秦3 邱3 江3 尹3 薛2 闫2 段2 雷2 "
    "侯2 龙2 史2 陶2 黎2 贺2 顾2 毛2 郝2 龚2 邵2 万2 钱2 严2 覃2 武2 戴2 莫2 孔2 向2 汤2"
).split()
SURNAMES: tuple[str, ...] = tuple(s[0] for s in _SURNAMES)
_SURNAME_CUM: tuple[int, ...] = tuple(
    sum(int(s[1:]) for s in _SURNAMES[: i + 1]) for i in range(len(_SURNAMES)))
MALE_GIVEN = "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁龙林阳建国志文成东海峰亮晨博振"
FEMALE_GIVEN = "芳娜敏静丽艳娟霞秀玲婷燕雪琳晶颖慧欣倩洁佳萍红梅莉兰琴云凤悦怡涵雨诗思梦月晓瑶丹"
TRADE_CHARS = "华信宏达恒瑞鑫盛泰安鼎丰源通祥和兴隆金达嘉联创新远航明德博锦天昊"
INDUSTRIES = ("科技", "贸易", "建筑工程", "物流", "餐饮管理", "食品", "机械制造", "电子",
              "服装", "农业发展", "文化传媒", "医药", "化工", "咨询服务")
