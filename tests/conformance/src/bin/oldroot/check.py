# Runs inside the old root under the interpreter being tested (Python 2.7
# and 3.x, unchanged): `python check.py CONFIG.json`. Prints one JSON line
# per check: {"id", "ok", "detail", "ms"}. The harness (main.rs) decides
# nothing from the exit status; a check that never printed is a failure.
from __future__ import print_function

import json
import os
import socket
import ssl
import subprocess
import sys
import time

# Where the platform keeps its CA bundle on Debian; the harness puts only
# the test CA there. Nothing below passes a cafile to the ssl module.
PLATFORM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def emit(check_id, ok, detail, started):
    line = {
        "id": check_id,
        "ok": bool(ok),
        "detail": detail,
        "ms": int((time.time() - started) * 1000),
    }
    print(json.dumps(line))
    sys.stdout.flush()


def run_check(check_id, fn, cfg):
    """A check that raises has failed; its exception is the detail."""
    started = time.time()
    try:
        ok, detail = fn(cfg)
    except Exception as e:  # noqa: B902 - any failure is reported, never hidden
        ok, detail = False, "%s: %s" % (type(e).__name__, e)
    emit(check_id, ok, detail, started)


def imports(cfg):
    missing = []
    for name in cfg["modules"]:
        try:
            __import__(name)
        except Exception as e:
            missing.append("%s (%s)" % (name, e))
    if missing:
        return False, "cannot import: " + "; ".join(missing)
    return True, "%d required modules import; %s" % (len(cfg["modules"]), ssl.OPENSSL_VERSION)


def handshake(cfg, server_hostname):
    """A verified handshake with the default context: no cafile, so trust
    comes from the platform's bundle path only."""
    ctx = ssl.create_default_context()
    sock = socket.create_connection(("127.0.0.1", cfg["tls_port"]), timeout=15)
    try:
        tls = ctx.wrap_socket(sock, server_hostname=server_hostname)
        tls.sendall(b"PING\n")
        answer = tls.recv(16)
        return tls.version(), tls.cipher()[0], answer
    finally:
        sock.close()


def tls13(cfg):
    version, cipher, answer = handshake(cfg, cfg["good_host"])
    ok = version == "TLSv1.3" and answer.startswith(b"PONG")
    return ok, "%s %s, server_hostname %s, trust from %s" % (
        version, cipher, cfg["good_host"], PLATFORM_BUNDLE)


def wrong_host(cfg):
    """Negative control: the same server under a name its certificate does
    not carry must be refused, and for the name."""
    try:
        version, _, _ = handshake(cfg, cfg["wrong_host"])
    except (ssl.CertificateError, ssl.SSLError) as e:
        text = str(e)
        by_name = "match" in text.lower()
        return by_name, "refused: %s: %s" % (type(e).__name__, text)
    return False, "accepted %s for %s" % (version, cfg["wrong_host"])


def run(argv, env):
    """Output of a child; 2.7's subprocess has no timeout, the harness's
    deadline for this whole script bounds it."""
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.communicate()[0].decode("utf-8", "replace")
    return p.returncode == 0, out


def tail(text, n=3):
    lines = [l for l in text.splitlines() if l.strip() and "DEPRECATION" not in l]
    return " | ".join(lines[-n:])


def bootstrap_pip(cfg, env):
    """3.x: a venv (ensurepip inside it); 2.7: ensurepip --user with a
    temporary HOME/PYTHONUSERBASE. Returns the python that runs that pip."""
    work = cfg["work"]
    if sys.version_info[0] >= 3:
        venv = os.path.join(work, "venv")
        ok, out = run([sys.executable, "-m", "venv", venv], env)
        if not ok:
            raise RuntimeError("python -m venv failed: " + tail(out))
        return os.path.join(venv, "bin", "python"), "venv"
    env["PYTHONUSERBASE"] = os.path.join(work, "userbase")
    ok, out = run([sys.executable, "-m", "ensurepip", "--user"], env)
    if not ok:
        raise RuntimeError("ensurepip --user failed: " + tail(out))
    return sys.executable, "ensurepip --user"


def pip_install(cfg, py, env, target, extra):
    argv = [py, "-m", "pip", "install", "--isolated", "--no-cache-dir",
            "--disable-pip-version-check", "--no-input", "--retries", "0",
            "--timeout", "15", "--index-url", cfg["index_url"],
            "--target", target] + extra + [cfg["package"]]
    ok, out = run(argv, env)
    if not ok:
        return False, evidence(out)
    probe = "import sys; sys.path.insert(0, %r); import %s as m; print(m.VALUE)" % (
        target, cfg["module"])
    ok, out = run([py, "-c", probe], env)
    if out.strip() != cfg["value"]:
        return False, "installed, but the import said: " + tail(out)
    return True, "installed and imported, VALUE %s" % out.strip()


def evidence(out):
    """pip's TLS error line when there is one (it is followed by the less
    telling "No matching distribution"), else the output's end."""
    for line in out.splitlines():
        start = line.find("[SSL: ")
        if start >= 0:
            end = line.find(")", start)
            return line[start:end + 1 if end > 0 else None]
        if "certificate" in line.lower() and "ssl" in line.lower():
            return line.strip()[:300]
    return tail(out)


def pip(cfg):
    work = cfg["work"]
    env = {"PATH": "/usr/bin:/bin", "HOME": os.path.join(work, "home"),
           "PIP_CONFIG_FILE": "/dev/null"}
    py, how = bootstrap_pip(cfg, env)
    ok, version = run([py, "-m", "pip", "--version"], env)
    version = " ".join(version.split()[:2])
    ok, detail = pip_install(cfg, py, env, os.path.join(work, "target"), [])
    return ok, "%s (%s), platform bundle only: %s" % (version, how, detail)


CHECKS = [("imports", imports), ("tls13", tls13), ("wrong-host", wrong_host), ("pip", pip)]


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    for check_id, fn in CHECKS:
        run_check(check_id, fn, cfg)


if __name__ == "__main__":
    main()
