# /metrics text from the DP table. Runs under pytest and in the MicroPython unix port.
import metrics
from meter import Meter
from reports import feed, v2_report, cloud_report
from tuya import T_BITMAP, T_VALUE

PORTABLE = True


def text(m, st=None, mq=None):
    return "".join(metrics.lines(m, st, mq))


def test_v2_families_in_base_units():
    m = Meter()
    feed(m, v2_report(va=2317, ia=5000, pa=1100))
    t = text(m)
    assert 'spm02_phase_voltage_volts{phase="a"} 231.7\n' in t
    assert 'spm02_phase_current_amperes{phase="a"} 5.000\n' in t
    assert 'spm02_phase_power_watts{phase="c"} -600\n' in t
    assert "spm02_energy_forward_joules_total 4444416000\n" in t  # 1234.56 kWh
    assert "# TYPE spm02_energy_forward_joules_total counter\n" in t
    assert "spm02_frequency_hertz 50.02\n" in t
    assert 'spm02_phase_power_factor_ratio{phase="a"} 0.95\n' in t
    assert t.count("# TYPE spm02_phase_voltage_volts gauge") == 1


def test_cloud_families():
    m = Meter()
    feed(m, cloud_report())
    t = text(m)
    assert "spm02_current_unbalance_ratio 0.03\n" in t
    assert "spm02_report_interval_seconds 900\n" in t
    assert 'spm02_phase_energy_forward_joules_total{phase="b"} 36036000\n' in t


def test_faults_and_link():
    m = Meter()
    feed(m, v2_report() + [(9, T_BITMAP, 0x0C)])
    st = {"online": True, "frames_rx": 10, "frames_tx": 4, "errors": {"checksum": 2, "noise": 5},
          "last_report_s": 3}
    t = text(m, st, False)
    assert 'spm02_fault_active{fault="overcurrent"} 1\n' in t
    assert 'spm02_fault_active{fault="phase_loss"} 1\n' in t
    assert "spm02_faults_bitmap 12\n" in t
    assert 'spm02_link_errors_total{kind="checksum"} 2\n' in t
    assert "spm02_mcu_online 1\n" in t and "spm02_mqtt_connected 0\n" in t
    for line in t.splitlines():
        assert line.startswith("# ") or line.startswith("spm02_")


def test_single_phase_and_v02_families():
    from reports import spm01_report, v0x
    from tuya import T_RAW
    m = Meter()
    feed(m, spm01_report())
    t = text(m)
    assert 'spm02_phase_voltage_volts{phase="a"} 230.1\n' in t
    assert 'phase="b"' not in t and 'phase="c"' not in t
    assert "spm02_energy_reverse_joules_total 24408000\n" in t  # DP 2: 6.78 kWh
    assert "spm02_report_interval_seconds 30\n" in t  # DP 18 record 0x08
    m = Meter()
    feed(m, [(6, T_RAW, v0x(2, 2300, 3000, 675, 100, 700, 96, 2 | 4))])
    t = text(m)
    assert 'spm02_phase_reactive_power_voltamperes_reactive{phase="a"} -100\n' in t
    assert 'spm02_phase_apparent_power_voltamperes{phase="a"} 700\n' in t
    assert 'spm02_phase_power_watts{phase="a"} -675\n' in t


def test_user_keys_and_polls():
    from reports import LEAK
    import dptable as T
    from tuya import T_VALUE
    m = Meter(user=(LEAK, (141, T.ANY, "temp", T_VALUE, 1, "degC", 0)))
    feed(m, v2_report() + [(113, T_VALUE, 25), (141, T_VALUE, 215)])
    t = text(m, {"online": True, "frames_rx": 1, "frames_tx": 1, "errors": {}, "last_report_s": None,
                 "polls": 4})
    assert "spm02_leakage_current_amperes 0.025\n" in t
    assert "spm02_temp 21.5\n" in t  # a unit the table does not know: no suffix
    assert "spm02_mcu_polls_total 4\n" in t


def test_held_drops_and_new_cycles_counted():
    m = Meter()
    feed(m, v2_report())
    t = text(m)
    assert "spm02_energy_glitches_total 0\n" in t and "spm02_energy_new_cycles_total 0\n" in t
    for _ in range(3):
        feed(m, [(23, T_VALUE, 0)])  # held, then a new cycle
    t = text(m)
    assert "# TYPE spm02_energy_glitches_total counter\n" in t
    assert "spm02_energy_glitches_total 1\n" in t and "spm02_energy_new_cycles_total 1\n" in t

