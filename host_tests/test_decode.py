"""tools/decode.py (`make decode`): TuyaMCU frames found in any text, decoded through
the firmware's own lib/ code. CPython only."""
import json
import os
import random
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import decode
import tuya
from commands import encode_dp as dp
from tuya import encode, T_RAW, T_BOOL, T_VALUE, T_STRING, T_BITMAP

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(os.path.dirname(HERE), "tools", "decode.py")

# ------------------------------------------------------------------ sample meter data

PHASE_A = bytes.fromhex("090A000000000000")  # 231.4 V, 0 A, 0 W (the reference's example)
PHASE_B = bytes.fromhex("09100004D20000FA")  # 232.0 V, 1.234 A, 250 W
PHASE_C = bytes.fromhex("08F70007D0000190")  # 229.5 V, 2.000 A, 400 W
ALARMS_1 = bytes.fromhex("0101003C030100F5")  # overcurrent on at 60, overvoltage on at 245
ALARMS_2 = bytes.fromhex("0501000007000000")  # phase_loss on, reverse_power off
PRODUCT_V2 = b'{"p":"kxdr6su0c55p7bbo","v":"1.0.0","m":0}'

V2_REPORTS = [  # how a v2 meter sends its DPs: a few reports of a few DPs each
    [dp(1, T_VALUE, 123456), dp(23, T_VALUE, 4321), dp(29, T_VALUE, 650),
     dp(32, T_VALUE, 5001), dp(50, T_VALUE, 87)],
    [dp(6, T_RAW, PHASE_A), dp(7, T_RAW, PHASE_B), dp(8, T_RAW, PHASE_C)],
    [dp(9, T_BITMAP, 0), dp(17, T_RAW, ALARMS_1), dp(18, T_RAW, ALARMS_2),
     dp(19, T_STRING, "vow25010001"), dp(101, T_BOOL, 0)],
    [dp(102, T_VALUE, 2314), dp(103, T_VALUE, 0), dp(104, T_VALUE, 0),
     dp(105, T_VALUE, 2320), dp(106, T_VALUE, 1234), dp(107, T_VALUE, 250),
     dp(108, T_VALUE, 2295), dp(109, T_VALUE, 2000), dp(110, T_VALUE, 400)],
]

V2_VALUES = {
    "energy_forward": 1234.56, "energy_reverse": 43.21, "power": 650, "frequency": 50.01,
    "power_factor": 0.87, "faults": [], "faults_raw": 0, "device_id": "vow25010001",
    "locating": False, "voltage_a": 231.4, "current_a": 0.0, "power_a": 0,
    "voltage_b": 232.0, "current_b": 1.234, "power_b": 250,
    "voltage_c": 229.5, "current_c": 2.0, "power_c": 400,
    "power_factor_b": 0.87, "power_factor_c": 0.87,  # derived: P / (V * I); none for A (0 A)
    "alarms": {"overcurrent": {"enabled": True, "threshold": 60},
               "overvoltage": {"enabled": True, "threshold": 245},
               "phase_loss": {"enabled": True, "threshold": 0},
               "reverse_power": {"enabled": False, "threshold": 0}},
    "warnings": [],
}


def mcu(cmd, data=b""):
    return encode(cmd, data, 3)


def spaced(frame, sep=" ", upper=True):
    return sep.join(("%02X" if upper else "%02x") % b for b in frame)


def v2_frames():
    """The conversation after power-up, in order: (frame, from_mcu)."""
    out = [(encode(0), False), (mcu(0, b"\x00"), True), (encode(1), False),
           (mcu(1, PRODUCT_V2), True), (encode(2), False), (mcu(2), True),
           (encode(3, b"\x04"), False), (mcu(3), True), (encode(8), False)]
    out += [(mcu(7, b"".join(r)), True) for r in V2_REPORTS]
    out += [(encode(0), False), (mcu(0, b"\x01"), True)]
    return out


