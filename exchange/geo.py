"""Reference geography compiled into the package: provinces, divisions, routing.

Sources: ``data/provinces.csv`` of the design repository (GB/T 2260 codes, names,
2020 7th-census populations), copied here as constants so the package never reads
files outside itself at run time. Capital coordinates are city-centre
approximations (about 0.01-0.05 degrees), good enough for distance-based latency.

``660000`` (新疆生产建设兵团, XPCC) is a platform convention, not a GB/T 2260 code.
XPCC residents are counted inside Xinjiang's census figure; here they are carved
out (see :data:`XPCC_POPULATION_2020`) so the 32 nodes sum to the 31 census figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exchange.errors import ConfigError, RoutingError

__all__ = [
    "DIVISIONS",
    "DIVISION_NAMES",
    "HUB_CODE",
    "HUB_LOCATION",
    "PROVINCES",
    "PROVINCE_CODES",
    "XINJIANG_CENSUS_2020",
    "XPCC_CODE",
    "XPCC_POPULATION_2020",
    "Province",
    "division_routes",
    "great_circle_km",
    "province",
    "route_division",
]

HUB_CODE = "000000"
"""Node code of the national hub (总枢纽)."""

HUB_LOCATION = (39.90, 116.40)
"""(lat, lon) of the hub: Beijing."""

XPCC_CODE = "660000"
"""Node code of 新疆生产建设兵团 (platform convention, not in GB/T 2260)."""

XINJIANG_CENSUS_2020 = 25_852_345
"""Xinjiang's 7th-census population, which includes XPCC residents."""

XPCC_POPULATION_2020 = 3_250_000
"""Approximate 7th-census XPCC population: NOT an official figure from our data
(the data only says ~3.2-3.3 million, unverified). It is carved out of Xinjiang's
25,852,345 so nobody is counted twice."""


@dataclass(frozen=True, slots=True)
class Province:
    """One provincial node: GB/T 2260 code, names, population, capital location."""

    code: str
    prefix2: str
    name_zh: str
    short_zh: str
    abbr_zh: str
    pinyin: str
    population_2020: int
    capital_zh: str
    capital_lat: float
    capital_lon: float


def _p(
    code: str,
    name: str,
    short: str,
    abbr: str,
    pinyin: str,
    pop: int,
    capital: str,
    lat: float,
    lon: float,
) -> Province:
    return Province(code, code[:2], name, short, abbr, pinyin, pop, capital, lat, lon)


