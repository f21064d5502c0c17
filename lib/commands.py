# The named commands: one table for MQTT and HTTP. A command checks its payload and
# queues the frame for the MCU; a bad payload raises ValueError with a message for
# the user, an unknown name KeyError.
import json

import tuya
import spm02
from dptable import CLOUD, REPORT_DP, REPORT_RECORD, REPORT_MIN, REPORT_MAX, ALARM_NAMES
from spm02 import alarm_records
from tuya import T_BOOL, T_ENUM, T_VALUE, T_RAW, T_STRING, T_BITMAP, SET_DP, encode


# DP records for the MCU: here, not in the resident lib/tuya.py, since only a command sends
# them (tools and tests use them too)
def encode_dp(dpid, dptype, value):
    """One DP record. value: int for bool/value/enum/bitmap, bytes or str for raw/string."""
    if dptype == T_VALUE:
        v = value & 0xFFFFFFFF
        data = bytes((v >> 24, (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF))
    elif dptype == T_BOOL:
        data = b"\x01" if value else b"\x00"
    elif dptype == T_ENUM:
        data = bytes((value & 0xFF,))
    elif dptype == T_BITMAP:
        if value < 0x100:
            n = 1
        elif value < 0x10000:
            n = 2
        else:
            n = 4
        data = bytes((value >> (8 * (n - 1 - i))) & 0xFF for i in range(n))
    elif dptype == T_STRING:
        data = value.encode() if isinstance(value, str) else bytes(value)
    elif dptype == T_RAW:
        data = bytes(value)
    else:
        raise ValueError("bad DP type")
    n = len(data)
    return bytes((dpid, dptype, n >> 8, n & 0xFF)) + data


def set_dp_frame(dpid, dptype, value):
    return encode(SET_DP, encode_dp(dpid, dptype, value))


# The thresholds the alarm command accepts, by alarm name (dptable.ALARM_NAMES), the same
# on DPs 17 and 18: (name, min, max); max 0 = no threshold. Here rather than in the
# resident table: only a command needs them.
LIMITS = (("overcurrent", 1, 65535), ("unbalance", 1, 100), ("overvoltage", 1, 65535),
          ("undervoltage", 1, 65535), ("phase_loss", 0, 0), ("high_power", 1, 65535),
          ("reverse_power", 0, 0))


def encode_alarms(records):
    out = bytearray()
    for rid, en, th in records:
        out.extend(bytes((rid, 1 if en else 0, (th >> 8) & 0xFF, th & 0xFF)))
    return bytes(out)


def find_alarm(name, lists):
    """(dpid, record id, min, max) for an alarm name; lists is {dpid: raw} of what the
    meter reported, so a name that both DPs know goes where the meter keeps it (DP 17 first)."""
    for aname, lo, hi in LIMITS:
        if aname != name:
            continue
        for dpid in (17, 18):
            names = ALARM_NAMES[dpid - 17]
            raw = lists.get(dpid)
            if name in names and raw is not None:
                rid = names.index(name)
                if any(r[0] == rid for r in alarm_records(raw)):
                    return dpid, rid, lo, hi
    return None


def set_alarm(raw, rid, enabled=None, threshold=None):
    """The whole DP 17/18 list again, with one record changed."""
    recs = []
    for r, en, th in alarm_records(raw):
        if r == rid:
            if enabled is not None:
                en = 1 if enabled else 0
            if threshold is not None:
                th = threshold
        recs.append((r, en, th))
    return encode_alarms(recs)


def query_state(mcu, payload):
    mcu.link.send(tuya.QUERY)
    return "query sent"


def refresh(mcu, payload):
    mcu.link.send(tuya.SET_DP, encode_dp(35, T_ENUM, 0))
    return "refresh requested"


def clear_energy(mcu, payload):
    mcu.link.send(tuya.SET_DP, encode_dp(12, T_BOOL, 1))
    mcu.meter.counters.cleared()  # the drop to 0 that follows is a new cycle, published at once
    return "energy counters cleared"


def locate(mcu, payload):
    p = payload.strip().upper()
    if p in ("1", "ON", "TRUE"):
        on = True
    elif p in ("0", "OFF", "FALSE"):
        on = False
    else:
        raise ValueError("locate takes 1/0 or ON/OFF")
    mcu.link.send(tuya.SET_DP, encode_dp(101, T_BOOL, on))
    return "locate on" if on else "locate off"


def report_interval(mcu, payload):
    """The cloud layout's DP 102; elsewhere DP 18's record 0x08, the whole list rewritten."""
    m = mcu.meter
    d = m.dps.get(REPORT_DP)
    if m.layout == CLOUD:
        lo, hi = 225, 3600
    elif d is not None and spm02.report_interval(d.raw, d.n) is not None:
        lo, hi = REPORT_MIN, REPORT_MAX
    else:
        raise ValueError("this meter has no report interval setting: neither the cloud layout's "
                         "DP 102 nor a record 0x08 in DP 18 has been seen")
    try:
        s = int(payload.strip())
    except ValueError:
        s = 0
    if not lo <= s <= hi:
        raise ValueError("report_interval takes whole seconds, %d..%d" % (lo, hi))
    if m.layout == CLOUD:
        mcu.link.send(tuya.SET_DP, encode_dp(102, T_VALUE, s))
    else:
        mcu.link.send(tuya.SET_DP, encode_dp(REPORT_DP, T_RAW, set_alarm(bytes(d.raw), REPORT_RECORD,
                                                                      threshold=s)))
    return "report interval %d s" % s


def alarm(mcu, payload):
    try:
        a = json.loads(payload)
    except Exception:
        a = None
    if not isinstance(a, dict) or not isinstance(a.get("name"), str):
        raise ValueError('alarm takes JSON like {"name": "overvoltage", "enabled": true, "threshold": 250}')
    lists = {}
    for dpid in (17, 18):
        d = mcu.meter.dps.get(dpid)
        if d is not None:
            lists[dpid] = bytes(d.raw)
    found = find_alarm(a["name"], lists)
    if found is None:
        raise ValueError("the meter has not reported an alarm named %s" % a["name"])
    dpid, rid, lo, hi = found
    en = a.get("enabled")
    th = a.get("threshold")
    if en is not None and not isinstance(en, bool):
        raise ValueError("enabled must be true or false")
    if th is not None:
        if hi == 0:
            raise ValueError("%s has no threshold" % a["name"])
        if not isinstance(th, int) or isinstance(th, bool) or not lo <= th <= hi:
            raise ValueError("threshold of %s must be a whole number %d..%d" % (a["name"], lo, hi))
    if en is None and th is None:
        raise ValueError("give enabled, threshold or both")
    mcu.link.send(tuya.SET_DP, encode_dp(dpid, T_RAW, set_alarm(lists[dpid], rid, en, th)))
    return "alarm %s set" % a["name"]


def restart(mcu, payload):
    # Nothing for the meter: the firmware restarts (app.command_done) once MQTT or HTTP
    # has answered; a device reset, exit status 75 on the host.
    return "restarting"


COMMANDS = {
    "query_state": query_state,
    "refresh": refresh,
    "clear_energy": clear_energy,
    "locate": locate,
    "report_interval": report_interval,
    "alarm": alarm,
    "restart": restart,
}


def run(mcu, name, payload):
    """Run a command by name. payload: str or bytes. Returns a short message."""
    fn = COMMANDS.get(name)
    if fn is None:
        raise KeyError(name)
    if isinstance(payload, (bytes, bytearray, memoryview)):
        try:
            payload = bytes(payload).decode()
        except Exception:
            raise ValueError("payload is not UTF-8 text")
    return fn(mcu, payload)
