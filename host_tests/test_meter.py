# DP table, decoders and the state store. Runs under pytest and in the MicroPython unix port.
from portable import hexb
import dptable
import units
import commands
import spm02
from meter import Meter
from commands import encode_dp
from tuya import T_RAW, T_VALUE, T_BOOL, T_STRING, T_BITMAP
import report
from reports import feed, raw_phase, v2_report, cloud_report  # noqa: F401 (shared: reports.py)

PORTABLE = True


def test_reference_raw_phase_examples():
    assert spm02.phase_fields(hexb("08 80 00 03 E8 00 27 10"))[:3] == (2176, 1000, 10000)
    assert spm02.phase_fields(hexb("09 0A 00 00 00 00 00 00"))[:3] == (2314, 0, 0)


def test_negative_encodings():
    assert spm02.s24(0xFFFFFF) == -1          # two's complement
    assert spm02.s24(0x1000000 - 1500) == -1500
    assert spm02.s24(0x19999A - 1500) == -1500  # zigbee SPM02 offset
    assert spm02.s24(0x0FFFFF) == 0x0FFFFF
    assert spm02.s24_encoding(0x19999A - 5) == "offset"
    assert spm02.s24_encoding(0xFFFFF0) == "twos"


def test_fmt_is_exact():
    assert spm02.fmt(2317, 1) == "231.7"
    assert spm02.fmt(-5, 2) == "-0.05"
    assert spm02.fmt(100, 2) == "1.00"
    assert spm02.fmt(123456789, 2) == "1234567.89"
    assert spm02.fmt(-1500, 0) == "-1500"


def test_ratio_rounds_without_floats():
    assert spm02.ratio(2, 3, 2) == 67
    assert spm02.ratio(-2, 3, 2) == -67
    assert spm02.ratio(1, 200, 2) == 1  # 0.005 rounds away from zero


def test_reference_alarm_example():
    raw = hexb("01 01 00 3C 03 01 00 F5")
    assert spm02.alarms(17, raw) == {"overcurrent": {"enabled": True, "threshold": 60},
                                     "overvoltage": {"enabled": True, "threshold": 245}}
    assert spm02.alarms(18, hexb("05 01 00 00 07 00 00 00"))["reverse_power"] == {"enabled": False, "threshold": 0}


def test_alarm_records_the_table_does_not_know_are_named_by_id():
    al = spm02.alarms(17, hexb("00 01 00 01 06 00 00 02 07 01 00 03 08 00 00 04"))
    assert sorted(al) == ["alarm_0", "alarm_6", "alarm_8", "high_power"]
    assert sorted(spm02.alarms(18, hexb("07 01 00 00 02 00 00 05"))) == ["reverse_power", "unbalance"]
    assert spm02.alarm_name(19, 1) == "alarm_1"


def test_alarm_rewrite_changes_one_record():
    raw = hexb("01 01 00 3C 03 01 00 F5")
    assert commands.set_alarm(raw, 3, threshold=250) == hexb("01 01 00 3C 03 01 00 FA")
    assert commands.set_alarm(raw, 1, enabled=False) == hexb("01 00 00 3C 03 01 00 F5")


def test_fault_names_per_layout():
    assert spm02.fault_names(0x0C, dptable.V2) == ["overcurrent", "phase_loss"]
    assert spm02.fault_names(0x01, dptable.V2) == ["bit_0"]
    assert spm02.fault_names(1 << 12, dptable.CLOUD) == ["phase_loss"]