PROVINCES: tuple[Province, ...] = (
    _p("110000", "北京市", "北京", "京", "Beijing", 21_893_095, "北京", 39.90, 116.40),
    _p("120000", "天津市", "天津", "津", "Tianjin", 13_866_009, "天津", 39.13, 117.20),
    _p("130000", "河北省", "河北", "冀", "Hebei", 74_610_235, "石家庄", 38.04, 114.51),
    _p("140000", "山西省", "山西", "晋", "Shanxi", 34_915_616, "太原", 37.87, 112.55),
    _p("150000", "内蒙古自治区", "内蒙古", "蒙", "Nei Mongol (Inner Mongolia)",
       24_049_155, "呼和浩特", 40.84, 111.75),
    _p("210000", "辽宁省", "辽宁", "辽", "Liaoning", 42_591_407, "沈阳", 41.81, 123.43),
    _p("220000", "吉林省", "吉林", "吉", "Jilin", 24_073_453, "长春", 43.82, 125.32),
    _p("230000", "黑龙江省", "黑龙江", "黑", "Heilongjiang", 31_850_088, "哈尔滨",
       45.80, 126.53),
    _p("310000", "上海市", "上海", "沪", "Shanghai", 24_870_895, "上海", 31.23, 121.47),
    _p("320000", "江苏省", "江苏", "苏", "Jiangsu", 84_748_016, "南京", 32.06, 118.80),
    _p("330000", "浙江省", "浙江", "浙", "Zhejiang", 64_567_588, "杭州", 30.27, 120.16),
    _p("340000", "安徽省", "安徽", "皖", "Anhui", 61_027_171, "合肥", 31.82, 117.23),
    _p("350000", "福建省", "福建", "闽", "Fujian", 41_540_086, "福州", 26.07, 119.30),
    _p("360000", "江西省", "江西", "赣", "Jiangxi", 45_188_635, "南昌", 28.68, 115.86),
    _p("370000", "山东省", "山东", "鲁", "Shandong", 101_527_453, "济南", 36.65, 117.12),
    _p("410000", "河南省", "河南", "豫", "Henan", 99_365_519, "郑州", 34.75, 113.63),
    _p("420000", "湖北省", "湖北", "鄂", "Hubei", 57_752_557, "武汉", 30.59, 114.31),
    _p("430000", "湖南省", "湖南", "湘", "Hunan", 66_444_864, "长沙", 28.23, 112.94),
    _p("440000", "广东省", "广东", "粤", "Guangdong", 126_012_510, "广州", 23.13, 113.26),
    _p("450000", "广西壮族自治区", "广西", "桂", "Guangxi", 50_126_804, "南宁",
       22.82, 108.37),
    _p("460000", "海南省", "海南", "琼", "Hainan", 10_081_232, "海口", 20.04, 110.33),
    _p("500000", "重庆市", "重庆", "渝", "Chongqing", 32_054_159, "重庆", 29.56, 106.55),
    _p("510000", "四川省", "四川", "川", "Sichuan", 83_674_866, "成都", 30.57, 104.07),
    _p("520000", "贵州省", "贵州", "黔", "Guizhou", 38_562_148, "贵阳", 26.65, 106.63),
    _p("530000", "云南省", "云南", "滇", "Yunnan", 47_209_277, "昆明", 25.04, 102.71),
    _p("540000", "西藏自治区", "西藏", "藏", "Xizang (Tibet)", 3_648_100, "拉萨",
       29.65, 91.12),
    _p("610000", "陕西省", "陕西", "陕", "Shaanxi", 39_528_999, "西安", 34.34, 108.94),
    _p("620000", "甘肃省", "甘肃", "甘", "Gansu", 25_019_831, "兰州", 36.06, 103.83),
    _p("630000", "青海省", "青海", "青", "Qinghai", 5_923_957, "西宁", 36.62, 101.78),
    _p("640000", "宁夏回族自治区", "宁夏", "宁", "Ningxia", 7_202_654, "银川",
       38.49, 106.23),
    _p("650000", "新疆维吾尔自治区", "新疆", "新", "Xinjiang",
       XINJIANG_CENSUS_2020 - XPCC_POPULATION_2020, "乌鲁木齐", 43.83, 87.62),
    # XPCC has no provincial capital; its headquarters sit in Urumqi (乌鲁木齐),
    # so the seat coordinates are Urumqi's.
    _p("660000", "新疆生产建设兵团", "兵团", "兵", "Xinjiang Shengchan Jianshe Bingtuan (XPCC)",
       XPCC_POPULATION_2020, "乌鲁木齐", 43.83, 87.62),
)

PROVINCE_CODES: tuple[str, ...] = tuple(p.code for p in PROVINCES)
"""The 32 provincial node codes in :data:`PROVINCES` order."""

_BY_CODE = {p.code: p for p in PROVINCES}


def province(code: str) -> Province:
    """The province with node code ``code``; ConfigError for anything else."""
    try:
        return _BY_CODE[code]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown province node code {code!r}: expected one of the 32 codes "
            f"{PROVINCE_CODES[0]} {PROVINCE_CODES[1]} ... {PROVINCE_CODES[-2]} "
            f"{PROVINCE_CODES[-1]} (six digits, e.g. 440000 for 广东省)"
        ) from None


# XPCC-administered county-level cities (自治区直辖县级行政单位 under Xinjiang's 6590),
# GB/T 2260 codes as best recalled; the newest (胡杨河 2019, 新星 2021, 白杨 2023)
# are the least certain.
_XPCC_CITIES: dict[str, str] = {
    "659001": "石河子市",
    "659002": "阿拉尔市",
    "659003": "图木舒克市",
    "659004": "五家渠市",
    "659005": "北屯市",
    "659006": "铁门关市",
    "659007": "双河市",
    "659008": "可克达拉市",
    "659009": "昆玉市",
    "659010": "胡杨河市",
    "659011": "新星市",
    "659012": "白杨市",
}

