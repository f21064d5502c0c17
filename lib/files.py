# Writing a file so that a crash or a power cut at any moment leaves the old file or the new
# one, never half of one: the config (portal.py), the energy file (store.py) and the OTA
# pointer (otaboot.py). And reading a small text file without a buffer bigger than it.
import errno
import os


def write_atomic(path, parts, rename=None, remove=None, between=None):
    """Write path via path.tmp and a rename. parts: text or bytes, or an iterable of them
    written one after the other (nothing is joined in memory). between: called after the
    temp file is written, before the rename (the OTA tests cut the power there)."""
    rename = rename or os.rename
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for p in (parts,) if isinstance(parts, (str, bytes)) else parts:
            f.write(p.encode() if isinstance(p, str) else p)
        f.flush()
    if between:
        between()
    try:
        rename(tmp, path)
    except OSError as e:
        if e.args[0] != errno.EEXIST:
            raise
        # FAT will not rename over a file; littlefs (the ESP32 default) does. The readers
        # recover the complete .tmp if we die between these two calls.
        (remove or os.remove)(path)
        rename(tmp, path)
    if hasattr(os, "sync"):
        os.sync()


def read_recovered(path, read, complete):
    """(text, leftover) of a file write_atomic writes, after a cut at any moment: a leftover
    temp file is either the new file whose rename never happened (no file, and the temp file
    is complete(): it is renamed and taken; leftover "taken") or a write cut short before
    its rename (dropped; leftover "dropped"); leftover None when there was none.
    read(path): the text, or None when it cannot be read."""
    tmp = path + ".tmp"
    text = read(path)
    left = read(tmp)
    if left is None:
        return text, None
    if text is None and complete(left):
        os.rename(tmp, path)
        return left, "taken"
    try:
        os.remove(tmp)
    except OSError:
        pass  # harmless: dropped again next time
    return text, "dropped"


def read_text(path, limit):
    """The file's text, at most limit + 1 characters (more than limit: the caller's "too
    big"), or None when it is missing; OSError for other trouble is the caller's. As much
    as the file holds, not a limit-sized buffer: the heap may have no such piece."""
    try:
        size = os.stat(path)[6]
        f = open(path)
    except OSError:
        return None
    try:
        return f.read(min(size, limit) + 1)
    finally:
        f.close()