def test_packed_table_reads_the_same_every_way():
    # row(), row_for_key() and each() build tuples; field(), walk() and at() read the packed
    # table in place: the same rows, with and without an owner's map shadowing some
    user = ((103, dptable.ANY, "my_current", T_VALUE, 2, "mA", 0), (200, dptable.ANY, "power", T_VALUE, 0, "W", 0))
    for lay in (dptable.V2, dptable.CLOUD, dptable.SPM01):
        for u in ((), user):
            rows = list(dptable.each(lay, u))
            assert [tuple(dptable.at(n, f, u) for f in range(7)) for n in dptable.walk(lay, u)] == rows
            assert rows[:len(u)] == list(u)
            for r in rows:
                assert dptable.row(r[0], lay, u) == r
                assert dptable.row_for_key(r[2], lay, u) == r
                for f in range(7):
                    assert dptable.field(r[0], None, lay, u, f) == r[f]
                    assert dptable.field(-1, r[2], lay, u, f) == r[f]
            assert dptable.row(250, lay, u) is None and dptable.field(250, None, lay, u, 0) is None
            assert dptable.row_for_key("nothing", lay, u) is None and dptable.field(-1, "nothing", lay, u, 5) is None
    assert dptable.row(29, dptable.V2, user) is None  # its key is the owner's DP 200's
    assert dptable.row_for_key("current_a", dptable.V2, user) is None  # its DP 103 is the owner's
    assert len(list(dptable.rows())) == 45
    assert (23, 1 << dptable.V2 | 1 << dptable.CLOUD, "energy_reverse", T_VALUE, 2, "kWh", 0) in dptable.rows()


def test_table_has_one_row_per_dp_per_layout():
    seen = set()
    for r in dptable.rows():
        assert (r[0], r[1]) not in seen
        seen.add((r[0], r[1]))
    for lay in (dptable.V2, dptable.CLOUD, dptable.SPM01):
        keys = [r[2] for r in dptable.each(lay)]
        assert len(keys) == len(set(keys)), dptable.LAYOUTS[lay]
        ids = [r[0] for r in dptable.each(lay)]
        assert len(ids) == len(set(ids)), dptable.LAYOUTS[lay]
    for r in dptable.rows():
        assert units.known_unit(r[5]) is not None


def test_v2_report_values():
    m = Meter()
    assert feed(m, v2_report())
    v = m.values()
    assert m.layout_name() == "v2"
    assert "102, 103, 104" in m.layout_reason
    assert v["voltage_a"] == 231.4 and v["current_a"] == 5.0 and v["power_a"] == 1100
    assert v["power_c"] == -600
    assert v["energy_forward"] == 1234.56 and v["energy_reverse"] == 7.89
    assert v["frequency"] == 50.02 and v["power_factor"] == 0.95
    assert v["power_factor_a"] == 0.95  # 1100 / (231.4 * 5.0) = 0.9507
    assert v["power_factor_c"] == -0.86
    assert m.derived_keys() == ["power_factor_a", "power_factor_b", "power_factor_c"]
    assert v["faults"] == [] and v["faults_raw"] == 0
    assert v["device_id"] == "vow25010001"
    assert v["warnings"] == []
    assert "report_interval" not in v


def test_state_json_is_exact_text():
    m = Meter()
    feed(m, v2_report(va=2317))
    s = m.state_json()
    assert '"voltage_a":231.7,' in s
    assert '"energy_forward":1234.56' in s
    assert '"current_c":3.000' in s


def test_cloud_layout_decided_by_dps():
    m = Meter()
    feed(m, cloud_report())
    assert m.layout_name() == "cloud"
    assert m.layout_reason.startswith("DP 112 seen")
    v = m.values()
    assert v["report_interval"] == 900
    assert v["voltage_b"] == 231.0 and v["current_c"] == 2.5 and v["power_factor_c"] == 0.86
    assert v["energy_forward_b"] == 10.01 and v["current_unbalance"] == 3
    assert m.derived_keys() == []
    assert v["warnings"] == []


def test_cloud_decided_by_raw_phase_without_high_dps():
    m = Meter()
    recs = [r for r in cloud_report() if r[0] < 111]
    feed(m, recs)
    assert m.layout_name() == "cloud"
    assert "raw DP 6" in m.layout_reason


def test_product_key_is_only_a_hint():
    m = Meter()
    m.product("kxdr6su0c55p7bbo")
    assert m.layout_name() == "v2" and "hint" in m.layout_reason
    feed(m, cloud_report())  # the DPs win
    assert m.layout_name() == "cloud"


def test_forced_layout_warns_when_dps_disagree():
    m = Meter("v2")
    feed(m, cloud_report())
    assert m.layout_name() == "v2"
    w = m.warnings()
    assert any("layout forced to v2 but the DPs say cloud" in x for x in w)
    # Read as v2, the cloud DPs give nonsense that physics catches too
    assert len(w) >= 2


