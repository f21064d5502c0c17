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


def tmpdir(prefix):
    """A fresh directory /tmp/<prefix>-<random>/ (its path ends in "/")."""
    import binascii
    import os
    d = "/tmp/%s-%s/" % (prefix, binascii.hexlify(os.urandom(6)).decode())
    os.mkdir(d[:-1])
    return d


def rmtree(d):
    """Remove a directory and all it holds (MicroPython has no shutil)."""
    import os
    for name in os.listdir(d):
        p = d.rstrip("/") + "/" + name
        if os.stat(p)[0] & 0x4000:
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(d.rstrip("/"))