def openbeken_log(frames):
    """An OpenBeken serial log: TuyaMCU lines among the rest of its chatter."""
    lines = ["Info:MAIN:Main_Init_Before_Delay done",
             "Info:MAIN:Time 1, idle 0/s, free 89232, MQTT 0(0), bWifi 0, "
             "secondsWithNoPing -1, socks 2/38"]
    t = 12.345
    for k, (f, from_mcu) in enumerate(frames):
        t += 0.25
        stamp = "[00:00:%06.3f] " % t
        if from_mcu:
            lines.append(stamp + "Info:TuyaMCU:ProcessIncoming[ver=3]: processing command %d (%s) "
                         "with %d bytes" % (f[3], decode.CMD_NAMES.get(f[3], "?"), len(f)))
            lines.append(stamp + "Debug:TuyaMCU:Received: " + spaced(f))
            if f[3] == 7:
                for dpid, typ, s, n in tuya.dp_records(f, 6, len(f) - 1):
                    lines.append("Info:TuyaMCU:ParseState: processing dpId %d, dataType %d-%s "
                                 "and %d data bytes" % (dpid, typ, tuya.TYPE_NAMES[typ].upper(), n))
        else:
            lines.append(stamp + "Info:TuyaMCU:TuyaMCU sends: " + spaced(f))
        if k % 4 == 3:
            lines.append("Info:MAIN:Time %d, idle 186245/s, free 76120, MQTT 1(2), bWifi 1, "
                         "secondsWithNoPing -1, socks 3/38" % (k + 2))
    return "\n".join(lines) + "\n"


def tasmota_log(frames):
    lines = ["00:00:00.001 HDW: ESP8266EX", "00:00:00.050 CFG: Loaded from flash at FB, Count 59"]
    for k, (f, from_mcu) in enumerate(frames):
        stamp = "12:34:%02d.%03d " % (k, 7 * k)
        if from_mcu:
            lines.append(stamp + 'TYA: RX Packet: "%s"' % f.hex())
            if f[3] == 7:
                lines.append(stamp + "TYA: FnId=0 is set for dpId=%d" % f[6])
        else:
            lines.append(stamp + 'TYA: Send "%s"' % f.hex())
    lines.append("12:35:00.000 MQT: tele/tasmota_ABC123/STATE = {\"Time\":\"2024-05-01T12:35:00\","
                 "\"Uptime\":\"0T00:01:05\",\"Heap\":25,\"LoadAvg\":19}")
    return "\n".join(lines) + "\n"


