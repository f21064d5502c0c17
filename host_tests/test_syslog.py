"""The remote log: log.syslog sends every log line as RFC 5424 over UDP, filtered by
log.level; a bad address is a warning and nothing else."""
import re
import socket
import threading
import time

from harness import Firmware, wait_until
from spm02sim import Simulator

# <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
RFC5424 = re.compile(r"^<(\d+)>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ|-) (\S+) spm02 - - - (.*)$")


class SyslogServer:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(2048)
            except OSError:
                continue
            self.lines.append(data.decode())

    def find(self, text):
        return [x for x in self.lines if text in x]

    def stop(self):
        self._stop.set()
        self._t.join(5)
        self.sock.close()


def run_fw(extra=None, **log_cfg):
    sim = Simulator(layout="v2", port=0, interval=3600).start()
    fw = Firmware(sim.port, None, log=log_cfg, **(extra or {}))
    fw.start()
    return sim, fw


def test_lines_arrive_as_rfc5424_with_severity_and_node_id():
    srv = SyslogServer()
    sim, fw = run_fw(syslog="127.0.0.1:%d" % srv.port)
    try:
        # lines logged before the address was ready come too (the boot), then live ones
        wait_until(lambda: srv.find("starting as spm02"), 10, what="the boot lines")
        wait_until(lambda: srv.find("mcu: online"), 10, what="a live line")
        st, _ = fw.cmd("locate", "bogus")  # a warning: a bad payload
        assert st == 400
        fw.cmd("query_state", "PRESS")
        wait_until(lambda: srv.find("cmd query_state"), 5, what="an info line")
        for line in srv.lines:
            m = RFC5424.match(line)
            assert m, line
            pri, ts, host, msg = m.groups()
            assert host == "spm02"  # the node id (on an ESP32 with the chip's id appended)
            assert int(pri) // 8 == 1  # facility user
            assert ts != "-" and abs(time.mktime(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.gmtime())) < 60
            assert not re.match(r"^\d+\.\d{3} [DIWE] ", msg)  # the message, without the console's prefix
        info = srv.find("cmd query_state")[0]
        assert RFC5424.match(info).group(1) == "14"  # user.info = 8 + 6
        st = fw.state()
        assert st["device"]["syslog"]["ready"] and st["device"]["syslog"]["sent"] >= len(srv.lines)
        assert st["device"]["syslog"]["target"] == "127.0.0.1:%d" % srv.port
    finally:
        fw.stop()
        sim.stop()
        srv.stop()


def test_level_filters_what_is_sent_and_printed():
    srv = SyslogServer()
    sim, fw = run_fw({"bogus": 1}, syslog="127.0.0.1:%d" % srv.port, level="warn")
    try:
        # a warning goes: the unknown setting, logged at start
        wait_until(lambda: srv.find("bogus: unknown setting"), 10, what="the config warning")
        assert RFC5424.match(srv.find("bogus: unknown setting")[0]).group(1) == "12"  # user.warning
        wait_until(lambda: fw.state()["mcu"]["online"], 10, what="MCU online")
        fw.cmd("query_state", "PRESS")   # info: filtered
        time.sleep(1)
        assert not srv.find("cmd query_state") and not srv.find("mcu: online")
        assert all(RFC5424.match(x).group(1) in ("11", "12") for x in srv.lines), srv.lines
        assert "mcu: online" not in fw.log() and "bogus: unknown setting" in fw.log()  # the console too
    finally:
        fw.stop()
        sim.stop()
        srv.stop()


def test_bad_address_is_a_warning_and_nothing_else():
    for bad in ("nonsense", "host:99999", "host:port", ":514"):
        sim, fw = run_fw(syslog=bad)
        try:
            st = fw.state()
            w = [x for x in st["device"]["config_warnings"] if x.startswith("log.syslog")]
            assert len(w) == 1, st["device"]["config_warnings"]
            assert st["device"]["syslog"] is None  # off
            wait_until(lambda: fw.state()["mcu"]["online"], 10, what="the firmware carries on")
        finally:
            fw.stop()
            sim.stop()
