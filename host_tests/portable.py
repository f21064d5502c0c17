# Helpers for tests that run on CPython (pytest) and in the MicroPython unix port.


def raises(exc, fn, *args, **kw):
    """Call fn and return the exception of type exc it raised; fail if it did not."""
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc.__name__))


def hexb(s):
    """bytes from hex text with any spacing (MicroPython's bytes.fromhex wants none)."""
    import binascii
    return binascii.unhexlify("".join(s.split()))
