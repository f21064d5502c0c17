# The family beyond the captured v2 meter: Tuya's v01/v02 raw phase format, single-phase
# SPM01s, v2 meters with value DPs only, DP 18's report interval record, the owner's dps
# map and the layout evidence that tells them apart. Runs under pytest and in the
# MicroPython unix port.
from portable import hexb, raises
import commands
import dptable as T
import layout as L
import spm02
from mcu import Mcu
from meter import Meter
from reports import feed, raw_phase, v2_report, cloud_report, v0x, spm01_report, LEAK
from commands import encode_dp
from tuya import T_RAW, T_VALUE, T_BITMAP, T_BOOL
import report

PORTABLE = True

REF_V02 = "02 0F 08 FC 00 0B B8 00 02 A3 00 00 64 00 02 BC 60 02"


# --- raw phase formats ------------------------------------------------------------

def test_reference_v02_example_exact():
    raw = hexb(REF_V02)
    assert spm02.phase_format(raw, 18) == 2
    assert spm02.phase_fields(raw) == (2300, 3000, -675, 100, 700, 96)
    m = Meter()
    feed(m, [(6, T_RAW, raw)])
    v = m.values()
    assert (v["voltage_a"], v["current_a"], v["power_a"]) == (230.0, 3.0, -675)
    assert (v["reactive_power_a"], v["apparent_power_a"], v["power_factor_a"]) == (100, 700, 0.96)
    s = m.state_json()
    assert '"voltage_a":230.0,' in s and '"current_a":3.000,' in s and '"power_factor_a":0.96' in s


def test_v02_sign_bits_one_by_one():
    for bit, j in ((1, 1), (2, 2), (4, 3), (8, 5)):  # I, P, Q, PF
        f = spm02.phase_fields(v0x(2, 2300, 3000, 675, 100, 700, 96, bit))
        want = [2300, 3000, 675, 100, 700, 96]
        want[j] = -want[j]
        assert list(f) == want, bit
    # every sign bit at once: S has none
    assert spm02.phase_fields(v0x(2, 2300, 3000, 675, 100, 700, 96, 0x0F)) == (2300, -3000, -675, -100, 700, -96)


def test_v01_has_no_signs():
    raw = v0x(1, 2314, 0xFFFFFF, 0x19999A - 5, 12, 34, 99)
    assert len(raw) == 17 and spm02.phase_format(raw, 17) == 1
    # no 24-bit negative encodings either: magnitudes are magnitudes
    assert spm02.phase_fields(raw) == (2314, 0xFFFFFF, 0x19999A - 5, 12, 34, 99)
    assert spm02.phase_encoding(raw) is None


def test_eight_byte_format_keeps_its_negative_rule():
    assert spm02.phase_fields(raw_phase(2300, 0x1000000 - 1500, 0x19999A - 450)) == (2300, -1500, -450, None, None, None)
    assert spm02.phase_field(raw_phase(2300, 1, 2), 8, 3) is None  # Q: none in the 8-byte format


def test_unknown_raw_formats_are_no_phase():
    for bad in ("03 0F" + " 00" * 15, "02 0E" + " 00" * 16, "01 0F" + " 00" * 16, "02 0F" + " 00" * 15,
                "00 01 02", ""):
        raw = hexb(bad)
        assert spm02.phase_format(raw, len(raw)) == 0 and spm02.phase_fields(raw) is None, bad
    m = Meter()
    feed(m, [(6, T_RAW, hexb("02 0F" + " 00" * 15))])  # 17 bytes but version 2: unknown
    v = m.values()
    assert "voltage_a" not in v and v["warnings"] == []


def test_meter_power_factor_replaces_the_derived_one():
    m = Meter()
    recs = [(6 + k, T_RAW, v0x(2, 2300 + k, 3000, 675, 100, 700, 96, 2 if k == 2 else 0)) for k in range(3)]
    feed(m, recs + [(29, T_VALUE, 675)])
    v = m.values()
    assert m.derived_keys() == []
    assert v["power_factor_c"] == 0.96 and v["power_c"] == -675
    assert v["reactive_power_b"] == 100 and v["apparent_power_c"] == 700
    assert m.shape == T.V2 | T.X_PHASE * 7 | T.X_SEEN << 1  # DP 29 seen


def test_evidence_reads_the_v02_fields():
    m = Meter()
    recs = [(6, T_RAW, v0x(2, 2300, 3000, 675, 100, 700, 96, 2)), (102, T_VALUE, 2300), (103, T_VALUE, 3000),
            (104, T_VALUE, -675)]
    feed(m, recs)
    assert m.layout_name() == "v2" and m.layout_reason.startswith("DP 102, 103, 104 equal")
    m = Meter()
    feed(m, [(6, T_RAW, v0x(1, 2300, 3000, 675, 100, 700, 96)), (103, T_VALUE, 2300), (104, T_VALUE, 3000),
             (105, T_VALUE, 675)])
    assert m.layout_name() == "cloud" and "raw DP 6" in m.layout_reason


# --- single-phase meters -------------------------------------------------------------

