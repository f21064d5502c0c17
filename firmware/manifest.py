# MicroPython manifest that freezes the firmware into an image: lib/ as top-level modules
# and firmware/ as a package, compiled like `make build` (-O1). Frozen bytecode runs from
# flash, so its code costs no heap. One manifest serves `make unix32` (the 32-bit host
# interpreter with the firmware frozen) and `make image` (a custom ESP32 image).
# main.py, boot.py, the pages and config.json stay files: main.py is what the board runs,
# the pages are streamed from their files in small pieces either way.
# A manifest runs with its own directory as the working directory.
import os

for _name in sorted(os.listdir("../lib")):
    if _name.endswith(".py"):
        module(_name, base_path="../lib", opt=1)

package("firmware", files=sorted(n for n in os.listdir(".") if n.endswith(".py") and n != "manifest.py"),
        base_path="..", opt=1)