def run_tool(text, *args):
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    p = subprocess.run([sys.executable, TOOL] + list(args), input=data, capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def frames_of(cap):
    return [f.raw for f in cap.frames]


# ------------------------------------------------------------------ OpenBeken, v2

def test_openbeken_v2_log_frames_and_state():
    conv = v2_frames()
    cap = decode.scan(openbeken_log(conv))
    assert frames_of(cap) == [f for f, _ in conv]
    assert [f.from_mcu for f in cap.frames] == [m for _, m in conv]
    # nothing but the frames was fed: timestamps, "18 bytes", "dpId 6" are not bytes
    assert cap.errors() == {"noise": 0, "checksum": 0, "too_long": 0, "truncated": 0,
                            "bad_records": 0}
    m = cap.meter
    assert m.layout_name() == "v2"
    assert "raw DP" in m.layout_reason
    assert m.values() == V2_VALUES
    assert cap.mcu.link.product_key == "kxdr6su0c55p7bbo"
    assert not cap.lib_errors


def test_openbeken_v2_human_output():
    out, err = run_tool(openbeken_log(v2_frames()))
    assert err == ""
    lines = out.splitlines()
    frames = [ln for ln in lines if ln.startswith("L")]
    assert len(frames) == len(v2_frames())  # one line per frame
    assert "module→MCU heartbeat" in frames[0]
    assert "MCU→module heartbeat: 00 (first answer since the MCU booted)" in frames[1]
    assert 'product_info: {"p":"kxdr6su0c55p7bbo"' in frames[3]
    assert "module→MCU wifi_state: 04 (connected to the cloud)" in frames[6]
    assert "module→MCU query_state" in frames[8]
    rep = "\n".join(frames)
    for piece in ("DP 1 value energy_forward=123456 (1234.56 kWh)",
                  "DP 6 raw phase_a=090a000000000000 (231.4 V 0.000 A 0 W)",
                  "DP 7 raw phase_b=09100004d20000fa (232.0 V 1.234 A 250 W)",
                  "DP 8 raw phase_c=08f70007d0000190 (229.5 V 2.000 A 400 W)",
                  "DP 9 bitmap faults=0x00 (none)",
                  "DP 17 raw alarms_1=0101003c030100f5 (overcurrent on 60, overvoltage on 245)",
                  "DP 18 raw alarms_2=0501000007000000 (phase_loss on 0, reverse_power off 0)",
                  'DP 19 string device_id="vow25010001"',
                  "DP 29 value power=650 (650 W)", "DP 32 value frequency=5001 (50.01 Hz)",
                  "DP 50 value power_factor=87 (0.87)", "DP 101 bool locating=0 (off)",
                  "DP 102 value voltage_a=2314 (231.4 V)", "DP 106 value current_b=1234 (1.234 A)",
                  "DP 110 value power_c=400 (400 W)"):
        assert piece in rep, piece
    assert ("layout: v2 (DP 102, 103, 104 equal the voltage, current and power inside raw DP 6)"
            in lines)
    assert "product: kxdr6su0c55p7bbo (MCU version 1.0.0)" in lines
    assert any(ln.split() == ["voltage_a", "231.4", "V", "DP", "102"] for ln in lines)
    assert any(ln.split()[:3] == ["current_c", "2.000", "A"] for ln in lines)
    assert "warnings: none" in lines
    assert not any(ln.startswith("errors:") for ln in lines)


def test_json_mode_subprocess():
    conv = v2_frames()
    out, err = run_tool(openbeken_log(conv), "--json")
    lines = out.splitlines()
    assert len(lines) == len(conv) + 1
    objs = [json.loads(ln) for ln in lines]
    for o, (f, from_mcu) in zip(objs, conv):
        assert o["hex"] == f.hex()
        assert o["dir"] == ("mcu" if from_mcu else "module")
        assert o["ver"] == (3 if from_mcu else 0)
        assert o["cmd"] == f[3]
        assert o["name"] == decode.CMD_NAMES[f[3]]
    rep = objs[9]  # the first DP report
    assert rep["name"] == "dp_report" and rep["dir"] == "mcu"
    assert rep["dps"][0] == {"id": 1, "type": "value", "hex": "0001e240", "value": 123456,
                             "key": "energy_forward", "scaled": 1234.56, "unit": "kWh"}
    ph = objs[10]["dps"][0]
    assert ph["key"] == "phase_a" and ph["value"] == "090a000000000000"
    assert ph["phase"] == {"voltage": 231.4, "current": 0.0, "power": 0}
    assert objs[3]["product"] == {"p": "kxdr6su0c55p7bbo", "v": "1.0.0", "m": 0}
    last = objs[-1]
    assert last["values"] == V2_VALUES
    assert last["layout"] == "v2"
    assert "raw DP 6" in last["layout_reason"]
    assert last["frames"] == len(conv)
    assert not any(last["errors"].values())
    # numbers are written exactly to the DP's scale
    assert '"voltage_a": 231.4,' in lines[-1] and '"frequency": 50.01,' in lines[-1]
    assert '"current_b": 1.234,' in lines[-1]


def test_reference_phase_example_and_negative_power():
    ref = bytes.fromhex("08800003E8002710")  # 217.6 V, 1.000 A, 10000 W
    neg = bytes((0x09, 0x0A, 0x00, 0x03, 0xE8)) + (0x19999A - 230).to_bytes(3, "big")
    text = "RX: %s\nRX: %s\n" % (spaced(mcu(7, dp(6, T_RAW, ref))),
                                 spaced(mcu(7, dp(7, T_RAW, neg))))
    cap = decode.scan(text)
    e, line = decode.describe(cap.frames[0], cap.meter.layout)
    assert "phase_a=08800003e8002710 (217.6 V 1.000 A 10000 W)" in line
    assert e["dps"][0]["phase"] == {"voltage": 217.6, "current": 1.0, "power": 10000}
    e, line = decode.describe(cap.frames[1], cap.meter.layout)
    assert "(231.4 V 1.000 A -230 W, negative as offset)" in line
    assert e["dps"][0]["neg_encoding"] == "offset"
    assert cap.meter.neg_encoding == "offset"
    assert cap.meter.values()["power_b"] == -230


# ------------------------------------------------------------------ other log formats

def test_tasmota_log():
    conv = v2_frames()
    cap = decode.scan(tasmota_log(conv))
    assert frames_of(cap) == [f for f, _ in conv]
    assert not any(cap.errors().values())
    assert cap.meter.values() == V2_VALUES
    assert cap.meter.layout_name() == "v2"


def test_tasmota_json_result_and_single_packet():
    # (the brief's example ends in 1c: that checksum is wrong, the sum is 0x1b)
    f = bytes.fromhex("55aa0307000801020004000000031b")
    text = ('12:00:01.000 TYA: RX Packet: "55aa0307000801020004000000031b"\n'
            '12:00:01.010 MQT: tele/t/RESULT = {"TuyaReceived":{'
            '"Data":"55AA0307000801020004000000031B",'
            '"Cmnd":7,"CmndData":"0102000400000003","DpType2Id1":3,"1":{"DpId":1,"DpIdType":2,'
            '"DpIdData":"00000003"}}}\n')
    cap = decode.scan(text)
    assert frames_of(cap) == [f, f]
    bad = decode.scan(text.replace("31b", "31c").replace("31B", "31C"))
    assert frames_of(bad) == [] and bad.errors()["checksum"] == 2
    assert cap.meter.values()["energy_forward"] == 0.03
    assert not any(cap.errors().values())


@pytest.mark.parametrize("sep", ["\u00a0", "\u2009", "\u202f", "\t", " \u00a0", ":", "-", ".",
                                 ", ", ",", "\u2013"])
def test_web_copied_separators(sep):
    conv = v2_frames()
    text = "<p>Frames from the meter</p>\n" + "\n".join(
        "Received:\u00a0" + spaced(f, sep, upper=k % 2 == 0) for k, (f, _) in enumerate(conv))
    cap = decode.scan(text)
    assert frames_of(cap) == [f for f, _ in conv]
    assert cap.meter.values()["voltage_a"] == 231.4
    assert not any(cap.errors().values())


def test_latin1_nbsp_and_crlf():
    f = v2_frames()[10][0]
    data = b"Received:\xa0" + spaced(f, "\xa0").encode("latin-1") + b"\r\n"
    out, err = run_tool(data + data, "--json")
    assert [json.loads(ln).get("hex") for ln in out.splitlines()[:2]] == [f.hex()] * 2


def test_0x_style_c_array_and_escapes():
    conv = v2_frames()
    f1, f2, f3 = conv[9][0], conv[10][0], conv[12][0]
    arr = ",\n    ".join(", ".join("0x%02X" % b for b in f1[i:i + 8]) for i in range(0, len(f1), 8))
    text = ("const uint8_t report[] = {\n    %s\n};\n" % arr
            + "send(%s);\n" % ",".join("0x%02x" % b for b in f2)
            + 'b"%s"\n' % "".join("\\x%02x" % b for b in f3))
    cap = decode.scan(text)
    assert frames_of(cap) == [f1, f2, f3]
    assert not any(cap.errors().values())


def test_hex_split_across_lines_and_dumps():
    conv = v2_frames()
    stream = b"".join(f for f, _ in conv)
    frames = [f for f, _ in conv]
    # a raw capture, 16 bytes a line: frames run over line ends and share lines
    dump = "\n".join(spaced(stream[i:i + 16]) for i in range(0, len(stream), 16))
    assert frames_of(decode.scan(dump)) == frames
    # hexdump -C and xxd: offsets and the ASCII column are not bytes
    hd = []
    for i in range(0, len(stream), 16):
        c = stream[i:i + 16]
        hx = spaced(c[:8], upper=False) + "  " + spaced(c[8:], upper=False)
        asc = "".join(chr(b) if 32 <= b < 127 else "." for b in c)
        hd.append("%08x  %-49s |%s|" % (i, hx, asc))
    cap = decode.scan("\n".join(hd))
    assert frames_of(cap) == frames and cap.dec.noise == 0
    xxd = []
    for i in range(0, len(stream), 16):
        c = stream[i:i + 16].hex()
        xxd.append("%08x: %s" % (i, " ".join(c[j:j + 4] for j in range(0, len(c), 4))))
    cap = decode.scan("\n".join(xxd))
    assert frames_of(cap) == frames and cap.dec.noise == 0
    # one long unspaced hex string wrapped at 61 characters (odd: bytes split over lines)
    h = stream.hex()
    wrapped = "\n".join(h[i:i + 61] for i in range(0, len(h), 61))
    assert frames_of(decode.scan(wrapped)) == frames
    # 55 at the end of one line, AA at the start of the next
    f = conv[9][0]
    assert frames_of(decode.scan("TX 00 11\nxx 55\nAA " + spaced(f[2:]))) == [f]


def test_timestamps_are_not_bytes():
    f = conv_report = v2_frames()[10][0]
    body = spaced(f)
    head, rest = body[:3 * 10], body[3 * 10:]
    text = ("12:34:56 " + body + "\n"
            "[00:00:12.345] " + body + "\n"
            "12:34:56.789 RX " + head + "\n"   # a frame split over two log lines,
            "12:34:57.001 RX " + rest + "\n"   # each with its own time stamp
            "2024-05-01 12:34:58 " + body + "\n"
            "12:34 55 AA 03 07 " + body[12:] + "\n")
    cap = decode.scan(text)
    assert frames_of(cap) == [conv_report] * 5
    assert cap.errors() == {"noise": 0, "checksum": 0, "too_long": 0, "truncated": 0,
                            "bad_records": 0}


# ------------------------------------------------------------------ layouts

def cloud_frames():
    rep = [dp(1, T_VALUE, 5000), dp(6, T_RAW, PHASE_B), dp(29, T_VALUE, 250),
           dp(102, T_VALUE, 300), dp(103, T_VALUE, 2320), dp(104, T_VALUE, 1234),
           dp(105, T_VALUE, 250), dp(108, T_VALUE, 87), dp(109, T_VALUE, 1200),
           dp(110, T_VALUE, 0)]
    rep2 = [dp(112, T_VALUE, 2310), dp(113, T_VALUE, 0), dp(114, T_VALUE, 0),
            dp(121, T_VALUE, 2290), dp(122, T_VALUE, 0), dp(123, T_VALUE, 0),
            dp(130, T_VALUE, 3)]
    return [(mcu(7, b"".join(rep2)), True), (mcu(7, b"".join(rep)), True)]


def test_cloud_layout_log():
    out, _ = run_tool(openbeken_log(cloud_frames()), "--json")
    last = json.loads(out.splitlines()[-1])
    assert last["layout"] == "cloud"
    assert "DP 112" in last["layout_reason"]
    v = last["values"]
    assert v["report_interval"] == 300
    assert v["voltage_a"] == 232.0 and v["current_a"] == 1.234 and v["power_a"] == 250
    assert v["power_factor_a"] == 0.87 and v["energy_forward_a"] == 12.0
    assert v["voltage_b"] == 231.0 and v["voltage_c"] == 229.0 and v["current_unbalance"] == 3
    # the frames are printed with the layout finally chosen, even the first one
    objs = [json.loads(ln) for ln in out.splitlines()[:-1]]
    keys = {d["id"]: d["key"] for o in objs for d in o["dps"]}
    assert keys[102] == "report_interval" and keys[103] == "voltage_a" and keys[112] == "voltage_b"
    out, _ = run_tool(openbeken_log(cloud_frames()))
    assert "DP 102 value report_interval=300 (300 s)" in out
    assert "layout: cloud (DP 112 seen" in out


def test_forced_layout_and_product_hint():
    text = openbeken_log(cloud_frames())
    last = json.loads(run_tool(text, "--json", "--layout", "v2")[0].splitlines()[-1])
    assert last["layout"] == "v2" and last["layout_reason"] == "forced by config"
    assert any("layout forced to v2" in w for w in last["values"]["warnings"])
    # only a product key: the layout follows the hint
    cap = decode.scan(spaced(mcu(1, b'{"p":"g5n4t0abc","v":"2.0","m":0}')))
    assert cap.meter.layout_name() == "cloud" and "product key" in cap.meter.layout_reason


# ------------------------------------------------------------------ the family

V02_A = bytes.fromhex("020F08FC000BB80002A30000640002BC6002")  # the reference's v02 example


def spm01_frames():
    """A single-phase SPM01 that reports only when asked: product info, then one report."""
    return [(mcu(1, b'{"p":"abcdefgh12345678","v":"1.0.0","m":0}'), True), (encode(8), False),
            (mcu(7, dp(1, T_VALUE, 12345) + dp(2, T_VALUE, 678) + dp(6, T_RAW, PHASE_B)
                 + dp(9, T_BITMAP, 0) + dp(18, T_RAW, bytes.fromhex("08 01 00 1E 09 00 00 05"))), True)]


def test_single_phase_log():
    out, _ = run_tool(tasmota_log(spm01_frames()), "--json")
    last = json.loads(out.splitlines()[-1])
    assert last["layout"] == "spm01"
    assert last["layout_reason"] == "only raw DP 6 seen for the phases, DP 2 present: single-phase"
    v = last["values"]
    assert v["energy_reverse"] == 6.78 and v["voltage_a"] == 232.0 and v["report_interval"] == 30
    assert v["alarms"] == {"alarm_9": {"enabled": False, "threshold": 5}}
    assert not [k for k in v if k.endswith(("_b", "_c"))]
    out, _ = run_tool(tasmota_log(spm01_frames()))
    assert "DP 2 value energy_reverse=678 (6.78 kWh)" in out
    assert "DP 18 raw alarms_2=080100" in out and "alarm_9 off 5; report interval 30 s)" in out
    assert "layout: spm01 (only raw DP 6 seen for the phases, DP 2 present: single-phase)" in out
    assert "  report_interval  30 s             DP 18\n" in out


def test_v02_raw_phase_format():
    cap = decode.scan(spaced(mcu(7, dp(6, T_RAW, V02_A))))
    e, line = decode.describe(cap.frames[0], cap.meter.layout)
    assert "phase_a=020f08fc000bb80002a30000640002bc6002 (230.0 V 3.000 A -675 W 100 var 700 VA PF 0.96, " \
           "Tuya v02 format)" in line
    assert e["dps"][0]["phase"] == {"voltage": 230.0, "current": 3.0, "power": -675, "reactive_power": 100,
                                    "apparent_power": 700, "power_factor": 0.96}
    assert e["dps"][0]["format"] == "v02"
    v = cap.values()
    assert v["reactive_power_a"] == 100 and v["apparent_power_a"] == 700 and v["power_factor_a"] == 0.96


def test_value_dps_only_v2_log():
    frames = [(mcu(7, b"".join(r)), True) for r in V2_REPORTS if r[0][:1] != b"\x06"]
    last = json.loads(run_tool(openbeken_log(frames), "--json")[0].splitlines()[-1])
    assert last["layout"] == "v2" and last["layout_reason"] == "DP 106 seen: only the v2 layout has it"


def test_config_dps_map(tmp_path):
    cfgf = tmp_path / "config.json"
    cfgf.write_text(json.dumps({"dps": {"121": {"key": "leakage_current", "type": "value", "decimals": 3,
                                                "unit": "A"}, "0": {"key": "bad"}}}))
    frames = [(mcu(7, b"".join(r)), True) for r in V2_REPORTS] + [(mcu(7, dp(121, T_VALUE, 25)), True)]
    out, err = run_tool(openbeken_log(frames), "--config", str(cfgf))
    assert "DP 121 value leakage_current=25 (0.025 A)" in out
    assert "(with 1 DP from the config's dps map)" in out and "layout: v2" in out
    assert "config: dps.0:" in err
    out, _ = run_tool(openbeken_log(frames))  # without the map DP 121 says cloud
    assert "layout: cloud (DP 121 seen: only the cloud layout has DPs 112..130)" in out


# ------------------------------------------------------------------ broken input

def test_bad_checksum_counted_next_frame_decoded():
    conv = v2_frames()
    good1, good2 = conv[10][0], conv[11][0]
    bad = bytearray(conv[9][0])
    bad[-1] ^= 0xFF
    text = "Received: %s\nReceived: %s\nReceived: %s\n" % (spaced(bad), spaced(good1),
                                                         spaced(good2))
    cap = decode.scan(text)
    assert frames_of(cap) == [good1, good2]
    assert cap.errors()["checksum"] == 1
    out, _ = run_tool(text)
    assert "checksum 1" in [ln for ln in out.splitlines() if ln.startswith("errors:")][0]
    # a frame cut short in the log, then good ones: the good ones still come out
    text = "Received: %s\nReceived: %s\nReceived: %s\n" % (spaced(good1[:20]), spaced(good1),
                                                         spaced(good2))
    cap = decode.scan(text)
    assert frames_of(cap) == [good1, good2]
    assert cap.errors()["checksum"] + cap.errors()["truncated"] >= 1
    # a frame cut short at the very end: counted as truncated
    cap = decode.scan("Received: %s\nReceived: %s\n" % (spaced(good1), spaced(good2[:-3])))
    assert frames_of(cap) == [good1] and cap.errors()["truncated"] == 1


def test_payload_holding_55aa_and_long_frames():
    f = mcu(7, dp(6, T_RAW, bytes.fromhex("55AA55AA0000AA55")) + dp(19, T_STRING, "x" * 600))
    cap = decode.scan("Received: " + spaced(f))
    assert frames_of(cap) == [f]


def test_nothing_found():
    for text in ("", "hello world\n12:34:56 nothing here 55 66\n", "\x00\x01\x02"):
        out, err = run_tool(text)
        assert out == "" and "no TuyaMCU frames found" in err
    out, err = run_tool("nothing", "--json")
    assert json.loads(out)["frames"] == 0 and json.loads(out)["values"] == {}
    # only a broken frame: says so
    bad = bytearray(v2_frames()[9][0])
    bad[-1] ^= 1
    out, err = run_tool(spaced(bad))
    assert "no TuyaMCU frames found (" in err and "checksum 1" in err


def test_binary_junk_and_invalid_utf8():
    rnd = random.Random(7)
    junk = bytes(rnd.randrange(256) for _ in range(20000))
    f = v2_frames()[10][0]
    data = junk[:5000] + b"\xff\xfe\n" + spaced(f).encode() + b"\n\xc3\x28" + junk[5000:]
    out, err = run_tool(data, "--json")
    objs = [json.loads(ln) for ln in out.splitlines()]
    assert f.hex() in [o.get("hex") for o in objs]
    out, err = run_tool(junk)  # must not crash, whatever it finds


def test_odd_product_info_does_not_stop_the_tool():
    """A product answer whose "p" is not a string must not end the decoding (the tool
    reports a lib error, if lib raises, and goes on)."""
    f = v2_frames()[10][0]
    text = "Received: %s\nReceived: %s\n" % (spaced(mcu(1, b'{"p":5,"v":"1"}')), spaced(f))
    cap = decode.scan(text)
    assert frames_of(cap)[-1] == f
    assert cap.meter.values()["voltage_a"] == 231.4


# ------------------------------------------------------------------ properties

STYLES = [(" ", True, ""), ("", False, ""), (":", True, ""), ("-", False, ""),
          (", ", True, "0x"), (",", False, "0x"), ("\u00a0", True, ""), ("\t", False, "")]

frame_st = st.builds(
    lambda ver, cmd, data: encode(cmd, data, ver),
    st.sampled_from([0, 3]), st.integers(0, 255),
    st.binary(max_size=40) | st.lists(st.sampled_from([b"\x55\xaa", b"\x55", b"\xaa", b"\x00"]),
                                      max_size=8).map(b"".join))

chatter = st.sampled_from([
    "Info:MAIN:Time 41, idle 0/s, free 75880, MQTT 0(2), bWifi 1, socks 2/23",
    "12:34:56.789 TYA: FnId=0 is set for dpId=1", "[00:00:12.345] hello", "", "   ",
    "Info:TuyaMCU:ProcessIncoming[ver=3]: processing command 7 (DP status) with 18 bytes",
    "deadbeef cafe 12 34", "x = 0x12, 0x34", "2024-05-01 12:00:00 boot",
])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(frame_st, st.sampled_from(STYLES),
                          st.sampled_from(["", "RX: ", "Received: ", '"']), chatter), max_size=6))
