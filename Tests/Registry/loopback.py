"""What the HTTP test servers next to this file (token-server.py, file-server.py, redirect-front.py)
have in common. Standard library only.

  * LoopbackServer(port, handler, cert=None, key=None, log_path=None): a threading HTTP server on
    127.0.0.1:PORT (0 picks a free port), HTTPS when CERT is given (KEY may be omitted when CERT
    holds the key too), else plain HTTP. Its log(line) writes `TIME LINE` to LOG_PATH (appended,
    flushed per line), else stderr. TLS and connection errors of a client are logged as one line
    instead of a traceback.
  * tls_context(cert, key): the server side TLS context it uses.
  * serve(server): prints `listening on PORT` (the real port) and serves until interrupted.
"""
import datetime
import http.server
import socket
import ssl
import sys
import threading


def tls_context(cert, key=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key or None)
    # The handlers speak HTTP/1.1 alone, so that is all a client offering h2 as well may agree on.
    context.set_alpn_protocols(["http/1.1"])
    return context


class LoopbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Tests start and stop servers quickly; a port in TIME_WAIT must not make the next bind fail.
    allow_reuse_address = True

    def __init__(self, port, handler, cert=None, key=None, log_path=None):
        self.context = tls_context(cert, key) if cert else None
        self.log_lock = threading.Lock()
        self.log_file = open(log_path, "a", encoding="utf-8") if log_path else None
        super().__init__(("127.0.0.1", port), handler)

    def log(self, line):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        # Handlers run in their own threads: the lock keeps each line whole, and the flush lets a
        # test read the log while the server still runs.
        with self.log_lock:
            out = self.log_file or sys.stderr
            out.write(f"{stamp} {line}\n")
            out.flush()

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.context is None:
            return sock, addr
        # The handshake runs lazily in the handler's thread, so a stuck client cannot block accept().
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        # Clients that fail the handshake or hang up are expected in these tests: one log line, not
        # a traceback on stderr.
        if isinstance(exc, (ssl.SSLError, ConnectionError, socket.timeout)):
            self.log(f"connection error from {client_address[0]}:{client_address[1]}: {exc!r}")
            return
        super().handle_error(request, client_address)


def serve(server):
    # Tests wait for this line (and read the port from it) before they connect.
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
