"""TLS client benchmark for `cargo xtask bench` (runs on 2.7 and 3.x).

usage: tls_bench.py PORT CAFILE handshake N | bulk PATH
Prints one JSON object. handshake: N full handshakes (new connection,
verified chain and host name, then close) and the client's CPU time per
handshake. bulk: one HTTP/1.0 GET of PATH from tests/bench/tls_server.c,
read to the end: the rate in MB/s, and the client's CPU time per MB (the
interpreter's own cost), with the negotiated cipher.
"""
import json
import resource
import socket
import ssl
import sys
import time


def cpu():
    # (getrusage: microseconds, where os.times counts clock ticks)
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def waits():
    """Voluntary context switches: how often the client slept for data."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


def main():
    port, cafile, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = ssl.create_default_context(cafile=cafile)

    def connect():
        sock = socket.create_connection(("127.0.0.1", port))
        return ctx.wrap_socket(sock, server_hostname="localhost")

    if mode == "handshake":
        n = int(sys.argv[4])
        connect().close()  # warm-up
        c0, w0 = cpu(), time.time()
        for _ in range(n):
            connect().close()
        out = {
            "handshake_cpu_ms": (cpu() - c0) * 1000.0 / n,
            "handshake_wall_ms": (time.time() - w0) * 1000.0 / n,
            "n": n,
        }
    else:
        s = connect()
        s.sendall(("GET /%s HTTP/1.0\r\n\r\n" % sys.argv[4]).encode("ascii"))
        total, c0, n0, w0 = 0, cpu(), waits(), time.time()
        while True:
            data = s.recv(1 << 16)
            if not data:
                break
            total += len(data)
        wall, used = time.time() - w0, cpu() - c0
        out = {"bulk_mb_s": total / 1e6 / wall, "bytes": total,
               "bulk_cpu_ms_per_mb": used * 1000.0 / (total / 1e6),
               "bulk_waits": waits() - n0,
               "cipher": s.cipher()[0], "version": s.version()}
        s.close()
    out["openssl"] = ssl.OPENSSL_VERSION
    sys.stdout.write(json.dumps(out) + "\n")


main()