def test_spm01_from_raw_dp6_and_dp2():
    m = Meter()
    feed(m, spm01_report())
    assert m.layout_name() == "spm01"
    assert m.layout_reason == "only raw DP 6 seen for the phases, DP 2 present: single-phase"
    v = m.values()
    assert v["voltage_a"] == 230.1 and v["current_a"] == 4.0 and v["power_a"] == 850
    assert v["energy_forward"] == 123.45 and v["energy_reverse"] == 6.78
    assert v["power_factor_a"] == 0.92  # 850 / (230.1 * 4.0)
    assert m.derived_keys() == ["power_factor_a"]
    for k in v:
        assert not (k[-2:] in ("_b", "_c")), k
    assert v["warnings"] == []


def test_spm01_from_value_dps():
    m = Meter()
    feed(m, spm01_report(raw=False, values=True))
    assert m.layout_name() == "spm01"
    assert m.layout_reason == "only DPs 102..104 seen for the phases, DP 2 present: single-phase"
    v = m.values()
    assert v["voltage_a"] == 230.1 and v["power_a"] == 850 and "voltage_b" not in v
    m = Meter()
    feed(m, spm01_report(values=True))  # both: still one phase, not the v2 layout
    assert m.layout_name() == "spm01" and "raw DP 6 and DPs 102..104" in m.layout_reason


def test_dp2_without_phase_a_decides_nothing():
    m = Meter()
    feed(m, [(1, T_VALUE, 5), (2, T_VALUE, 6)])
    assert m.layout_name() == "v2" and m.layout_reason.startswith("default")


def test_a_phase_b_dp_ends_single_phase():
    m = Meter()
    feed(m, spm01_report())
    assert m.layout_name() == "spm01"
    feed(m, [(7, T_RAW, raw_phase(2290, 1000, 200))])
    assert m.layout_name() == "v2"
    assert m.layout_reason == "DP 7 seen: more than one phase, nothing more yet"
    assert "voltage_b" in m.values()
    # and a product key hint is taken when the DPs say no more than that
    m = Meter()
    m.product("g5n4t0xyz")
    feed(m, spm01_report() + [(7, T_RAW, raw_phase(2290, 1000, 200))])
    assert m.layout_name() == "cloud" and "hint" in m.layout_reason


def test_v2_meter_with_value_dps_only():
    m = Meter()
    feed(m, [r for r in v2_report() if r[0] not in (6, 7, 8)])
    assert m.layout_name() == "v2"
    assert m.layout_reason == "DP 106 seen: only the v2 layout has it"
    v = m.values()
    assert v["voltage_c"] == 233.0 and v["warnings"] == []
    assert m.derived_keys() == ["power_factor_a", "power_factor_b", "power_factor_c"]


def test_cloud_still_decided_by_high_dps():
    m = Meter()
    feed(m, [r for r in cloud_report() if r[0] not in (6, 7, 8)])
    assert m.layout_name() == "cloud" and m.layout_reason.startswith("DP 112 seen")


def test_evidence_dp_sets_come_from_the_table():
    assert tuple(L.ONLY[T.V2]) == (106, 107) and tuple(L.ONLY[T.SPM01]) == (2,)
    assert L.CLOUD_SPAN[0] == 112 and L.CLOUD_SPAN[-1] == 130
    assert tuple(L.PHASE_IDS[T.CLOUD][:3]) == (103, 104, 105) and tuple(L.PHASE_IDS[T.V2][6:]) == (108, 109, 110)
    assert tuple(L.PHASE_IDS[T.SPM01]) == (102, 103, 104)
    m = Meter()
    feed(m, [(115, T_VALUE, 1)])  # not in the table, but in the cloud model's span
    assert m.layout_name() == "cloud"
    assert m.layout_reason == "DP 115 seen: only the cloud layout has DPs 112..130"
    m = Meter()
    feed(m, [(111, T_VALUE, 1)])  # "DPs 112 and up mean cloud"
    assert m.layout_name() == "v2" and m.layout_reason.startswith("default")


def test_forced_spm01_shows_phase_a_and_warns_on_three_phases():
    m = Meter("spm01")
    feed(m, v2_report())
    v = m.values()
    assert m.layout_name() == "spm01" and "voltage_b" not in v and v["voltage_a"] == 231.4
    assert any("layout forced to spm01 but the DPs say v2" in w for w in v["warnings"])
    m = Meter("cloud")
    feed(m, [(6, T_RAW, raw_phase(2300, 1000, 200)), (7, T_RAW, raw_phase(2300, 1000, 200))])
    assert not any("forced" in w for w in m.warnings())  # "more than one phase" fits cloud


