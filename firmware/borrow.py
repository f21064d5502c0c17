# Modules needed only now and then (commands, discovery, metrics, config) are imported
# for one job and dropped after, so their code is not kept in the heap between jobs:
#   with borrow("metrics") as metrics: ...
import sys


class borrow:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        return __import__(self.name, None, None, ("x",))  # the module itself, even when dotted

    def __exit__(self, *exc):
        sys.modules.pop(self.name, None)
        pkg, _, sub = self.name.rpartition(".")
        if pkg and pkg in sys.modules and hasattr(sys.modules[pkg], sub):
            delattr(sys.modules[pkg], sub)
        return False
