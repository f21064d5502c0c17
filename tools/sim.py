"""make sim: Mosquitto, the simulated SPM02 and the firmware (MicroPython unix port),
all on 127.0.0.1, until Ctrl-C. Prints the page's URL and a line to watch MQTT."""
import argparse
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "host_tests"))

from harness import Firmware, Mosquitto, free_port  # noqa: E402
from spm02sim import Simulator  # noqa: E402


def port_or_free(p):
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            return free_port()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--layout", default=os.environ.get("LAYOUT", "v2"), choices=("v2", "cloud", "spm01"))
    ap.add_argument("--raw-format", default=os.environ.get("RAW", "8"), choices=("8", "v01", "v02", "none"),
                    help="raw phase DPs: 8 bytes, Tuya's v01/v02, or none (value DPs only)")
    ap.add_argument("--only-when-asked", action="store_true", default=bool(os.environ.get("ASKED")),
                    help="the meter reports only when asked: the firmware polls it")
    ap.add_argument("--interval", type=float, default=float(os.environ.get("INTERVAL", "5")))
    ap.add_argument("--http-port", type=int, default=int(os.environ.get("HTTP_PORT", "8080")))
    ap.add_argument("--noise", type=float, default=0.0)
    ap.add_argument("--heapsize", default=os.environ.get("HEAPSIZE") or None)
    a = ap.parse_args()

    broker = sim = fw = None
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        broker = Mosquitto(port_or_free(1883)).start()
        sim = Simulator(layout=a.layout, port=0, interval=a.interval, noise=a.noise,
                        raw_format=None if a.raw_format == "none" else a.raw_format,
                        push=not a.only_when_asked).start()
        fw = Firmware(sim.port, broker.port, port_or_free(a.http_port), heapsize=a.heapsize)
        fw.start()
        print()
        print("  SPM02 firmware running in the MicroPython unix port, against a simulated meter")
        print("  (%s layout, raw format %s, %s) and Mosquitto on 127.0.0.1:%d."
              % (a.layout, a.raw_format, "reports only when asked" if a.only_when_asked
                 else "a report every %g s" % a.interval, broker.port))
        print()
        print("  status page:  %s" % fw.url("/"))
        print("  state API:    %s" % fw.url("/api/state"))
        print("  watch MQTT:   mosquitto_sub -h 127.0.0.1 -p %d -t 'spm02/#' -t 'homeassistant/#' -v" % broker.port)
        print("  command:      mosquitto_pub -h 127.0.0.1 -p %d -t spm02/cmd/refresh -m PRESS" % broker.port)
        print("  firmware log: %s" % fw.log_path)
        print()
        print("  Ctrl-C stops everything.")
        sys.stdout.flush()
        while not stop:
            if fw.proc.poll() is not None:
                print("firmware exited:\n" + fw.log()[-2000:])
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for x in (fw, sim, broker):
            if x is not None:
                x.stop()
        print("\nstopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
