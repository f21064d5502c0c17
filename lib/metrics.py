# /metrics in the Prometheus text format, derived from the DP table (and the owner's
# dps map) through the meter's readings: base units (volts, amperes, watts, voltamperes,
# joules, hertz, ratios), one family per reading, per-phase readings with a phase label.
# A reading in a unit the table does not know gets a family without a unit suffix.
from units import classes
import spm02

PREFIX = "spm02_"


def _family(key, unit):
    """(family name, phase or None, type)."""
    phase = None
    name = key
    if len(key) > 2 and key[-2] == "_" and key[-1] in "abc":
        phase = key[-1]
        name = "phase_" + key[:-2]
    suffix = classes(key, unit)[2]
    typ = "counter" if unit == "kWh" else "gauge"
    if suffix == "percent":
        suffix = "ratio"
    fam = PREFIX + name + ("_" + suffix if suffix else "")
    if typ == "counter":
        fam += "_total"
    return fam, phase, typ


def _value(count, dec, unit):
    """Exact text of a reading in its base unit."""
    if unit == "kWh":
        return str(count * 3600000 // 10 ** dec)  # kWh -> J, exact: 0.01 kWh = 36000 J
    if unit == "%":
        return spm02.fmt(count, dec + 2)
    return spm02.fmt(count, dec)


def lines(meter, mcu_status=None, mqtt_connected=None):
    """The exposition text, line by line (firmware/devinfo.py adds the device's health). In parts: each function's code is a piece of
    heap of its own, and smaller pieces fit a fragmented heap."""
    yield from _readings(meter)
    yield "# HELP spm02_plausibility_warnings Readings that contradict physics (wrong layout?)\n"
    yield "# TYPE spm02_plausibility_warnings gauge\nspm02_plausibility_warnings %d\n" % len(meter.warnings())
    c = meter.counters
    yield "# HELP spm02_energy_glitches_total Drops of an energy counter held (not published) since boot\n"
    yield "# TYPE spm02_energy_glitches_total counter\nspm02_energy_glitches_total %d\n" % c.glitches
    yield "# HELP spm02_energy_new_cycles_total New cycles of an energy counter taken since boot\n"
    yield "# TYPE spm02_energy_new_cycles_total counter\nspm02_energy_new_cycles_total %d\n" % c.cycles
    if mcu_status is not None:
        yield from _mcu(mcu_status)
    if mqtt_connected is not None:
        yield "# HELP spm02_mqtt_connected 1 while connected to the MQTT broker\n# TYPE spm02_mqtt_connected gauge\n"
        yield "spm02_mqtt_connected %d\n" % (1 if mqtt_connected else 0)


def _readings(meter):
    """A family per reading; the per-phase readings of one family together (Prometheus
    wants a family's samples in one group). No table of all families is built (it took the
    most heap of /metrics): a family is written at its first reading, its samples found by
    another pass over the readings; done keeps the index of each family's first reading."""
    done = []
    bits = faults = None
    i = -1
    for key, v, dec, _ in meter.iter_readings():
        i += 1
        if key == "faults_raw":
            bits = v
            continue
        if key == "faults":
            faults = v
        if dec is None:
            continue
        unit = meter.unit_of(key)
        if unit is None:
            continue
        fam, phase, typ = _family(key, unit)
        if phase is None:
            yield "# HELP %s SPM02 %s\n# TYPE %s %s\n%s %s\n" % (
                fam, key.replace("_", " "), fam, typ, fam, _value(v, dec, unit))
            continue
        if _seen(meter, done, fam, i):
            continue
        done.append(i)
        yield "# HELP %s SPM02 %s\n# TYPE %s %s\n" % (fam, key[:-2].replace("_", " "), fam, typ)
        for key2, v2, dec2, _ in meter.iter_readings():
            if dec2 is not None and len(key2) == len(key) and key2[-1] in "abc" and key2[:-1] == key[:-1]:
                yield '%s{phase="%s"} %s\n' % (fam, key2[-1], _value(v2, dec2, unit))
    if bits is not None:
        yield "# HELP spm02_faults_bitmap SPM02 fault bitmap (DP 9) as sent\n# TYPE spm02_faults_bitmap gauge\n"
        yield "spm02_faults_bitmap %d\n" % bits
        yield "# HELP spm02_fault_active SPM02 faults now active\n# TYPE spm02_fault_active gauge\n"
        for name in faults or ():
            yield 'spm02_fault_active{fault="%s"} 1\n' % name


def _seen(meter, done, fam, i):
    """Whether the family fam was written at an earlier reading (one of done)."""
    j = -1
    for key, v, dec, _ in meter.iter_readings():
        j += 1
        if j >= i:
            return False
        if j in done and _family(key, meter.unit_of(key))[0] == fam:
            return True
    return False


def _mcu(st):
    yield "# HELP spm02_mcu_online 1 while the meter's MCU answers heartbeats\n# TYPE spm02_mcu_online gauge\n"
    yield "spm02_mcu_online %d\n" % (1 if st["online"] else 0)
    yield "# HELP spm02_frames_received_total TuyaMCU frames received\n"
    yield "# TYPE spm02_frames_received_total counter\nspm02_frames_received_total %d\n" % st["frames_rx"]
    yield "# HELP spm02_frames_sent_total TuyaMCU frames sent\n"
    yield "# TYPE spm02_frames_sent_total counter\nspm02_frames_sent_total %d\n" % st["frames_tx"]
    if "polls" in st:
        yield "# HELP spm02_mcu_polls_total Queries sent because the meter was silent for mcu.poll_s\n"
        yield "# TYPE spm02_mcu_polls_total counter\nspm02_mcu_polls_total %d\n" % st["polls"]
    yield "# HELP spm02_link_errors_total TuyaMCU link errors by kind\n# TYPE spm02_link_errors_total counter\n"
    errs = st["errors"]
    for k in sorted(errs):
        yield 'spm02_link_errors_total{kind="%s"} %d\n' % (k, errs[k])
    if st["last_report_s"] is not None:
        yield "# HELP spm02_last_report_age_seconds Time since the meter last reported\n"
        yield "# TYPE spm02_last_report_age_seconds gauge\nspm02_last_report_age_seconds %d\n" % st["last_report_s"]