# A conservative SUBSET of GB/T 2260 division codes per node, used as 户籍 / registration
# divisions for synthetic persons and businesses: the capital (or, for municipalities,
# central districts) and a few large prefecture-level cities.
DIVISION_NAMES: dict[str, str] = {
    "110101": "东城区", "110102": "西城区", "110105": "朝阳区", "110106": "丰台区",
    "110108": "海淀区",
    "120101": "和平区", "120102": "河东区", "120103": "河西区", "120104": "南开区",
    "120105": "河北区",
    "130100": "石家庄市", "130200": "唐山市", "130600": "保定市",
    "140100": "太原市", "140200": "大同市",
    "150100": "呼和浩特市", "150200": "包头市",
    "210100": "沈阳市", "210200": "大连市",
    "220100": "长春市", "220200": "吉林市",
    "230100": "哈尔滨市", "230200": "齐齐哈尔市",
    "310101": "黄浦区", "310104": "徐汇区", "310105": "长宁区", "310106": "静安区",
    "310115": "浦东新区",
    "320100": "南京市", "320200": "无锡市", "320500": "苏州市",
    "330100": "杭州市", "330200": "宁波市", "330300": "温州市",
    "340100": "合肥市", "340200": "芜湖市",
    "350100": "福州市", "350200": "厦门市",
    "360100": "南昌市", "360400": "九江市",
    "370100": "济南市", "370200": "青岛市",
    "410100": "郑州市", "410300": "洛阳市",
    "420100": "武汉市", "420500": "宜昌市",
    "430100": "长沙市", "430200": "株洲市",
    "440100": "广州市", "440300": "深圳市", "440400": "珠海市", "440600": "佛山市",
    "450100": "南宁市", "450200": "柳州市", "450300": "桂林市",
    "460100": "海口市", "460200": "三亚市",
    "500101": "万州区", "500103": "渝中区", "500106": "沙坪坝区", "500112": "渝北区",
    "510100": "成都市", "510700": "绵阳市",
    "520100": "贵阳市", "520300": "遵义市",
    "530100": "昆明市", "530300": "曲靖市",
    "540100": "拉萨市", "540200": "日喀则市",
    "610100": "西安市", "610300": "宝鸡市",
    "620100": "兰州市", "620200": "嘉峪关市",
    "630100": "西宁市", "630200": "海东市",
    "640100": "银川市", "640200": "石嘴山市",
    "650100": "乌鲁木齐市", "650200": "克拉玛依市",
    **_XPCC_CITIES,
}


def _divisions_of(code: str) -> tuple[str, ...]:
    if code == XPCC_CODE:
        return tuple(_XPCC_CITIES)
    return tuple(d for d in DIVISION_NAMES if d[:2] == code[:2] and not d.startswith("6590"))


DIVISIONS: dict[str, tuple[str, ...]] = {p.code: _divisions_of(p.code) for p in PROVINCES}
"""Node code -> a few real six-digit division codes (a subset, see DIVISION_NAMES)."""


def division_routes() -> dict[str, str]:
    """Longest-prefix routing table: division prefix -> serving node code.

    Two-digit provincial prefixes ``11`` … ``65`` route to their province; the
    six-digit XPCC cities ``659001`` … ``659012`` route to ``660000``. ``66`` also
    routes to ``660000``: XPCC's own platform codes (e.g. its issuing authority's
    social credit code) use the ``660000`` convention.
    """
    routes = {p.prefix2: p.code for p in PROVINCES}  # includes "66" -> 660000
    routes.update({d: XPCC_CODE for d in _XPCC_CITIES})
    return routes


_ROUTES = division_routes()
_ROUTE_LENGTHS = sorted({len(k) for k in _ROUTES}, reverse=True)


def route_division(division6: str) -> str:
    """The node serving a six-digit division code (longest prefix wins)."""
    if isinstance(division6, str) and len(division6) == 6 and division6.isascii() \
            and division6.isdigit():
        for n in _ROUTE_LENGTHS:
            node = _ROUTES.get(division6[:n])
            if node is not None:
                return node
    raise RoutingError(
        f"no node serves division {division6!r}: expected a six-digit GB/T 2260 code "
        "whose first two digits name a province (11..65), an XPCC city (6590xx) or XPCC (66)"
    )


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine great-circle distance in km on a sphere of radius 6371.0 km."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))
