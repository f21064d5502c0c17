# Runs before main.py on the ESP32. Kept empty on purpose: everything that can fail
# lives in main.py, where the firmware catches it.
