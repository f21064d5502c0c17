# /metrics text from the DP table. Runs under pytest and in the MicroPython unix port.
import metrics
from meter import Meter
from test_meter import feed, v2_report, cloud_report
from tuya import T_BITMAP

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
