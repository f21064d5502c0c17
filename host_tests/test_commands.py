# The command table shared by MQTT and HTTP. Runs under pytest and in the MicroPython unix port.
from portable import hexb, raises
import commands
from mcu import Mcu
from commands import encode_dp
from tuya import T_RAW, T_VALUE

PORTABLE = True


def online_mcu(recs=()):
    m = Mcu()
    m.link.online = True
    m.link._hb_due = 10 ** 6
    if recs:
        data = b"".join(encode_dp(*r) for r in recs)
        m.meter.dps_in(data, 0, len(data), 0)
    return m


def queued(m):
    return list(m.link._queue)


def test_buttons():
    m = online_mcu()
    commands.run(m, "query_state", "PRESS")
    commands.run(m, "refresh", b"PRESS")
    commands.run(m, "clear_energy", "")
    assert queued(m) == [(0x08, b""), (0x06, hexb("23 04 00 01 00")), (0x06, hexb("0C 01 00 01 01"))]


def test_locate_payloads():
    m = online_mcu()
    for p in ("1", "ON", "on", " true "):
        commands.run(m, "locate", p)
    for p in ("0", "OFF"):
        commands.run(m, "locate", p)
    assert [q[1] for q in queued(m)] == [hexb("65 01 00 01 01")] * 4 + [hexb("65 01 00 01 00")] * 2
    assert "1/0" in str(raises(ValueError, commands.run, m, "locate", "maybe"))


def test_report_interval_only_in_cloud_layout():
    m = online_mcu()
    assert "DP 102" in str(raises(ValueError, commands.run, m, "report_interval", "900"))
    m = online_mcu([(115, T_VALUE, 1)])  # a DP in 112..130: cloud layout
    commands.run(m, "report_interval", "900")
    assert queued(m) == [(0x06, encode_dp(102, T_VALUE, 900))]
    for bad in ("224", "3601", "abc", "9.5", ""):
        raises(ValueError, commands.run, m, "report_interval", bad)


def test_alarm_rewrites_whole_list():
    m = online_mcu([(17, T_RAW, hexb("01 01 00 3C 03 01 00 F5")), (18, T_RAW, hexb("05 01 00 00 07 00 00 00"))])
    commands.run(m, "alarm", '{"name": "overvoltage", "enabled": true, "threshold": 250}')
    commands.run(m, "alarm", '{"name": "reverse_power", "enabled": true}')
    assert queued(m) == [(0x06, encode_dp(17, T_RAW, hexb("01 01 00 3C 03 01 00 FA"))),
                         (0x06, encode_dp(18, T_RAW, hexb("05 01 00 00 07 01 00 00")))]


def test_alarm_bad_payloads():
    m = online_mcu([(17, T_RAW, hexb("01 01 00 3C 03 01 00 F5")), (18, T_RAW, hexb("05 01 00 00"))])
    for bad in ("", "nope", "[1]", '{"enabled": true}', '{"name": "overvoltage"}',
                '{"name": "overvoltage", "threshold": 0}', '{"name": "overvoltage", "threshold": 70000}',
                '{"name": "overvoltage", "threshold": 250.5}', '{"name": "overvoltage", "enabled": 1}',
                '{"name": "phase_loss", "threshold": 5}', '{"name": "unbalance", "enabled": true}',
                '{"name": "bogus", "enabled": true}'):
        raises(ValueError, commands.run, m, "alarm", bad)
    assert queued(m) == []


def test_alarm_before_meter_reported():
    m = online_mcu()
    assert "not reported" in str(raises(ValueError, commands.run, m, "alarm", '{"name": "overcurrent", "enabled": false}'))


def test_restart_sends_nothing_to_the_meter():
    m = online_mcu()
    assert commands.run(m, "restart", "PRESS") == "restarting"  # the firmware restarts itself
    assert queued(m) == []


def test_unknown_command():
    raises(KeyError, commands.run, online_mcu(), "explode", "")


def test_non_utf8_payload():
    raises(ValueError, commands.run, online_mcu(), "locate", b"\xff\xfe")
