#!/usr/bin/env python3
"""A Docker-Hub-style bearer token server for distribution's `auth: token:` mode (integration tests).

Standard library only, plus the `openssl` command line tool (used to make the RS256 signature).

Usage:
    token-server.py --port PORT --cert CERT.pem --key KEY.pem \
        --signing-key SIGNKEY.pem --signing-cert SIGNCERT.pem \
        --issuer ISSUER --service SERVICE --users USER:PASS[,USER:PASS...] \
        [--pull-only USER[,USER...]] [--log FILE]

It serves HTTPS on 127.0.0.1:PORT with CERT/KEY and prints one line `listening on PORT` (the real port
when PORT is 0) once it accepts connections.

Endpoints (both at /token):
  GET  /token?service=S&scope=repository:NAME:pull,push[&scope=...]
       needs `Authorization: Basic` for one of --users. 401 without it or with a wrong password,
       400 when `service` is missing or is not SERVICE. Answers
       {"token": JWT, "access_token": JWT, "expires_in": 300, "issued_at": RFC3339}.
  POST /token  (OAuth2, form encoded, as docker and containers/image send it; skopeo sends the
       body with Transfer-Encoding: chunked, which is handled)
       grant_type=refresh_token&refresh_token=T&service=S&scope=...&client_id=...
           T must be `refresh-<USER>` for a configured USER (so an auth file may say
           `"identitytoken": "refresh-alice"`); a bad token gives 401.
       grant_type=password&username=U&password=P&service=S&scope=...&client_id=...
       With access_type=offline the answer also carries "refresh_token": "refresh-<USER>"
       (what `docker login` stores as the identity token).

The token grants exactly the actions asked for on each requested resource (`type:name:actions`,
several scopes may be given as repeated parameters or space separated). Users named in --pull-only
get only the `pull` action, whatever they ask for (to test refused pushes).

JWT: RS256, header {"typ":"JWT","alg":"RS256","x5c":[base64 DER of SIGNCERT]}, claims iss, sub, aud,
exp, nbf, iat, jti, access.

Trust (what distribution's `rootcertbundle` must contain): distribution 2.8 takes the x5c chain from
the token header and verifies x5c[0] (SIGNCERT) with Go's x509 Verify against the certificates in
`rootcertbundle` as roots (x5c[1:] as intermediates; any extended key usage is accepted). Either
  * SIGNCERT is self-signed and `rootcertbundle` is SIGNCERT itself (a certificate that is in the root
    pool verifies as a chain of one; even basicConstraints CA:FALSE is accepted), or
  * SIGNCERT is signed by a CA (basicConstraints CA:TRUE) and `rootcertbundle` holds that CA.
Both were checked against Debian's docker-registry 2.8.2 (a token whose SIGNCERT does not chain to
the bundle gets 401 and the registry logs "unable to verify certificate chain: x509: certificate
signed by unknown authority"). The signing key must be an RSA key (RS256);
`openssl req -x509 -newkey rsa:2048 -nodes -keyout sign.key -out sign.crt -subj /CN=token
-days 3650` makes a suitable self-signed pair. The issuer must equal the registry's `issuer` and
SERVICE its `service` (the JWT `aud`).

Each request is logged as one line (time, method, path, status, user agent, the scheme of the
Authorization header only (never its secret), the POST grant_type and the user a token was issued
to) to --log FILE (appended, flushed per line), else stderr.
"""
import argparse
import base64
import binascii
import datetime
import http.server
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

# Run as a script from anywhere: the shared module lies next to this file. No __pycache__ there,
# as the tests run this from the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loopback  # noqa: E402

EXPIRES_IN = 300


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pem_to_der(path):
    with open(path, "r", encoding="ascii") as f:
        text = f.read()
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)
    if not m:
        sys.exit(f"token-server: no certificate in {path}")
    return base64.b64decode("".join(m.group(1).split()))


class Config:
    def __init__(self, args):
        self.issuer = args.issuer
        self.service = args.service
        self.signing_key = args.signing_key
        self.x5c = [base64.b64encode(pem_to_der(args.signing_cert)).decode("ascii")]
        self.users = {}
        for item in args.users.split(","):
            if not item:
                continue
            user, sep, password = item.partition(":")
            if not sep:
                sys.exit(f"token-server: --users entry without ':': {item!r}")
            self.users[user] = password
        self.pull_only = set(u for u in (args.pull_only or "").split(",") if u)

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        proc = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.signing_key],
                              input=signing_input.encode("ascii"), capture_output=True)
        if proc.returncode != 0 or not proc.stdout:
            raise RuntimeError("openssl dgst -sign failed: " + proc.stderr.decode(errors="replace"))
        return signing_input + "." + b64url(proc.stdout)


