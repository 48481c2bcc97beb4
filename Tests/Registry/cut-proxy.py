#!/usr/bin/env python3
"""A TCP proxy that cuts connections mid-stream, to test resumed downloads (integration tests).

Standard library only. It does not decrypt anything: bytes pass through unchanged, so it works in
front of a TLS server (the client still verifies the real server's certificate).

Usage:
    cut-proxy.py --listen-port PORT --target HOST:PORT --cut-after BYTES [--cuts N] [--log FILE]

It listens on 127.0.0.1:PORT (0 picks a free port) and prints one line `listening on PORT` once it
accepts connections. Every accepted connection is piped both ways to TARGET. The first N connections
(default 1) whose server->client byte count would exceed BYTES get exactly BYTES server->client bytes
forwarded, then (after a short pause so the client can read them) both sockets are closed, the
client's with SO_LINGER 0 so it receives a TCP RST instead of an orderly end of stream. A connection
that never carries more than BYTES towards the client is not cut and does not use up a cut. Later
connections pass untouched.

Each connection (with its byte counts both ways and whether it was cut) and each cut is logged as one
line to --log FILE (appended, flushed per line), else stderr.
"""
import argparse
import datetime
import itertools
import selectors
import socket
import struct
import sys
import threading
import time

CHUNK = 64 * 1024
PAUSE_BEFORE_RESET = 0.2


class Proxy:
    def __init__(self, args):
        host, _, port = args.target.rpartition(":")
        self.target = (host.strip("[]") or "127.0.0.1", int(port))
        self.cut_after = args.cut_after
        self.cuts_left = args.cuts
        self.lock = threading.Lock()
        self.log_file = open(args.log, "a", encoding="utf-8") if args.log else None
        self.ids = itertools.count(1)

    def log(self, line):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self.lock:
            out = self.log_file or sys.stderr
            out.write(f"{stamp} {line}\n")
            out.flush()

    def take_cut(self):
        with self.lock:
            if self.cuts_left > 0:
                self.cuts_left -= 1
                return True
            return False

    def handle(self, client, addr):
        conn = next(self.ids)
        up = down = 0
        cut = False
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError as e:
            self.log(f"conn {conn} from {addr[0]}:{addr[1]}: connect to {self.target[0]}:{self.target[1]} failed: {e}")
            reset(client)
            return
        server.settimeout(None)
        client.settimeout(None)
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.log(f"conn {conn} from {addr[0]}:{addr[1]} open")
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, "up")
        sel.register(server, selectors.EVENT_READ, "down")
        open_dirs = {"up", "down"}
        # When this connection may still be cut: None = undecided, True = it will be, False = never.
        armed = None
        try:
            while open_dirs and not cut:
                for key, _ in sel.select():
                    direction = key.data
                    src, dst = (client, server) if direction == "up" else (server, client)
                    try:
                        data = src.recv(CHUNK)
                    except (ConnectionError, OSError):
                        data = b""
                    if not data:
                        sel.unregister(src)
                        open_dirs.discard(direction)
                        try:
                            dst.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        continue
                    if direction == "up":
                        dst.sendall(data)
                        up += len(data)
                        continue
                    if armed is None and down + len(data) > self.cut_after:
                        armed = self.take_cut()
                    if armed:
                        keep = self.cut_after - down
                        if keep > 0:
                            dst.sendall(data[:keep])
                            down += keep
                        cut = True
                        break
                    dst.sendall(data)
                    down += len(data)
        except OSError as e:
            self.log(f"conn {conn}: error {e!r}")
        finally:
            sel.close()
            if cut:
                self.log(f"conn {conn}: CUT after {down} server->client bytes (client->server {up})")
                time.sleep(PAUSE_BEFORE_RESET)
                reset(client)
                reset(server)
            else:
                client.close()
                server.close()
            self.log(f"conn {conn} closed: server->client {down} bytes, client->server {up} bytes, "
                     f"{'cut' if cut else 'not cut'}")


def reset(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--listen-port", type=int, required=True)
    p.add_argument("--target", required=True, help="HOST:PORT")
    p.add_argument("--cut-after", type=int, required=True, help="server->client bytes before the cut")
    p.add_argument("--cuts", type=int, default=1, help="how many connections to cut (default 1)")
    p.add_argument("--log")
    args = p.parse_args()
    proxy = Proxy(args)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.listen_port))
    listener.listen(64)
    print(f"listening on {listener.getsockname()[1]}", flush=True)
    try:
        while True:
            client, addr = listener.accept()
            threading.Thread(target=proxy.handle, args=(client, addr), daemon=True).start()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