def test_wrong_values_are_flagged_with_their_dps():
    m = Meter()
    recs = v2_report()
    recs = [r for r in recs if r[0] != 104] + [(104, T_VALUE, 9000)]  # more than V*I
    feed(m, recs)
    w = m.warnings()
    assert any("phase A" in x and "DP 102, 103, 104" in x for x in w)
    assert any("add up" in x and "29" in x for x in w)


def test_voltage_out_of_range_flagged():
    m = Meter()
    feed(m, v2_report(vb=500))
    assert any("phase B: voltage 50.0 V" in x and "DP 105, 106" in x for x in m.warnings())


def test_power_factor_out_of_range_flagged():
    m = Meter()
    feed(m, v2_report() + [(50, T_VALUE, 250)])
    assert any("power_factor 2.50" in x and "DP 50" in x for x in m.warnings())


def test_unchanged_report_is_not_a_change():
    m = Meter()
    assert feed(m, v2_report(), now=1000)
    seq = m.seq
    assert not feed(m, v2_report(), now=16000)
    assert m.seq == seq
    assert m.dps[102].t == 16000
    assert feed(m, [(102, T_VALUE, 2320)])
    assert m.dps[102].seq == m.seq


def test_raw_phase_only_meter_still_reads():
    m = Meter()
    feed(m, [(6, T_RAW, hexb("08 80 00 03 E8 00 27 10"))])
    v = m.values()
    assert v["voltage_a"] == 217.6 and v["current_a"] == 1.0 and v["power_a"] == 10000
    assert any("phase A" in x for x in v["warnings"])  # the reference's own example exceeds V*I


def test_negative_raw_phase_offset_encoding_seen():
    m = Meter()
    feed(m, [(8, T_RAW, raw_phase(2300, 2000, 0x19999A - 450))])
    assert m.values()["power_c"] == -450
    assert m.neg_encoding == "offset"


def test_every_dp_listed_mapped_or_not():
    m = Meter()
    feed(m, [(102, T_VALUE, 2314), (200, T_VALUE, 42), (17, T_RAW, hexb("01 01 00 3C"))], now=0)
    lst = report.dp_list(m, 5000)
    ids = [d["id"] for d in lst]
    assert ids == [17, 102, 200]
    d200 = lst[2]
    assert d200["key"] is None and d200["value"] == 42 and d200["hex"] == "0000002a" and d200["age_s"] == 5
    assert lst[1]["key"] == "voltage_a" and lst[1]["scaled"] == 231.4 and lst[1]["unit"] == "V"
    assert lst[0]["type"] == "raw" and lst[0]["value"] == "0101003c"
    assert "scaled" not in d200 and "unit" not in d200
    feed(m, [(29, T_VALUE, -40)])
    p = [d for d in report.dp_list(m, 0) if d["id"] == 29][0]
    assert p["scaled"] == -40 and p["unit"] == "W"


def test_dps_json_exact():
    import json
    m = Meter()
    feed(m, [(50, T_VALUE, 94), (102, T_VALUE, 2314)])
    text = report.dps_json(m, 0)
    assert '"scaled": 0.94,' in text and '"scaled": 231.4,' in text
    got = json.loads(text)
    assert [d["id"] for d in got] == [50, 102] and got[0]["scaled"] == 0.94


def test_alarms_merged_from_both_dps():
    m = Meter()
    feed(m, [(17, T_RAW, hexb("01 01 00 3C 03 01 00 F5")), (18, T_RAW, hexb("05 01 00 00"))])
    assert m.values()["alarms"] == {"overcurrent": {"enabled": True, "threshold": 60},
                                    "overvoltage": {"enabled": True, "threshold": 245},
                                    "phase_loss": {"enabled": True, "threshold": 0}}


def test_locating_bool():
    m = Meter()
    feed(m, [(101, T_BOOL, 1)])
    assert m.values()["locating"] is True


def test_broken_record_counted():
    m = Meter()
    data = encode_dp(1, T_VALUE, 5) + hexb("17 02 00 04 00 00")
    m.dps_in(data, 0, len(data), 0)
    assert m.bad_records == 1 and m.values()["energy_forward"] == 0.05
