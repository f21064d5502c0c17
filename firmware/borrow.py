# Modules needed only now and then (commands, discovery, metrics, config) are imported
# for one job and dropped after, so their code is not kept in the heap between jobs:
#   with borrow("metrics") as metrics: ...
import gc
import sys

import asyncio

# One job with borrowed code at a time: the HTTP answers, the energy file's save, MQTT's
# announce and state. Each fits the heap alone; two or three at once, at the busiest moments
# of a long run (a save while /api/history streams while discovery loads), did not: a
# MemoryError importing a module into a heap in pieces. The others wait their turn:
#   async with TURN: ...
TURN = asyncio.Lock()


class borrow:
    def __init__(self, name, *also):
        self.name = name
        self.also = also  # modules it imports that nothing else keeps

    def __enter__(self):
        # the garbage of the job before first: the module's code then goes into the holes
        # it leaves rather than the heap's last free stretch (measured: the stock image passes at 98 KiB, before only at 102)
        gc.collect()
        return __import__(self.name, None, None, ("x",))  # the module itself, even when dotted

    def __exit__(self, *exc):
        for name in (self.name,) + self.also:
            sys.modules.pop(name, None)
            pkg, _, sub = name.rpartition(".")
            if pkg and pkg in sys.modules and hasattr(sys.modules[pkg], sub):
                delattr(sys.modules[pkg], sub)
        return False
