from __future__ import annotations

import pytest

from exchange.errors import ConfigError
from exchange.kstb import ITEMS, item, items, kstb_summary
from nodes.apply import trips_for


@pytest.mark.parametrize(("mode", "channel", "ok", "expected"), [
    ("全程网办", "online", True, (0, False)),
    ("全程网办", "online", False, (1, True)),    # falls back to 代收代办
    ("全程网办", "window", True, (1, False)),
    ("全程网办", "window", False, (2, True)),
    ("异地代收代办", "window", True, (1, True)),
    ("异地代收代办", "window", False, (2, True)),
    ("异地办理", "window", True, (1, False)),
    ("多地联办", "window", True, (1, True)),
    ("多地联办", "window", False, (2, True)),
])
def test_trip_accounting(mode: str, channel: str, ok: bool, expected: tuple[int, bool]) -> None:
    assert trips_for(mode, channel, ok) == expected


def test_items_parse_modes_and_certificates_from_the_csv_text() -> None:
    assert len(ITEMS) == 59 and len(items()) == 42 and len(items(include_unverified=True)) == 59
    assert item("户口迁移(夫妻投靠)").mode == "多地联办"
    assert item("户口迁移(夫妻投靠)").certificates == ("居民户口簿", "结婚证")
    assert item("市场主体登记注册").certificates == ()  # 营业执照 is its output, not an input
    assert item("排污许可").certificates == ("营业执照",) and item("排污许可").business
    assert item("居民身份证换领补领异地受理").mode == "异地办理"
    with pytest.raises(ConfigError, match="unknown 跨省通办 item '不存在'"):
        item("不存在")


def test_summary_sets_rates_beside_the_seed_report() -> None:
    s = kstb_summary({"a": {"count": 4, "zero": 2, "at_most_once": 3, "delay_days": 10.0},
                      "b": {"count": 1, "zero": 0, "at_most_once": 1, "delay_days": 0.0}})
    assert s["overall"] == {"count": 5, "zero_trip_rate": 0.4, "at_most_once_rate": 0.8, "mean_delay_days": 2.0}
    assert s["seed"] == {"zero_trip_rate": 0.4975, "at_most_once_rate": 0.8977}
    assert s["items"]["a"]["at_most_once_rate"] == 0.75
