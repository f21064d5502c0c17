# The whole MCU side, sans-IO: bytes in -> frames -> link -> meter state, and the
# frames the link wants sent. The firmware's driver and the tools only move bytes.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from tuya import Decoder
from link import Link, EV_DPS, EV_PRODUCT
from meter import Meter

EV_CHANGED = const(64)  # a reading changed


class Mcu:
    def __init__(self, layout="auto", wifi_state=4, poll_s=30, user=()):
        self.dec = Decoder()
        self.link = Link(wifi_state, poll_s * 1000)
        self.meter = Meter(layout, user)
        self.last_report = None

    def feed(self, now, data, n=-1):
        """Take data[:n] from the UART. Returns the bit set of events they caused."""
        dec = self.dec
        link = self.link
        dec.feed(data, n)
        ev = 0
        while dec.next():
            e = link.receive(now, dec.cmd, dec.buf, 6, dec.plen)
            if e & EV_DPS:
                self.last_report = now
                if self.meter.dps_in(dec.buf, 6, 6 + dec.plen, now):
                    e |= EV_CHANGED
            if e & EV_PRODUCT:
                self.meter.product(link.product_key)
            ev |= e
        return ev

    def poll(self, now):
        """The next frame to write, or None."""
        return self.link.poll(now)
