#!/usr/bin/env python3
"""A TLS reverse proxy that redirects blob GETs to the registry behind it (integration tests).

Standard library only. It stands for a registry, such as Docker Hub, that answers a blob GET with a
redirect to blob storage on another origin: here the "blob storage" is the real registry itself.

Usage:
    redirect-front.py --port PORT --target https://HOST:REGPORT --cafile CA.crt \
        --cert CERT.pem --key KEY.pem [--log FILE]

It serves HTTPS (HTTP/1.1, keep-alive) on 127.0.0.1:PORT with CERT/KEY and prints one line
`listening on PORT` (the real port when PORT is 0) once it accepts connections.

  * GET and HEAD of /v2/<name>/blobs/<digest> (name may contain slashes, the query is ignored for
    the match): `307 Temporary Redirect` with `Location: <target><same path and query>` and an
    empty body. The redirected request goes straight to the target, not through this front.
  * Every other request, any method: forwarded to TARGET (https:// is verified against --cafile)
    over a fresh connection, with the same method, path and query, request headers (but Host, set
    to TARGET's host:port, and the hop-by-hop ones) and body (Content-Length or chunked, streamed).
    The answer's status, headers (less the hop-by-hop ones; Content-Length, Docker-Content-Digest,
    WWW-Authenticate, Location, Range and Content-Range pass unchanged, so 401 challenges and
    upload Locations still name the target's realm and URLs) and body are relayed back. A body
    of unknown length is relayed chunked. If TARGET cannot be reached: 502.

Each request is logged as one line (time, method, path, status, `redirected` or `forwarded`, the
Range header if any, and `auth=yes|no`: whether an Authorization header was present, never its
value) to --log FILE (appended, flushed per line), else stderr.
"""
import argparse
import http.client
import http.server
import os
import re
import ssl
import sys
import urllib.parse

# Run as a script from anywhere: the shared module lies next to this file. No __pycache__ there,
# as the tests run this from the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loopback  # noqa: E402

CHUNK = 64 * 1024
UPSTREAM_TIMEOUT = 60

# Distribution spec: /v2/<name>/blobs/<digest>, digest = algorithm ":" encoded.
BLOB_PATH = re.compile(r"/v2/(?P<name>.+)/blobs/(?P<digest>[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)")

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
}


def hop_by_hop(headers):
    """The hop-by-hop header names (lower case) of a message, those named in Connection included."""
    names = set(HOP_BY_HOP)
    for value in headers.get_all("Connection") or []:
        names.update(t.strip().lower() for t in value.split(",") if t.strip())
    return names


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "gvlt-test-redirect-front/1"
    protocol_version = "HTTP/1.1"
    timeout = 60

    def log_message(self, format, *args):
        pass

    def log_line(self, status, how, note=""):
        rng = self.headers.get("Range")
        extra = f' range="{rng}"' if rng else ""
        auth = "yes" if self.headers.get("Authorization") is not None else "no"
        self.server.log(f"{self.command} {self.path} {status} {how}{extra} auth={auth}{note}")

    def do_GET(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if self.command in ("GET", "HEAD") and BLOB_PATH.fullmatch(path):
            self.redirect()
        else:
            self.forward()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def redirect(self):
        # A redirect says nothing about the request body; read it so the connection stays usable.
        if not self.skip_body():
            self.close_connection = True
        location = self.server.target_base + self.path
        self.send_response(307, "Temporary Redirect")
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.log_line(307, "redirected", f" -> {location}")

    def skip_body(self):
        try:
            for _ in self.body_chunks():
                pass
            return True
        except (ValueError, OSError):
            return False

    def body_chunks(self):
        """The request body, as it arrives (chunked framing removed). ValueError if it is malformed."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(1024)
                if not line.endswith(b"\n"):
                    raise ValueError("truncated chunk size line")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass  # trailer fields: dropped
                    return
                left = size
                while left > 0:
                    data = self.rfile.read(min(CHUNK, left))
                    if not data:
                        raise ValueError("truncated chunk")
                    left -= len(data)
                    yield data
                if self.rfile.readline(8) not in (b"\r\n", b"\n"):
                    raise ValueError("missing CRLF after chunk")
        elif self.headers.get("Content-Length") is not None:
            left = int(self.headers["Content-Length"])
            while left > 0:
                data = self.rfile.read(min(CHUNK, left))
                if not data:
                    raise ValueError("truncated body")
                left -= len(data)
                yield data

    def forward(self):
        srv = self.server
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        chunked_in = "chunked" in te
        drop = hop_by_hop(self.headers) | {"host", "expect"}
        if chunked_in:
            drop.add("content-length")
        conn = srv.connect()
        sent_response = False
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", srv.target_host)
            for k, v in self.headers.items():
                if k.lower() not in drop:
                    conn.putheader(k, v)
            if chunked_in:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            try:
                for data in self.body_chunks():
                    conn.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked_in else data)
            except ValueError as e:
                self.close_connection = True
                raise OSError(f"bad request body: {e}") from e
            if chunked_in:
                conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()

            drop_out = hop_by_hop(resp.msg)
            no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
            length = resp.getheader("Content-Length")
            rechunk = not no_body and (resp.chunked or length is None)
            self.send_response_only(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in drop_out:
                    self.send_header(k, v)
            if rechunk:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sent_response = True
            if not no_body:
                while True:
                    data = resp.read(CHUNK)
                    if not data:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if rechunk else data)
                if rechunk:
                    self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self.log_line(resp.status, "forwarded",
                          f" location={resp.getheader('Location')}" if resp.getheader("Location") else "")
        except (OSError, http.client.HTTPException) as e:
            self.close_connection = True
            if sent_response:
                self.log_line("-", "forwarded", f" relay failed: {e!r}")
                return
            body = f"redirect-front: upstream error: {e}\n".encode()
            try:
                self.send_response(502)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except OSError:
                pass
            self.log_line(502, "forwarded", f" upstream error: {e!r}")
        finally:
            conn.close()


class Server(loopback.LoopbackServer):
    def __init__(self, port, target, cafile, cert, key, log_path):
        u = urllib.parse.urlsplit(target)
        if u.scheme not in ("http", "https") or not u.hostname or (u.path not in ("", "/")):
            sys.exit(f"redirect-front: --target must be http(s)://HOST:PORT, not {target}")
        self.target_base = f"{u.scheme}://{u.netloc}"
        self.target_host = u.netloc
        self.target_addr = (u.hostname, u.port or (443 if u.scheme == "https" else 80))
        self.upstream_context = None
        if u.scheme == "https":
            self.upstream_context = ssl.create_default_context(cafile=cafile)
            self.upstream_context.set_alpn_protocols(["http/1.1"])
        super().__init__(port, Handler, cert, key, log_path)

    def connect(self):
        host, port = self.target_addr
        if self.upstream_context is None:
            return http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
        return http.client.HTTPSConnection(host, port, timeout=UPSTREAM_TIMEOUT, context=self.upstream_context)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--target", required=True, help="https://HOST:PORT of the real registry")
    p.add_argument("--cafile", help="CA bundle to verify the target with (default: system CAs)")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--log")
    args = p.parse_args()
    server = Server(args.port, args.target, args.cafile, args.cert, args.key, args.log)
    loopback.serve(server)


if __name__ == "__main__":
    main()
