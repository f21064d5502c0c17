# The last 24 h of active power: the average of each phase for every 5-minute slot. Slots
# are aligned to unix time (slot n covers n * 300 s .. + 300 s); the caller hands in the
# slot number and a phase's power at each report. A slot no report came in is NULL.
#
# Where it lives: the whole day in the energy file (firmware/store.py: 288 slots x 3 phases,
# signed 16-bit watts at (slot % 288) * 6, up to the slot being filled as it was then), and
# here in RAM only the slot being filled (sums and counts) and the last W closed slots, until
# the next save (at most hourly) moves them to the file: 96 bytes instead of 1,728 in a heap
# of 64 KiB. `base` is the last closed slot the file holds. A gap (meter silent, firmware
# stopped) reads as NULL; a clock that went back drops the file's slots (they lie ahead).
#
# 16 bits: a phase of this family carries at most about 80 A x 250 V = 20 kW, inside
# +-32,767 W (a reading beyond is clamped). The total is the sum of the phases' averages,
# worked out when read (no storage, and it always agrees with them). A report allocates
# nothing.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

STEP = const(300)      # seconds per slot
SLOTS = const(288)     # 24 h
W = const(16)          # closed slots kept in RAM: more than the hour between two saves
NULL = const(-32768)   # no report in the slot
MAX = const(32767)


class History:
    def __init__(self):
        self.buf = bytearray(W * 6)  # closed slots at (slot % W) * 6: phases a, b, c
        for i in range(1, W * 6, 2):
            self.buf[i] = 0x80       # NULL
        self.slot = -1       # the slot being filled (unix time // STEP); -1: none yet
        self.base = -1       # the last slot the energy file holds; -1: none
        self.acc = [0] * 6   # the slot being filled: each phase's sum, then their counts

    def avg(self, k):
        """Phase k's average so far in the slot being filled (rounded), or NULL."""
        n = self.acc[3 + k]
        s = self.acc[k]
        q = (2 * abs(s) + n) // (2 * n) if n else NULL
        return -q if s < 0 else q

    def goto(self, slot):
        """Make slot the one being filled: the one before is averaged into RAM, the slots
        a gap skipped become NULL."""
        cur = self.slot
        if slot == cur:
            return
        b = self.buf
        if 0 <= cur < slot:
            if slot - W > cur and cur == self.base + 1:
                # a long gap (a restart hours later): RAM cannot keep cur, but the file has
                # its average as of the last save, made during it
                self.base = cur
            for s in range(max(cur, slot - W), slot):
                i = s % W * 6
                for k in range(3):
                    v = self.avg(k) if s == cur else NULL
                    b[i] = v & 0xFF
                    b[i + 1] = v >> 8 & 0xFF
                    i += 2
        elif cur >= 0:
            self.base = -1  # the clock went back: what the file holds lies in the future
        for k in range(6):
            self.acc[k] = 0
        self.slot = slot

    def add(self, slot, k, p):
        """Phase k drew p W (negative: export) in a report during slot."""
        if slot != self.slot:
            self.goto(slot)
        self.acc[k] += -MAX if p < -MAX else MAX if p > MAX else p
        self.acc[3 + k] += 1

    def get(self, s, k):
        """Phase k's average in slot s when RAM has it (the slot being filled, or a closed
        one the file does not hold yet), else NULL."""
        if s == self.slot:
            return self.avg(k)
        if self.base < s < self.slot and s >= self.slot - W:
            i = s % W * 6 + 2 * k
            v = self.buf[i] | self.buf[i + 1] << 8
            return v - 0x10000 if v & 0x8000 else v
        return NULL
