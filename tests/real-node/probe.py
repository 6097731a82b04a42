"""One network attempt from inside a pod, with a short timeout, printed as one JSON line.

Run in a pod (kubectl exec … -- python3 -c "$(cat probe.py)" ARGS), so that the attempt leaves
from the pod's own address and the NetworkPolicies that select it apply:

  tcp HOST PORT                 connect; "open", "refused", "timeout" or "error: …"
  dns udp|tcp SERVER NAME       an A query; "answered" (with the addresses), or how it failed
  watch HOST PORT SECONDS       a connect every 50 ms for SECONDS, one line per attempt, with the
                                CLOCK_MONOTONIC time (the host's clock too) of each
"""
import json
import random
import socket
import struct
import sys
import time

TIMEOUT = 2.0


def connect(host, port, timeout=TIMEOUT):
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return "open"
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as error:
        return f"error: {error}"


def query(name):
    ident = random.randrange(1 << 16)
    header = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return ident, header + labels + b"\0" + struct.pack(">HH", 1, 1)


def skip_name(reply, at):
    while True:
        length = reply[at]
        if length == 0:
            return at + 1
        if length & 0xC0 == 0xC0:
            return at + 2
        at += length + 1


def answers(ident, reply):
    got, flags, _, count, _, _ = struct.unpack(">HHHHHH", reply[:12])
    if got != ident:
        return "error: a reply to another query"
    if flags & 0xF:
        return f"error: rcode {flags & 0xF}"
    # Skip the question, then read each answer's A record.
    at = skip_name(reply, 12) + 4
    found = []
    for _ in range(count):
        at = skip_name(reply, at)
        kind, _, _, length = struct.unpack(">HHIH", reply[at:at + 10])
        at += 10
        if kind == 1 and length == 4:
            found.append(socket.inet_ntoa(reply[at:at + 4]))
        at += length
    return "answered " + ",".join(found) if found else "error: no A record"


def dns(proto, server, name):
    ident, packet = query(name)
    try:
        if proto == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(TIMEOUT)
                s.sendto(packet, (server, 53))
                return answers(ident, s.recv(4096))
        with socket.create_connection((server, 53), timeout=TIMEOUT) as s:
            s.sendall(struct.pack(">H", len(packet)) + packet)
            length = struct.unpack(">H", s.recv(2))[0]
            reply = b""
            while len(reply) < length:
                reply += s.recv(length - len(reply))
            return answers(ident, reply)
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as error:
        return f"error: {error}"


def main(args):
    if args[0] == "tcp":
        print(json.dumps({"outcome": connect(args[1], args[2])}))
    elif args[0] == "dns":
        print(json.dumps({"outcome": dns(args[1], args[2], args[3])}))
    elif args[0] == "watch":
        end = time.monotonic() + float(args[3])
        while time.monotonic() < end:
            at = time.monotonic()
            outcome = connect(args[1], args[2], timeout=0.2)
            print(json.dumps({"at": at, "outcome": outcome}), flush=True)
            time.sleep(max(0.0, 0.05 - (time.monotonic() - at)))
    else:
        sys.exit(f"unknown probe {args[0]}")


main(sys.argv[1:])
