"""跨省通办 service items and what each needs, from shared/data/kstb_items.csv.

The rows (item name, 个人/法人, typical mode, the certificates and identity checks
it needs, and whether a public source confirmed it) are copied verbatim; what a
row's free text means for the simulation is parsed here, in one place:

- mode: the first of 全程网办 / 多地联办 / 异地代收代办 / 异地办理 (异地受理 counts as
  异地办理) named in ``typical_mode``;
- certificates: the e-certificate types of the world named in the needs text
  (户口簿 -> 居民户口簿, 驾驶证 -> 机动车驾驶证, …); identity verification is always
  a step (the applicant, or a business's legal representative).

Rows marked ``recalled_unverified`` are left out unless a scenario opts in.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.errors import ConfigError

__all__ = ["ITEMS", "MODES", "kstb_summary", "SEED_AT_MOST_ONCE", "SEED_ZERO_TRIP", "Item", "item", "items"]

#: The seed report's figures (2021 evaluation of the national platform).
SEED_ZERO_TRIP = 0.4975
SEED_AT_MOST_ONCE = 0.8977

MODES = ("全程网办", "多地联办", "异地代收代办", "异地办理")

# item name, category, typical mode, needs, source status — verbatim from the CSV
_ROWS: tuple[tuple[str, str, str, str, str], ...] = (
    ('市场主体登记注册', '法人服务', '全程网办', '实名身份认证(法定代表人/经办人)+营业执照(产出)', 'confirmed'),
    ('内资企业及分支机构设立登记', '法人服务', '全程网办', '实名身份认证+营业执照(产出) [inferred]', 'confirmed'),
    ('排污许可', '法人服务', '全程网办 [inferred]', '营业执照+排污许可证(产出) [inferred]', 'confirmed'),
    ('养老保险关系转移接续(企业职工基本养老保险)', '个人服务', '全程网办/多地联办 [inferred]', '身份证核验+参保缴费凭证 [inferred]', 'confirmed'),
    ('城乡居民基本养老保险关系转移接续', '个人服务', '全程网办/多地联办 [inferred]', '身份证核验 [inferred]', 'confirmed'),
    ('失业登记', '个人服务', '全程网办 [inferred]', '身份证核验 [inferred]', 'confirmed'),
    ('机动车驾驶证公证', '个人服务', '全程网办/异地代收代办 [inferred]', '身份证核验+机动车驾驶证(电子) [inferred]', 'confirmed'),
    ('正常退休提取住房公积金', '个人服务', '全程网办 (Guangxi: all 15 centres online)', '身份证核验+退休信息 [inferred]', 'confirmed'),
    ('个人住房公积金缴存贷款等信息查询', '个人服务', '全程网办', '身份认证 [inferred]', 'confirmed'),
    ('出具贷款职工住房公积金缴存使用证明', '个人服务', '全程网办 (one Guangxi centre via 代收代办)', '身份认证 [inferred]', 'confirmed'),
    ('工业产品生产许可证发证', '法人服务', '全程网办 [inferred]', '营业执照+工业产品生产许可证(产出) [inferred]', 'confirmed'),
    ('异地就医结算备案', '个人服务', '全程网办', '身份证/医保电子凭证 [inferred]', 'confirmed'),
    ('门诊费用跨省直接结算', '个人服务', '全程网办 (settlement)', '社保卡/医保电子凭证 [inferred]', 'confirmed'),
    ('不动产抵押登记', '法人服务', '异地代收代办 [inferred]', '不动产权证书+营业执照/身份证 [inferred]', 'confirmed-provincial'),
    ('购房提取住房公积金', '个人服务', '全程网办 [inferred]', '身份证+不动产权证书/购房合同 [inferred]', 'confirmed-provincial'),
    ('社会保障卡申领', '个人服务', '全程网办 (电子社保卡/掌上12333/国家政务服务平台)', '身份证核验', 'confirmed'),
    ('社会保障卡启用', '个人服务', '全程网办', '身份证核验', 'confirmed'),
    ('社会保障卡补换', '个人服务', '全程网办', '身份证核验', 'confirmed'),
    ('社会保障卡临时挂失', '个人服务', '全程网办', '身份证核验', 'confirmed'),
    ('失业保险关系转移', '个人服务', '全程网办', '身份证核验 [inferred]', 'confirmed (plan)'),
    ('社保待遇资格认证(无形认证)', '个人服务', '全程网办 (data comparison)', '身份核验/人脸 [inferred]', 'confirmed (plan)'),
    ('社会保险参保证明查询打印', '个人服务', '全程网办', '身份认证 [inferred]', 'confirmed (plan)'),
    ('工伤职工异地居住申请/异地就医结算', '个人服务', '全程网办 [inferred]', '身份证核验 [inferred]', 'confirmed (plan)'),
    ('无犯罪记录证明开具', '个人服务', '异地代收代办/全程网办 [inferred]', '身份证核验', 'confirmed'),
    ('户籍类证明开具', '个人服务', '异地代收代办 [inferred]', '身份证+户口簿', 'confirmed'),
    ('户口迁移(工作调动)', '个人服务', '多地联办/迁入地一站式 [inferred]', '身份证+户口簿+调动证明', 'confirmed'),
    ('户口迁移(大中专院校录取学生)', '个人服务', '多地联办 [inferred]', '身份证+户口簿+录取通知书', 'confirmed'),
    ('户口迁移(大中专学生毕业)', '个人服务', '多地联办 [inferred]', '身份证+户口簿+毕业证(学历证书)', 'confirmed'),
    ('户口迁移(夫妻投靠)', '个人服务', '多地联办 [inferred]', '身份证+户口簿+结婚证', 'confirmed'),
    ('户口迁移(父母投靠子女)', '个人服务', '多地联办 [inferred]', '身份证+户口簿+亲属关系证明', 'confirmed'),
    ('小型非营运客车二手车交易登记', '个人服务', '多地联办 (档案电子化网上转递)', '身份证+机动车登记证书/行驶证', 'confirmed'),
    ('居民身份证换领补领异地受理', '个人服务', '异地受理', '身份证(人像/指纹比对)', 'confirmed'),
    ('机动车驾驶人考试(全国通考)', '个人服务', '异地办理', '身份证', 'confirmed'),
    ('机动车检验(全国通检)', '个人服务', '异地办理', '行驶证/驾驶证', 'confirmed'),
    ('内地居民出入境证件办理(全国通办)', '个人服务', '异地办理', '身份证', 'confirmed'),
    ('婚姻登记', '个人服务', '多地联办/异地办理', '身份证+户口簿 (both parties)', 'confirmed'),
    ('社会保险参保缴费记录查询', '个人服务', '全程网办', '身份认证', 'confirmed'),
    ('高血压门诊慢特病治疗费用跨省直接结算', '个人服务', '全程网办 (settlement)', '医保电子凭证/社保卡', 'confirmed'),
    ('糖尿病门诊慢特病治疗费用跨省直接结算', '个人服务', '全程网办', '医保电子凭证/社保卡', 'confirmed'),
    ('恶性肿瘤门诊放化疗费用跨省直接结算', '个人服务', '全程网办', '医保电子凭证/社保卡', 'confirmed'),
    ('尿毒症透析费用跨省直接结算', '个人服务', '全程网办', '医保电子凭证/社保卡', 'confirmed'),
    ('器官移植术后抗排异治疗费用跨省直接结算', '个人服务', '全程网办', '医保电子凭证/社保卡', 'confirmed'),
    ('住房公积金单位登记开户', '法人服务', '全程网办', '营业执照', 'recalled_unverified'),
    ('住房公积金单位及个人缴存信息变更', '法人服务', '全程网办', '营业执照/身份证', 'recalled_unverified'),
    ('开具住房公积金个人住房贷款全部还清证明', '个人服务', '全程网办', '身份证', 'recalled_unverified'),
    ('提前还清住房公积金贷款', '个人服务', '全程网办/代收代办', '身份证', 'recalled_unverified'),
    ('基本医疗保险参保信息变更', '个人服务', '全程网办', '身份证', 'recalled_unverified'),
    ('基本医疗保险关系转移接续', '个人服务', '全程网办/多地联办', '身份证', 'recalled_unverified'),
    ('机关事业单位养老保险关系转移接续', '个人服务', '多地联办', '身份证', 'recalled_unverified'),
    ('就业创业证查询核验', '个人服务', '全程网办', '身份证', 'recalled_unverified'),
    ('职业资格证书核验', '个人服务', '全程网办', '职业资格证书(电子)', 'recalled_unverified'),
    ('学历公证', '个人服务', '全程网办/代收代办', '身份证+学历证书', 'recalled_unverified'),
    ('学位公证', '个人服务', '全程网办/代收代办', '身份证+学位证书', 'recalled_unverified'),
    ('教师资格证书补发换发', '个人服务', '全程网办', '身份证+教师资格证', 'recalled_unverified'),
    ('医师执业注册', '个人服务', '全程网办', '身份证+医师资格证书', 'recalled_unverified'),
    ('护士执业注册', '个人服务', '全程网办', '身份证+护士资格', 'recalled_unverified'),
    ('道路运输驾驶员从业资格证补发换发', '个人服务', '全程网办', '身份证+驾驶证', 'recalled_unverified'),
    ('残疾人证迁移', '个人服务', '多地联办', '身份证+户口簿+残疾人证', 'recalled_unverified'),
    ('企业变更登记/注销登记', '法人服务', '全程网办', '营业执照+实名认证', 'recalled_unverified'),
)

#: Words in the needs text -> certificate type name in the world.
_CERTS = (
    ("营业执照", "营业执照"),
    ("户口簿", "居民户口簿"),
    ("结婚证", "结婚证"),
    ("驾驶证", "机动车驾驶证"),
    ("行驶证", "机动车行驶证"),
    ("不动产权证书", "不动产权证书"),
    ("社保卡", "社会保障卡"),
)


@dataclass(frozen=True, slots=True)
class Item:
    """One service item as the simulation uses it."""

    name: str
    business: bool  # 法人服务
    mode: str
    online: bool  # 全程网办 is offered
    certificates: tuple[str, ...]  # certificate type names, in the order fetched
    confirmed: bool


def _mode(text: str) -> str:
    positions = {m: text.find(m) for m in MODES}
    positions["异地办理"] = min((p for p in (text.find("异地办理"), text.find("异地受理")) if p >= 0), default=-1)
    found = sorted((p, m) for m, p in positions.items() if p >= 0)
    return found[0][1] if found else "全程网办"


def _certificates(needs: str, business: bool) -> tuple[str, ...]:
    out = [name for word, name in _CERTS if word in needs and "(产出)" not in needs.split(word, 1)[1][:4]]
    return tuple(dict.fromkeys(out))


ITEMS: tuple[Item, ...] = tuple(
    Item(name=name, business=category.startswith("法人"), mode=_mode(mode), online="全程网办" in mode,
         certificates=_certificates(needs, category.startswith("法人")), confirmed=status.startswith("confirmed"))
    for name, category, mode, needs, status in _ROWS
)
_BY_NAME = {i.name: i for i in ITEMS}


def items(*, include_unverified: bool = False) -> tuple[Item, ...]:
    """The items a scenario draws from: confirmed rows, or all of them."""
    return tuple(i for i in ITEMS if include_unverified or i.confirmed)


def item(name: str) -> Item:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(f"unknown 跨省通办 item {name[:60]!r}: expected one of the {len(ITEMS)} items "
                          "of shared/data/kstb_items.csv") from None


def kstb_summary(tally: dict[str, dict[str, float]]) -> dict[str, object]:
    """Per-item and overall 零跑动率 / 最多跑一次 rates, beside the seed report's."""
    def rates(a: dict[str, float]) -> dict[str, float]:
        n = a["count"] or 1
        return {"count": int(a["count"]), "zero_trip_rate": round(a["zero"] / n, 4),
                "at_most_once_rate": round(a["at_most_once"] / n, 4),
                "mean_delay_days": round(a["delay_days"] / n, 2)}
    total = {k: sum(a.get(k, 0) for a in tally.values()) for k in ("count", "zero", "at_most_once", "delay_days")}
    return {
        "items": {name: rates(a) for name, a in sorted(tally.items())},
        "overall": rates(total) if total["count"] else {"count": 0},
        "seed": {"zero_trip_rate": SEED_ZERO_TRIP, "at_most_once_rate": SEED_AT_MOST_ONCE},
    }