def parse_scopes(values):
    """['repository:a/b:pull,push repository:c:pull', ...] -> [{'type', 'name', 'actions'}] merged."""
    order, access = [], {}
    for value in values:
        for scope in value.split():
            kind, sep, rest = scope.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not sep or not sep2 or not kind or not name:
                continue
            key = (kind, name)
            if key not in access:
                order.append(key)
                access[key] = []
            for action in actions.split(","):
                if action and action not in access[key]:
                    access[key].append(action)
    return [{"type": k, "name": n, "actions": access[(k, n)]} for (k, n) in order]


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "gvlt-test-token-server/1"
    protocol_version = "HTTP/1.1"
    timeout = 60

    def log_message(self, format, *args):  # silence the default stderr log; we log in _reply
        pass

    @property
    def cfg(self):
        return self.server.cfg

    def _reply(self, status, body, extra_headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        auth = self.headers.get("Authorization")
        scheme = auth.split(None, 1)[0] if auth else "-"
        ua = self.headers.get("User-Agent", "-")
        note = getattr(self, "note", "")
        self.server.log(f'{self.command} {self.path} {status} ua="{ua}" auth={scheme}{note}')

    def _unauthorized(self, detail):
        self._reply(401, {"details": detail},
                    [("WWW-Authenticate", 'Basic realm="gvlt-test-token-server"')])

    def _token_response(self, user, scopes, oauth, offline):
        self.note += f" user={user}"
        granted = []
        for res in parse_scopes(scopes):
            actions = res["actions"]
            if user in self.cfg.pull_only:
                actions = [a for a in actions if a == "pull"]
            granted.append({"type": res["type"], "name": res["name"], "actions": actions})
        now = int(time.time())
        claims = {
            "iss": self.cfg.issuer,
            "sub": user,
            "aud": self.cfg.service,
            "exp": now + EXPIRES_IN,
            "nbf": now,
            "iat": now,
            "jti": binascii.hexlify(os.urandom(16)).decode(),
            "access": granted,
        }
        try:
            token = self.cfg.sign(claims)
        except Exception as e:  # noqa: BLE001
            self._reply(500, {"details": str(e)})
            return
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"token": token, "access_token": token, "expires_in": EXPIRES_IN, "issued_at": issued}
        if oauth:
            body["scope"] = " ".join(scopes)
            if offline:
                body["refresh_token"] = "refresh-" + user
        self._reply(200, body)

    def _check_service(self, params):
        # Required, as GitLab's token endpoint requires it: a client that drops the challenge's
        # service (by splitting the header at its commas) must fail here.
        service = params.get("service", [None])[0]
        if service != self.cfg.service:
            self._reply(400, {"details": f"unknown or missing service {service!r}"})
            return False
        return True

    def do_GET(self):
        self.note = ""
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            self._reply(404, {"details": "not found"})
            return
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if not self._check_service(params):
            return
        auth = self.headers.get("Authorization")
        if not auth:
            self._unauthorized("credentials required")
            return
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "basic":
            self._unauthorized("basic credentials required")
            return
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, sep, password = "", "", ""
        if not sep or user not in self.cfg.users or self.cfg.users[user] != password:
            self._unauthorized("invalid credentials")
            return
        self._token_response(user, params.get("scope", []), oauth=False, offline=False)

    def _read_body(self):
        # containers/image (skopeo) sends its OAuth2 form with Transfer-Encoding: chunked.
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_POST(self):
        self.note = ""
        url = urllib.parse.urlsplit(self.path)
        raw = self._read_body()
        if url.path != "/token":
            self._reply(404, {"details": "not found"})
            return
        form = urllib.parse.parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
        first = lambda k: form.get(k, [""])[0]  # noqa: E731
        self.note = f" grant_type={first('grant_type') or '-'}"
        if not self._check_service(form):
            return
        grant = first("grant_type")
        offline = first("access_type") == "offline"
        if grant == "refresh_token":
            token = first("refresh_token")
            user = token[len("refresh-"):] if token.startswith("refresh-") else None
            if user is None or user not in self.cfg.users:
                self._unauthorized("invalid refresh token")
                return
        elif grant == "password":
            user, password = first("username"), first("password")
            if user not in self.cfg.users or self.cfg.users[user] != password:
                self._unauthorized("invalid credentials")
                return
        else:
            self._reply(400, {"error": "unsupported_grant_type", "details": f"grant_type {grant!r}"})
            return
        self._token_response(user, form.get("scope", []), oauth=True, offline=offline)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--signing-key", required=True)
    p.add_argument("--signing-cert", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--users", required=True)
    p.add_argument("--pull-only", default="")
    p.add_argument("--log")
    args = p.parse_args()
    cfg = Config(args)
    server = loopback.LoopbackServer(args.port, Handler, args.cert, args.key, args.log)
    server.cfg = cfg
    loopback.serve(server)


if __name__ == "__main__":
    main()
