# -*- coding: utf-8 -*-
"""TLS client probe of the tlsforge conformance suite.

Runs unchanged under Python 2.7 and 3.x. It uses the interpreter's *default* context,
ssl.create_default_context(cafile=...), exactly as an application would, and never tweaks it:
that context is what is under test.

    python probe.py --meta            one JSON line describing the interpreter's ssl module
    python probe.py CASES.json [N]    run the cases (N at a time), one JSON line per case

A case: {"id", "kind": "tls" | "urllib" | "urllib_default" | "httplib" | "httplib_default",
"addr", "port", "host" (server_hostname, may be an IP literal or a U-label), "url",
"cafile" (null: no cafile argument), "cert"/"key" (client certificate), "alpn", "timeout",
"verify_paths" (report ssl.get_default_verify_paths() as seen by this process)}.
A result: {"id", "outcome": "accept" | "refuse" | "timeout" | "error", "error_class",
"error", "version", "cipher", "alpn", "ms", and "verify_paths" if asked}.
"""
from __future__ import print_function

import errno
import json
import socket
import ssl
import sys
import threading
import time

PY2 = sys.version_info[0] == 2
if PY2:
    import httplib as http_client
    import urllib2 as url_request
    import Queue as queue
else:
    import http.client as http_client
    import urllib.request as url_request
    import queue

_out_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj, sort_keys=True)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def text(x):
    if x is None:
        return None
    if PY2 and isinstance(x, str):
        return x.decode("utf-8", "replace")
    if not PY2 and isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    return x if isinstance(x, type(u"")) else u"%s" % (x,)


def native_host(host):
    """ASCII host names as the native str type; U-labels stay unicode."""
    if host is None:
        return None
    if PY2:
        try:
            return host.encode("ascii")
        except UnicodeError:
            return host
    return host


def verify_paths():
    paths = ssl.get_default_verify_paths()
    return {
        "cafile": paths.cafile,
        "capath": paths.capath,
        "openssl_cafile_env": paths.openssl_cafile_env,
        "openssl_cafile": paths.openssl_cafile,
        "openssl_capath_env": paths.openssl_capath_env,
        "openssl_capath": paths.openssl_capath,
    }


def meta():
    ctx = ssl.create_default_context()
    info = {
        "python": sys.version.split()[0],
        "version_info": list(sys.version_info[:3]),
        "executable": sys.executable,
        "openssl": ssl.OPENSSL_VERSION,
        "openssl_version_info": list(ssl.OPENSSL_VERSION_INFO),
        "verify_paths": verify_paths(),
        "check_hostname": bool(ctx.check_hostname),
        "verify_mode": int(ctx.verify_mode),
        "verify_flags": int(getattr(ctx, "verify_flags", 0)),
        "options": int(ctx.options),
        "hostname_checks_common_name": getattr(ctx, "hostname_checks_common_name", None),
        "minimum_version": text(str(getattr(ctx, "minimum_version", ""))),
        "has_sni": bool(getattr(ssl, "HAS_SNI", False)),
        "has_alpn": bool(getattr(ssl, "HAS_ALPN", False)),
        "cipher_count": len(ctx.get_ciphers()) if hasattr(ctx, "get_ciphers") else None,
    }
    try:
        import ensurepip
        info["ensurepip"] = ensurepip.version()
    except Exception as e:  # Debian splits ensurepip out of its python3
        info["ensurepip"] = None
        info["ensurepip_error"] = text(str(e))
    return {"meta": info}


class Refused(Exception):
    pass


def classify(e):
    """(outcome, error class, message) for an exception raised while talking to the server."""
    url_error = getattr(url_request, "URLError", None)
    if url_error is not None and isinstance(e, url_error) and isinstance(getattr(e, "reason", None), BaseException):
        outcome, cls, msg = classify(e.reason)
        return outcome, "URLError/" + cls, msg
    cls = type(e).__name__
    msg = text(str(e))[:400]
    if isinstance(e, socket.timeout):
        return "timeout", cls, msg
    cert_error = getattr(ssl, "CertificateError", None)
    if isinstance(e, ssl.SSLError) or (cert_error is not None and isinstance(e, cert_error)) or isinstance(e, Refused):
        return "refuse", cls, msg
    if isinstance(e, (socket.error, IOError, OSError)):
        if getattr(e, "errno", None) in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "error", cls, msg
        # reset/EOF in the middle of a handshake: the connection was refused
        return "refuse", cls, msg
    if isinstance(e, http_client.HTTPException):
        return "refuse", cls, msg
    return "error", cls, msg


