"""A broker that goes quiet must not stall the firmware. umqtt.simple blocks on its socket
at times (1.7.0's connect() makes it blocking; both versions read the rest of a packet
blocking once its first byte came), so the firmware gives it a socket on which blocking
means at most 2 s. Here a fake broker stalls at those two points while the test keeps
asking the firmware's HTTP server for its state."""
import socket
import threading
import time

import pytest

from harness import Firmware, wait_until
from spm02sim import Simulator


class StallingBroker:
    """Accepts MQTT clients. mode "connect": reads the CONNECT and never answers.
    mode "mid_packet": answers CONNECT and SUBSCRIBEs, then sends the first byte of a
    PUBLISH and nothing more."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.clients = 0
        self.stalled = 0
        self._conns = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.clients += 1
            self._conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _packet(self, c):
        head = c.recv(1)
        if not head:
            raise OSError("closed")
        n = shift = 0
        while True:
            b = c.recv(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        body = b""
        while len(body) < n:
            body += c.recv(n - len(body))
        return head[0], body

    def _serve(self, c):
        try:
            c.settimeout(30)
            op, _ = self._packet(c)
            assert op == 0x10
            if self.mode == "connect":
                self.stalled += 1
                self._stop.wait(30)
                return
            c.sendall(b"\x20\x02\x00\x00")
            for _ in range(2):  # B/cmd/+ and homeassistant/status
                op, body = self._packet(c)
                assert op == 0x82
                c.sendall(b"\x90\x03" + body[:2] + b"\x00")
            c.sendall(b"\x30")  # the first byte of a PUBLISH, and then nothing
            self.stalled += 1
            self._stop.wait(30)
        except (OSError, AssertionError, IndexError):
            pass
        finally:
            c.close()

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        for c in self._conns:
            c.close()


@pytest.mark.parametrize("mode", ["connect", "mid_packet"])
def test_a_quiet_broker_does_not_stall_the_firmware(mode):
    broker = StallingBroker(mode)
    sim = Simulator(layout="v2", port=0, interval=3600).start()
    fw = Firmware(sim.port, broker.port)
    try:
        fw.start()
        wait_until(lambda: broker.stalled >= 1, 10, what="the broker to stall the firmware")
        worst = 0.0
        end = time.monotonic() + 6
        while time.monotonic() < end:
            t = time.monotonic()
            st = fw.state()
            worst = max(worst, time.monotonic() - t)
            time.sleep(0.1)
        # the loop never waited long on the broker: at most one 2 s socket timeout at a time
        # (and a busy host's delay; two timeouts in a row would take 4 s)
        assert worst < 3.5, worst
        # and MQTT gave up on the quiet broker and tried again
        assert broker.clients >= 2, broker.clients
        assert st["mqtt"]["last_error"] and not st["mqtt"]["connected"], st["mqtt"]
        assert st["values"].get("voltage_a") is not None  # the meter side carried on
    finally:
        fw.stop()
        sim.stop()
        broker.stop()