def test_frames_in_any_style_are_found(items):
    lines = []
    for f, (sep, upper, x), prefix, chat in items:
        if sep == "":
            body = f.hex().upper() if upper else f.hex()
        else:
            body = sep.join(x + (("%02X" if upper else "%02x") % b) for b in f)
        lines += [chat, prefix + body + ('"' if prefix == '"' else "")]
    cap = decode.scan("\n".join(lines))
    assert frames_of(cap) == [it[0] for it in items]


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789abcdefABCDEF55AAx:-., \n\t\u00a0[]\"{}"))),
       st.binary(max_size=200))
def test_never_crashes(text, blob):
    decode.scan(text)
    decode.scan(blob.decode("utf-8", "replace"))
    cap = decode.scan(text + "\n" + blob.hex(" "))
    for f in cap.frames:
        decode.describe(f, cap.meter.layout)
    decode.summary(cap)
    json.dumps(decode.final_json(cap))


def test_negative_fault_bitmap_does_not_hang_the_tool():
    """DP 9 sent as a 4-byte value with the top bit set reads as a negative number."""
    f = mcu(7, dp(9, T_VALUE, -1) + dp(102, T_VALUE, 2314))
    p = subprocess.run([sys.executable, TOOL, "--json"], input=spaced(f).encode(),
                       capture_output=True, timeout=20)
    assert p.returncode == 0
    objs = [json.loads(ln) for ln in p.stdout.decode().splitlines()]
    assert objs[0]["dps"][0]["faults"][:4] == ["bit_0", "bit_1", "overcurrent", "phase_loss"]
    assert len(objs[0]["dps"][0]["faults"]) == 32
