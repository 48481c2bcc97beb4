#!/usr/bin/env python3
"""Registry pull benchmark (issue 18): `gvlt pull` of a ~500 MB multi-layer image from a loopback
registry against `skopeo copy` of the same image to an OCI layout, in the same run.

  cold:  `gvlt pull REF --cache-dir EMPTY -o oci:NEW` vs `skopeo copy docker://REF oci:NEW`, each from
         nothing, alternating; the registry's files are in the page cache for both.
  warm:  `gvlt pull REF` again with the cache filled (one manifest request, no blob), and with -o too.
Targets: cold within 1.1x of skopeo's wall time; warm under 1 s. CPU seconds (user+sys of the
command and its children) are reported beside wall time, because the machine is shared.

The registry is Debian's docker-registry (CNCF distribution 2.8) on 127.0.0.1 with TLS from a CA made
here; the image is pushed with skopeo (setup, untimed). Layers are plain tar of incompressible data,
so neither tool spends its time in a decompressor.

Usage: bench/registry.py [--mib 500] [--layers 5] [--runs 3] [--work DIR] [--json]
       (build gvlt first: `swift build -c release --product gvlt`; a debug build is used only when
       there is no release one)
"""
import argparse, hashlib, io, json, os, resource, shutil, socket, statistics, subprocess, sys, tarfile, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GVLT = os.path.join(ROOT, ".build", "release", "gvlt")
if not os.path.exists(GVLT):
    GVLT = os.path.join(ROOT, ".build", "debug", "gvlt")


def sh(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def make_layout(path, mib, layers):
    """An OCI layout whose layers hold incompressible files; layer sizes fall off 1/(i+1)."""
    os.makedirs(os.path.join(path, "blobs", "sha256"))
    weights = [1 / (i + 1) for i in range(layers)]
    total = sum(weights)
    descriptors, diff_ids = [], []
    for index, weight in enumerate(weights):
        size = int((mib << 20) * weight / total)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            remaining, number = size, 0
            while remaining > 0:
                chunk = min(remaining, 16 << 20)
                info = tarfile.TarInfo("layer%d/file%03d.bin" % (index, number))
                info.size, info.mtime = chunk, 1700000000
                tar.addfile(info, io.BytesIO(os.urandom(chunk)))
                remaining -= chunk
                number += 1
        data = buffer.getvalue()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(os.path.join(path, "blobs", "sha256", digest[7:]), "wb") as f:
            f.write(data)
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": len(data)})
        diff_ids.append(digest)

    def put(obj):
        data = json.dumps(obj, sort_keys=True).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(os.path.join(path, "blobs", "sha256", digest[7:]), "wb") as f:
            f.write(data)
        return digest, len(data)

    config, config_size = put({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/bin/true"]},
                               "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    manifest, manifest_size = put({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                              "digest": config, "size": config_size}, "layers": descriptors})
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": manifest, "size": manifest_size,
                   "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return sum(d["size"] for d in descriptors)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(work):
    pki = os.path.join(work, "pki")
    certs = os.path.join(pki, "certs")
    os.makedirs(certs)
    with open(os.path.join(pki, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    for cmd in (
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=bench CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "2", "-extfile", "server.ext"]):
        sh(cmd, cwd=pki)
    shutil.copy(os.path.join(pki, "ca.crt"), certs)
    port = free_port()
    with open(os.path.join(work, "registry.yml"), "w") as f:
        f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n"
                "    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%d\n  secret: bench\n  tls:\n    certificate: %s\n    key: %s\n"
                % (os.path.join(work, "storage"), port, os.path.join(pki, "server.crt"), os.path.join(pki, "server.key")))
    log = open(os.path.join(work, "registry.log"), "w")
    process = subprocess.Popen(["docker-registry", "serve", os.path.join(work, "registry.yml")], stdout=log, stderr=log)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, port, certs


def timed(cmd, env=None):
    """Wall seconds and CPU seconds (user + sys) of one command and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (" ".join(cmd), result.stderr.decode(errors="replace")[-3000:]))
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=500)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="gvlt-bench-registry-")
    os.makedirs(work, exist_ok=True)
    registry = None
    try:
        layout = os.path.join(work, "image")
        if not os.path.exists(layout):
            print("generating a %d MiB image in %d layers…" % (args.mib, args.layers), file=sys.stderr)
            make_layout(layout, args.mib, args.layers)
        image_bytes = sum(os.path.getsize(os.path.join(layout, "blobs", "sha256", n))
                          for n in os.listdir(os.path.join(layout, "blobs", "sha256")))
        registry, port, certs = start_registry(work)
        ref = "127.0.0.1:%d/bench:latest" % port
        sh(["skopeo", "copy", "--quiet", "--dest-cert-dir", certs, "--preserve-digests", "oci:%s:latest" % layout,
            "docker://" + ref])
        print("gvlt: %s\nimage: %.1f MB in %d layers, registry %s" % (GVLT, image_bytes / 1e6, args.layers, ref),
              file=sys.stderr)
        env = dict(os.environ)
        env.pop("GVLT_CACHE_DIR", None)
        rounds = {"skopeo cold": [], "gvlt cold": [], "gvlt warm": [], "gvlt warm -o": []}
        for run in range(args.runs):
            for name in ("skopeo cold", "gvlt cold"):
                target = os.path.join(work, "out-%s-%d" % (name.split()[0], run))
                cache = os.path.join(work, "cache-%d" % run)
                shutil.rmtree(target, ignore_errors=True)
                shutil.rmtree(cache, ignore_errors=True)
                if name.startswith("skopeo"):
                    cmd = ["skopeo", "copy", "--quiet", "--src-cert-dir", certs, "docker://" + ref, "oci:%s:latest" % target]
                else:
                    cmd = [GVLT, "pull", ref, "--quiet", "--cert-dir", certs, "--cache-dir", cache, "-o", "oci:%s:latest" % target]
                rounds[name].append(timed(cmd, env))
                shutil.rmtree(target, ignore_errors=True)
            cache = os.path.join(work, "cache-%d" % run)
            rounds["gvlt warm"].append(timed([GVLT, "pull", ref, "--quiet", "--cert-dir", certs, "--cache-dir", cache], env))
            target = os.path.join(work, "out-warm-%d" % run)
            rounds["gvlt warm -o"].append(timed([GVLT, "pull", ref, "--quiet", "--cert-dir", certs, "--cache-dir", cache,
                                                "-o", "oci:%s:latest" % target], env))
            shutil.rmtree(target, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
        summary = {}
        for name, values in rounds.items():
            walls = [w for w, _ in values]
            cpus = [c for _, c in values]
            summary[name] = {"wall_min": min(walls), "wall_median": statistics.median(walls), "wall_max": max(walls),
                             "cpu_median": statistics.median(cpus)}
        ratio = summary["gvlt cold"]["wall_median"] / summary["skopeo cold"]["wall_median"]
        summary["cold ratio (gvlt / skopeo, median wall)"] = ratio
        summary["image bytes"] = image_bytes
        if args.json:
            json.dump(summary, sys.stdout, indent=2, sort_keys=True)
            print()
        else:
            for name in rounds:
                s = summary[name]
                print("%-14s wall %6.2f s median (%.2f–%.2f)  cpu %6.2f s" % (name, s["wall_median"], s["wall_min"],
                      s["wall_max"], s["cpu_median"]))
            print("cold: gvlt / skopeo = %.2fx (target <= 1.10x); warm: %.2f s (target < 1 s)"
                  % (ratio, summary["gvlt warm"]["wall_median"]))
    finally:
        if registry:
            registry.terminate()
            registry.wait()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