def make_context(case):
    cafile = case.get("cafile")
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
    else:
        ctx = ssl.create_default_context()
    if case.get("cert"):
        ctx.load_cert_chain(case["cert"], case.get("key"))
    if case.get("alpn"):
        ctx.set_alpn_protocols([native_host(p) for p in case["alpn"]])
    return ctx


def read_line(s, limit=4096):
    data = b""
    while b"\n" not in data and len(data) < limit:
        chunk = s.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def run_tls(case, res):
    ctx = make_context(case)
    raw = socket.create_connection((case["addr"], case["port"]), timeout=case["timeout"])
    try:
        s = ctx.wrap_socket(raw, server_hostname=native_host(case["host"]))
        try:
            res["version"] = s.version() if hasattr(s, "version") else None
            c = s.cipher()
            res["cipher"] = c[0] if c else None
            if hasattr(s, "selected_alpn_protocol"):
                res["alpn"] = text(s.selected_alpn_protocol())
            s.sendall(b"PING\n")
            reply = read_line(s)
            if not reply.startswith(b"PONG"):
                raise Refused("connection closed after the handshake (reply %r)" % (reply[:40],))
        finally:
            s.close()
    finally:
        raw.close()


def run_urllib(case, res):
    if case["kind"] == "urllib_default":
        r = url_request.urlopen(case["url"], timeout=case["timeout"])
    else:
        r = url_request.urlopen(case["url"], context=make_context(case), timeout=case["timeout"])
    try:
        body = r.read()
        res["status"] = r.getcode()
    finally:
        r.close()
    if not body.startswith(b"tlsforge-ok"):
        raise Refused("unexpected body %r" % (body[:40],))


def run_httplib(case, res):
    if case["kind"] == "httplib_default":
        conn = http_client.HTTPSConnection(native_host(case["host"]), case["port"], timeout=case["timeout"])
    else:
        conn = http_client.HTTPSConnection(native_host(case["host"]), case["port"],
                                           timeout=case["timeout"], context=make_context(case))
    try:
        conn.request("GET", "/")
        if conn.sock is not None and hasattr(conn.sock, "version"):
            res["version"] = conn.sock.version()
            res["cipher"] = conn.sock.cipher()[0]
        r = conn.getresponse()
        body = r.read()
        res["status"] = r.status
    finally:
        conn.close()
    if not body.startswith(b"tlsforge-ok"):
        raise Refused("unexpected body %r" % (body[:40],))


RUNNERS = {
    "tls": run_tls,
    "urllib": run_urllib,
    "urllib_default": run_urllib,
    "httplib": run_httplib,
    "httplib_default": run_httplib,
}


def run_case(case):
    res = {"id": case["id"], "outcome": None, "error_class": None, "error": None,
           "version": None, "cipher": None, "alpn": None}
    if case.get("verify_paths"):
        try:
            res["verify_paths"] = verify_paths()
        except Exception as e:
            res["verify_paths"] = {"error": "%s: %s" % (type(e).__name__, text(str(e))[:200])}
    t0 = time.time()
    try:
        RUNNERS[case["kind"]](case, res)
        res["outcome"] = "accept"
    except Exception as e:
        res["outcome"], res["error_class"], res["error"] = classify(e)
    res["ms"] = int((time.time() - t0) * 1000)
    emit(res)


def main(argv):
    if len(argv) > 1 and argv[1] == "--meta":
        emit(meta())
        return 0
    if len(argv) < 2:
        sys.stderr.write("usage: probe.py --meta | CASES.json [JOBS]\n")
        return 2
    with open(argv[1]) as f:
        cases = json.load(f)
    jobs = int(argv[2]) if len(argv) > 2 else 8
    q = queue.Queue()
    for c in cases:
        q.put(c)

    def worker():
        while True:
            try:
                c = q.get_nowait()
            except queue.Empty:
                return
            try:
                run_case(c)
            except Exception as e:  # never lose a case
                emit({"id": c.get("id"), "outcome": "error", "error_class": type(e).__name__,
                      "error": text(str(e))[:400]})

    threads = [threading.Thread(target=worker) for _ in range(max(1, min(jobs, len(cases))))]
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
