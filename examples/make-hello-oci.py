#!/usr/bin/env python3
"""Writes examples/hello-oci: a small two-layer OCI image layout (gzip layers), byte-for-byte the same
on every run. It is what the README's quick start exports. Regenerate with:
    python3 examples/make-hello-oci.py examples/hello-oci
"""
import gzip, hashlib, io, json, os, sys, tarfile

MTIME = 1700000000

def member(tar, name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime, info.linkname = kind, mode, uid, gid, MTIME, linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

def layer(build):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        build(tar)
    plain = raw.getvalue()
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(plain)
    return plain, packed.getvalue()

def base(tar):
    for d in ["bin", "etc", "usr", "usr/share", "usr/share/hello", "tmp"]:
        member(tar, d, tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
    member(tar, "bin/hello", data=b"#!/bin/sh\necho hello from gvlt\n", mode=0o755)
    member(tar, "etc/motd", data=b"old message\n")
    member(tar, "usr/share/hello/greeting.txt", data=b"hello, world\n")
    member(tar, "usr/share/hello/obsolete.txt", data=b"to be deleted\n")

def top(tar):
    member(tar, "etc/motd", data=b"welcome to a gvlt image\n")
    member(tar, "usr/share/hello/.wh.obsolete.txt")
    member(tar, "usr/share/hello/greeting-link", tarfile.SYMTYPE, linkname="greeting.txt")
    member(tar, "bin/hello-again", tarfile.LNKTYPE, linkname="bin/hello")
    member(tar, "home", tarfile.DIRTYPE, mode=0o755)
    member(tar, "home/prover", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1000)

def main(out):
    os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(f"{out}/blobs/sha256/{digest}", "wb") as f:
            f.write(data)
        return "sha256:" + digest, len(data)
    layers, diff_ids = [], []
    for build in (base, top):
        plain, packed = layer(build)
        digest, size = put(packed)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})
        diff_ids.append("sha256:" + hashlib.sha256(plain).hexdigest())
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": ["/bin/hello"], "Cmd": ["--greet"], "Env": ["PATH=/bin:/usr/bin", "GREETING=hi"],
                         "WorkingDir": "/home/prover", "User": "1000:1000"},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_digest, config_size = put(json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
                "layers": layers}
    manifest_digest, manifest_size = put(json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": manifest_digest, "size": manifest_size,
             "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    with open(f"{out}/index.json", "w") as f:
        json.dump(index, f, sort_keys=True)
    with open(f"{out}/oci-layout", "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "hello-oci"))