def test_evidence_and_detection_allocate_nothing():
    import gc
    if not hasattr(gc, "mem_alloc"):
        return  # CPython has no allocation counter: this runs in the MicroPython ports
    for recs in (spm01_report(values=True), [(6 + k, T_RAW, v0x(2, 2300, 3000, 675, 100, 700, 96, 2))
                                            for k in range(3)] + [(102, T_VALUE, 2300), (103, T_VALUE, 3000),
                                                                  (104, T_VALUE, -675)],
                 [r for r in v2_report() if r[0] not in (6, 7, 8)], cloud_report()):
        m = Meter(user=(LEAK,))
        feed(m, recs + [(113, T_VALUE, 1)])
        why = L.evidence(m.dps, m.user)
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        for _ in range(20):
            L.evidence(m.dps, m.user)
            m._detect()
        b = gc.mem_alloc()
        gc.enable()
        assert b - a == 0, (recs[0], b - a)
        assert why >> 16 in (L.WHY_SINGLE, L.WHY_MATCH, L.WHY_ONLY, L.WHY_HIGH)


# --- DP 18 record 0x08 --------------------------------------------------------------

def test_dp18_record_8_is_the_report_interval():
    m = Meter()
    feed(m, [(18, T_RAW, hexb("05 01 00 00 08 01 00 1E 09 00 00 05"))])
    v = m.values()
    assert v["report_interval"] == 30
    assert v["alarms"] == {"phase_loss": {"enabled": True, "threshold": 0},
                           "alarm_9": {"enabled": False, "threshold": 5}}
    assert m.shape & T.X_REPORT
    assert spm02.report_interval(hexb("08 01 01 2C"), 4) == 300
    assert spm02.report_interval(hexb("07 01 00 1E 08"), 5) is None  # a partial record is none


def test_cloud_dp102_wins_over_dp18_record():
    m = Meter()
    feed(m, cloud_report() + [(18, T_RAW, hexb("08 01 00 1E"))])
    assert m.values()["report_interval"] == 900


def online_mcu(recs=(), layout="auto"):
    m = Mcu(layout)
    m.link.online = True
    m.link._hb_due = 10 ** 6
    if recs:
        data = b"".join(encode_dp(*r) for r in recs)
        m.meter.dps_in(data, 0, len(data), 0)
    return m


def test_report_interval_command_rewrites_dp18():
    m = online_mcu(v2_report() + [(18, T_RAW, hexb("05 01 00 00 08 01 00 1E 09 00 00 05"))])
    assert commands.run(m, "report_interval", " 60 ") == "report interval 60 s"
    assert m.link._queue == [(0x06, encode_dp(18, T_RAW, hexb("05 01 00 00 08 01 00 3C 09 00 00 05")))]
    for bad in ("4", "3601", "abc", "9.5", ""):
        e = raises(ValueError, commands.run, m, "report_interval", bad)
        assert "5..3600" in str(e), bad
    assert len(m.link._queue) == 1


def test_report_interval_command_needs_a_setting():
    m = online_mcu(v2_report() + [(18, T_RAW, hexb("05 01 00 00"))])
    e = raises(ValueError, commands.run, m, "report_interval", "60")
    assert "DP 102" in str(e) and "DP 18" in str(e)
    m = online_mcu(cloud_report() + [(18, T_RAW, hexb("08 01 00 1E"))])
    commands.run(m, "report_interval", "900")  # the cloud layout keeps DP 102
    assert m.link._queue == [(0x06, encode_dp(102, T_VALUE, 900))]
    raises(ValueError, commands.run, m, "report_interval", "60")


# --- the owner's dps map ---------------------------------------------------------------

def test_user_rows_extend_and_are_no_cloud_evidence():
    m = Meter(user=(LEAK,))
    feed(m, v2_report() + [(113, T_VALUE, 25)])
    assert m.layout_name() == "v2"  # DP 113 is the owner's, not the cloud layout's
    assert m.layout_reason == "DP 102, 103, 104 equal the voltage, current and power inside raw DP 6" \
                              " (with 1 DP from the config's dps map)"
    v = m.values()
    assert v["leakage_current"] == 0.025
    assert m.unit_of("leakage_current") == "A"
    d = [x for x in report.dp_list(m, 0) if x["id"] == 113][0]
    assert d["key"] == "leakage_current" and d["scaled"] == 0.025 and d["unit"] == "A"


def test_user_rows_override_by_dp_and_by_key():
    user = ((111, T.ANY, "power", T_VALUE, 0, "W", 0), (32, T.ANY, "frequency", T_VALUE, 1, "Hz", 0))
    m = Meter(user=user)
    feed(m, v2_report() + [(111, T_VALUE, 700)])
    v = m.values()
    assert v["power"] == 700  # DP 111, not the table's DP 29
    assert v["frequency"] == 500.2  # the owner's decimals for DP 32
    assert [r for r in m.readings() if r[0] == "power"][0][3] == (111,)
    assert m.layout_reason.endswith("(with 2 DPs from the config's dps map)")
    # plausibility checks the owner's total power against the phases
    assert v["warnings"] == ["phase powers add up to 750 W but total power is 700 W (DP 104, 107, 110, 111)"]


def test_user_bool_and_string_rows():
    user = ((140, T.ANY, "relay", T_BOOL, 0, "", 0), (141, T.ANY, "note", 3, 0, "", 0))
    m = Meter(user=user)
    feed(m, [(140, T_BOOL, 1), (141, 3, "hello")])
    v = m.values()
    assert v["relay"] is True and v["note"] == "hello"
