#!/usr/bin/env python3
"""A static file server for task-URL tests (integration tests). Standard library only.

Usage:
    file-server.py --port PORT --root DIR [--cert CERT.pem --key KEY.pem] [--log FILE]

Serves the regular files under DIR (never anything outside it, symlinks included) over HTTP on
127.0.0.1:PORT, or HTTPS when --cert/--key are given. PORT 0 picks a free port; one line
`listening on PORT` is printed once it accepts connections.

GET and HEAD. Missing files and directories: 404. Every file answer carries Content-Length,
Accept-Ranges: bytes, ETag (the quoted sha256 hex of the content) and Last-Modified.
  * If-None-Match matching the ETag (or `*`): 304 with no body.
  * Range: bytes=N-, bytes=N-M or bytes=-SUFFIX (a single range): 206 with Content-Range;
    a range starting at or past the end: 416 with `Content-Range: bytes */SIZE`.
    If-Range with a different ETag/date makes it a full 200 answer. Other Range forms are ignored.
Each request is logged as one line (time, method, path, status, Range header if any) to --log FILE
(appended, flushed per line), else stderr.
"""
import argparse
import email.utils
import hashlib
import http.server
import os
import re
import sys
import urllib.parse

# Run as a script from anywhere: the shared module lies next to this file. No __pycache__ there,
# as the tests run this from the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loopback  # noqa: E402

CHUNK = 64 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "gvlt-test-file-server/1"
    protocol_version = "HTTP/1.1"
    timeout = 60

    def log_message(self, format, *args):
        pass

    def log_line(self, status):
        rng = self.headers.get("Range")
        extra = f' range="{rng}"' if rng else ""
        self.server.log(f"{self.command} {self.path} {status}{extra}")

    def simple(self, status, text, headers=()):
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.log_line(status)

    def resolve(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        root = self.server.root
        full = os.path.realpath(os.path.join(root, path.lstrip("/")))
        if full != root and not full.startswith(root + os.sep):
            return None
        return full if os.path.isfile(full) else None

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        full = self.resolve()
        if full is None:
            self.simple(404, "not found")
            return
        st = os.stat(full)
        size = st.st_size
        h = hashlib.sha256()
        with open(full, "rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                h.update(chunk)
        etag = '"' + h.hexdigest() + '"'
        last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        common = [("ETag", etag), ("Last-Modified", last_modified), ("Accept-Ranges", "bytes")]

        inm = self.headers.get("If-None-Match")
        if inm is not None:
            tags = [t.strip() for t in inm.split(",")]
            if "*" in tags or etag in tags or ("W/" + etag) in tags:
                self.send_response(304)
                for k, v in common:
                    self.send_header(k, v)
                self.end_headers()
                self.log_line(304)
                return

        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and if_range and if_range.strip() not in (etag, last_modified):
            rng = None
        if rng:
            m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", rng)
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    if m.group(2):
                        end = min(int(m.group(2)), size - 1)
                    if start >= size or (m.group(2) and int(m.group(2)) < start):
                        self.simple(416, "range not satisfiable", [("Content-Range", f"bytes */{size}")] + common)
                        return
                else:
                    suffix = int(m.group(2))
                    if suffix == 0:
                        self.simple(416, "range not satisfiable", [("Content-Range", f"bytes */{size}")] + common)
                        return
                    start = max(0, size - suffix)
                status = 206
        length = end - start + 1 if size > 0 else 0
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        for k, v in common:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            with open(full, "rb") as f:
                f.seek(start)
                left = length
                while left > 0:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
        self.log_line(status)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--log")
    args = p.parse_args()
    if not os.path.isdir(args.root):
        sys.exit(f"file-server: --root {args.root} is not a directory")
    server = loopback.LoopbackServer(args.port, Handler, args.cert, args.key, args.log)
    server.root = os.path.realpath(args.root)
    loopback.serve(server)


if __name__ == "__main__":
    main()
