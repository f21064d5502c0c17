# Frame and DP codec. Runs under pytest and in the MicroPython unix port.
from portable import hexb
import tuya
from commands import encode_dp, set_dp_frame
from tuya import Decoder, encode, dp_records, dp_value

PORTABLE = True

HEARTBEAT = hexb("55 AA 00 00 00 00 FF")
QUERY = hexb("55 AA 00 08 00 00 07")


def frames(dec, data):
    dec.feed(data)
    out = []
    while dec.next():
        out.append((dec.ver, dec.cmd, bytes(dec.buf[6:6 + dec.plen])))
    return out


def test_encode_matches_reference_frames():
    assert encode(0x00) == HEARTBEAT
    assert encode(0x08) == QUERY


def test_checksum_covers_header():
    f = encode(0x07, b"\x01\x02\x00\x04\x00\x00\x00\x2a", ver=3)
    assert f[-1] == sum(f[:-1]) & 0xFF
    assert f[2] == 3 and f[4:6] == b"\x00\x08"


def test_decode_whole_and_byte_by_byte():
    f1 = encode(0x07, encode_dp(102, 2, 2317), 3)
    f2 = encode(0x00, b"\x01", 3)
    stream = f1 + f2
    want = [(3, 7, encode_dp(102, 2, 2317)), (3, 0, b"\x01")]
    assert frames(Decoder(), stream) == want
    dec = Decoder()
    got = []
    for b in stream:
        got += frames(dec, bytes((b,)))
    assert got == want


def test_sixteen_bit_length():
    data = bytes(range(256)) * 2  # 512 bytes: the length's high byte matters
    f = encode(0x07, data, 3)
    assert f[4] == 2 and f[5] == 0
    assert frames(Decoder(), f) == [(3, 7, data)]


def test_payload_containing_header_bytes():
    data = b"\x55\xaa\x00\x00\x00\x00\xff\x55\xaa"
    f = encode(0x07, data, 3)
    assert frames(Decoder(), f + HEARTBEAT) == [(3, 7, data), (0, 0, b"")]


def test_bad_checksum_dropped_and_counted():
    bad = bytearray(encode(0x07, b"\x01\x01\x00\x01\x01", 3))
    bad[-1] ^= 0xFF
    dec = Decoder()
    assert frames(dec, bytes(bad) + HEARTBEAT) == [(0, 0, b"")]
    assert dec.checksum == 1


def test_good_frame_inside_truncated_frame_is_kept():
    # A frame cut short after its length: the next frame's bytes are taken as its
    # data until the checksum fails, then scanned again.
    good = encode(0x07, encode_dp(29, 2, 1234), 3)
    cut = encode(0x07, encode_dp(1, 2, 99), 3)[:8]
    dec = Decoder()
    got = frames(dec, cut + good + HEARTBEAT)
    assert (3, 7, encode_dp(29, 2, 1234)) in got
    assert got[-1] == (0, 0, b"")
    assert dec.checksum >= 1


def test_absurd_length_resyncs():
    dec = Decoder()
    junk = hexb("55 AA 03 07 FF FF")
    got = frames(dec, junk + HEARTBEAT)
    assert got == [(0, 0, b"")]
    assert dec.too_long == 1


def test_truncated_then_idle():
    dec = Decoder()
    f = encode(0x07, encode_dp(29, 2, 5), 3)
    assert frames(dec, f[:9]) == []
    assert dec.pending()
    dec.expire()
    assert dec.truncated == 1
    assert frames(dec, HEARTBEAT) == [(0, 0, b"")]


def test_noise_never_raises():
    dec = Decoder()
    noise = bytes((i * 37 + 11) & 0xFF for i in range(3000)) + b"\x55\x55\xaa\x55"
    frames(dec, noise)
    dec.expire()
    got = frames(dec, HEARTBEAT + HEARTBEAT)
    assert got[-1] == (0, 0, b"")
    assert dec.noise > 0


def test_chunk_larger_than_buffer():
    f = encode(0x07, encode_dp(19, 3, "vow25010001"), 3)
    stream = f * 300  # about 6 KB in one feed
    assert len(frames(Decoder(), stream)) == 300


def test_double_55_before_header():
    assert frames(Decoder(), b"\x55" + HEARTBEAT) == [(0, 0, b"")]


def test_dp_types_round_trip():
    cases = [(1, 2, 123456), (29, 2, -1500), (12, 1, 1), (35, 4, 3), (9, 5, 0x08),
             (9, 5, 0x1234), (9, 5, 0x10000), (19, 3, "vow25010001"), (6, 0, hexb("09 0A 00 00 00 00 00 00"))]
    rec = b"".join(encode_dp(*c) for c in cases)
    got = [(d, t, dp_value(t, rec, s, n)) for d, t, s, n in dp_records(rec, 0, len(rec))]
    want = [(d, t, (1 if v else 0) if t == 1 else v) for d, t, v in cases]
    assert got == want


def test_value_is_signed_big_endian():
    assert encode_dp(29, 2, -1) == hexb("1D 02 00 04 FF FF FF FF")
    assert dp_value(2, hexb("80 00 00 00"), 0, 4) == -2147483648
    assert dp_value(2, hexb("7F FF FF FF"), 0, 4) == 2147483647


def test_set_dp_frame():
    assert set_dp_frame(12, 1, True) == encode(0x06, hexb("0C 01 00 01 01"))


def test_records_stop_at_overrun():
    rec = encode_dp(1, 2, 5) + hexb("02 02 00 04 00")
    assert [r[0] for r in dp_records(rec, 0, len(rec))] == [1]
