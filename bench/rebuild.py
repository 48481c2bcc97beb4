#!/usr/bin/env python3
"""Incremental linuxvm builds (issue 19): what a rebuild costs against a cold build, all measured in
the same run, on two trees: the 320 MiB synthetic tree of bench/linuxvm.py and a real Debian root
made with mmdebstrap (python3 and a few libraries, 300 MB or more).

Rounds, per tree (medians of --runs):
  floor      tar2sqfs alone on a tar of the same tree (same compressor, block size and -j), run
             right before and right after the cold build and again after the tool and --no-cache
             builds: each of those is compared with the mean of the two floors around it, in its
             own run, since the shared machine's speed drifts by several percent within minutes
  tool       `gvlt build --squashfs-writer tool --no-cache` (the tar2sqfs pipe)
  cold       `gvlt build` with the build caches emptied first (native writer; it fills the caches)
  nocache    `gvlt build --no-cache` (native writer, caches neither read nor written)
  changed    `gvlt build` after one 10 MB program (usr/bin/prover) was replaced by another build of it
  unchanged  `gvlt build` again, nothing changed
Targets: changed <= 10% of cold, unchanged <= 2 s, cold <= 1.05x floor, and every image identical to
a --no-cache build of the same inputs. Wall and CPU seconds (user + system, children included) are
reported, since the machine is shared.

And a Nanos build of a 200 MiB tree, with the rebuild after its 10 MB program changed (Nanos has no
build cache: it is recorded to show it does not need one).

Usage: bench/rebuild.py [--runs 3] [--work DIR] [--trees synthetic,debian,nanos] [--json]
       (run scripts/build-init and `swift build -c release --product gvlt` first)
"""
import argparse, hashlib, json, os, random, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from linuxvm import make_tree  # noqa: E402

GVLT = os.path.join(ROOT, ".build", "release", "gvlt")
INIT = os.path.join(ROOT, ".build", "gvlt-init")


def log(text):
    print(text, file=sys.stderr, flush=True)


def measured(cmd, **kw):
    """Runs cmd; returns (wall seconds, CPU seconds of the children)."""
    before = os.times()
    start = time.monotonic()
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    wall = time.monotonic() - start
    after = os.times()
    if result.returncode != 0:
        raise SystemExit("failed: %s\n%s" % (" ".join(cmd), result.stderr.decode(errors="replace")[-3000:]))
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, result.stdout


def program_bytes(seed, size=10 << 20):
    """A 10 MB "program": code-like records plus a data section, different per seed and size."""
    rng = random.Random(seed)
    opcodes = bytes(rng.randrange(256) for _ in range(64))
    out = bytearray()
    while len(out) < size * 3 // 4:
        out += bytes((opcodes[rng.randrange(64)], rng.randrange(16), 0, rng.randrange(256))) * rng.randint(1, 4)
    out += rng.randbytes(size - len(out))
    return bytes(out[:size])


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def debian_tree(path):
    if os.path.isdir(path):
        return
    log("making a Debian root with mmdebstrap (once; kept in the work dir)")
    suite = subprocess.run(
        ["sh", "-c", ". /etc/os-release && echo $VERSION_CODENAME"], capture_output=True, text=True).stdout.strip()
    subprocess.run(
        ["mmdebstrap", "--variant=minbase", "--include=python3,python3-numpy,python3-cryptography,python3-pil,python3-requests,python3-yaml,libpython3.11-dev",
         "--quiet", suite or "bookworm", path + ".tmp"], check=True)
    os.rename(path + ".tmp", path)


def bench_tree(name, tree, work, runs, compressor):
    cache = os.path.join(work, "cache-" + name)
    os.makedirs(cache, exist_ok=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH="0")
    prover = os.path.join(tree, "usr", "bin", "prover")
    os.makedirs(os.path.dirname(prover), exist_ok=True)
    with open(prover, "wb") as f:
        f.write(program_bytes(0))
    os.chmod(prover, 0o755)
    tar = os.path.join(work, name + ".tar")
    image = os.path.join(work, name + ".img")

    def build(*extra, output=image):
        cmd = [GVLT, "build", "--backend", "linuxvm", "--rootfs-dir", tree, "-o", output, "--force", "-q",
               "--json", "--init-binary", INIT, "--cache-dir", cache, "--entrypoint", "/usr/bin/prover",
               "--squashfs-compressor", compressor] + list(extra)
        wall, cpu, out = measured(cmd, env=env)
        return wall, cpu, json.loads(out)

    def warm(path):
        """Reads every file under path (or the file): each timed command starts with its input in
        the page cache. The floor reads a tar written moments before, while the tree was last read
        a minute or more earlier, and this machine's kernel pages out what has not been touched for
        about a minute (DAMON reclaim): without this, gvlt's first pass over the tree waited on the
        disk (0.6 s more in a cold Debian build) where tar2sqfs read from memory."""
        paths = [path] if os.path.isfile(path) else (
            os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)
        for p in paths:
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    while f.read(1 << 20):
                        pass

    def empty_caches():
        measured([GVLT, "cache", "prune", "--max-size", "0", "--cache-dir", cache, "-q"])

    # Warm-up: fetches the kernel into the cache (which --no-cache keeps using) and the page cache.
    build("--no-cache")
    rows = {k: [] for k in ["floor", "tool", "cold", "nocache", "changed", "unchanged"]}
    # Each run's ratio against the floors taken around it; their medians are the ratios reported.
    ratios = {k: [] for k in ["cold", "tool", "nocache"]}
    packing = []  # the cold build's own SquashFS step, from its report
    identical = True
    for run in range(runs):
        with open(prover, "wb") as f:
            f.write(program_bytes(0))
        subprocess.run([GVLT, "export", "--rootfs-dir", tree, "-o", tar, "--force", "-q"], check=True)
        floor_out = os.path.join(work, name + ".floor.sqfs")
        jobs = str(os.cpu_count())
        # Emptied well before the cold round: ext4 scans past inodes freed in the last seconds when it
        # allocates new ones, a cost of emptying, not of a cold build.
        empty_caches()
        def floor():
            warm(tar)
            return measured(["tar2sqfs", "-q", "-f", "-c", compressor, "-j", jobs, floor_out],
                            stdin=open(tar, "rb"))[:2]
        first = floor()
        warm(tree)
        wall, cpu, report = build()
        rows["cold"].append((wall, cpu))
        packing.append(sum(s["seconds"] for s in report["steps"] if s["name"].startswith("packing the root")))
        cold_sha = report["sha256"]
        second = floor()
        ratios["cold"].append(wall / ((first[0] + second[0]) / 2))
        warm(tree)
        wall, cpu, _ = build("--squashfs-writer", "tool", "--no-cache")
        rows["tool"].append((wall, cpu))
        tool_wall = wall
        warm(tree)
        wall, cpu, report = build("--no-cache", output=image + ".ref")
        rows["nocache"].append((wall, cpu))
        identical &= report["sha256"] == cold_sha
        third = floor()
        ratios["tool"].append(tool_wall / ((second[0] + third[0]) / 2))
        ratios["nocache"].append(wall / ((second[0] + third[0]) / 2))
        # One program rebuilt: new bytes and a new size, as a recompile gives.
        with open(prover, "wb") as f:
            f.write(program_bytes(run + 1, (10 << 20) + 4096 * (run + 1) + 123))
        warm(tree)
        wall, cpu, report = build()
        rows["changed"].append((wall, cpu))
        blocks = (report["cache"].get("blocksReused"), report["cache"].get("blocksCompressed"))
        _, _, check = build("--no-cache", output=image + ".ref")
        identical &= report["sha256"] == check["sha256"]
        warm(tree)
        wall, cpu, report = build()
        rows["unchanged"].append((wall, cpu))
        identical &= report["sha256"] == check["sha256"] and report["cache"]["root"] == "hit"
        rows["floor"].append(tuple(statistics.mean(f[i] for f in (first, second, third)) for i in (0, 1)))
        log("%s run %d: %s cold/floor %.3f" % (
            name, run + 1, {k: "%.2fs" % v[-1][0] for k, v in rows.items()}, ratios["cold"][-1]))
    os.remove(tar)
    median = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
    size = int(subprocess.run(["du", "-sb", tree], capture_output=True, text=True).stdout.split()[0])
    files = sum(len(f) + len(d) for _, d, f in os.walk(tree))
    return {
        "tree": name, "bytes": size, "entries": files, "runs": runs, "compressor": compressor,
        "median": {k: {"wall": round(w, 2), "cpu": round(c, 2)} for k, (w, c) in median.items()},
        "changed_blocks_reused_compressed": blocks,
        "cold_floor_per_run": [round(r, 3) for r in ratios["cold"]],
        "ratios": {
            "changed/cold": round(median["changed"][0] / median["cold"][0], 3),
            "cold/floor": round(statistics.median(ratios["cold"]), 3),
            "cold packing step/floor": round(statistics.median(packing) / median["floor"][0], 3),
            "nocache/floor": round(statistics.median(ratios["nocache"]), 3),
            "tool/floor": round(statistics.median(ratios["tool"]), 3),
            "floor cpu/wall": round(median["floor"][1] / median["floor"][0], 2),
            "nocache cpu/wall": round(median["nocache"][1] / median["nocache"][0], 2),
        },
        "unchanged_seconds": round(median["unchanged"][0], 2),
        "identical_to_no_cache_builds": identical,
        "targets_met": {
            "changed <= 10% of cold": median["changed"][0] <= 0.10 * median["cold"][0],
            "unchanged <= 2 s": median["unchanged"][0] <= 2.0,
            "cold <= 1.05x floor": statistics.median(ratios["cold"]) <= 1.05,
            "identical": identical,
        },
    }


def bench_nanos(work, runs, mib=200):
    """A Nanos build of a 200 MiB tree, and the rebuild after the 10 MB program changed."""
    release = os.path.join(ROOT, "Tests", "Fixtures", "nanos-golden", "ops-layout", "inputs")
    base = os.path.join(work, "nanos")
    tree = os.path.join(base, "tree")
    if not os.path.isdir(tree):
        os.makedirs(base, exist_ok=True)
        make_tree(tree, mib)
    source = os.path.join(base, "prover.c")
    with open(source, "w") as f:
        f.write('#include <stdio.h>\nint main(void) { puts("proved"); return 0; }\n')
    elf = os.path.join(base, "prover.elf")
    subprocess.run(["gcc", "-O1", "-o", elf, source], check=True)
    with open(os.path.join(base, "m.json"), "w") as f:
        json.dump({"Dirs": ["tree"], "Args": ["prover"]}, f)

    def program(seed):
        # The ELF followed by 10 MB of data (a program with a big embedded table, as provers have).
        with open(elf, "rb") as f, open(os.path.join(base, "prover"), "wb") as out:
            out.write(f.read() + program_bytes(seed))

    def build(output):
        return measured([GVLT, "build", "--backend", "nanos", "prover", "-c", "m.json", "--nanos-dir", release,
                         "-o", output, "--force", "-q"], cwd=base)[:2]

    cold, changed = [], []
    for run in range(runs):
        program(0)
        cold.append(build("a.img"))
        program(run + 1)
        changed.append(build("b.img"))
    size = int(subprocess.run(["du", "-sb", tree], capture_output=True, text=True).stdout.split()[0])
    return {"tree": "nanos", "bytes": size, "runs": runs,
            "cold": {"wall": round(statistics.median(w for w, _ in cold), 2),
                     "cpu": round(statistics.median(c for _, c in cold), 2)},
            "changed": {"wall": round(statistics.median(w for w, _ in changed), 2),
                        "cpu": round(statistics.median(c for _, c in changed), 2)}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work")
    parser.add_argument("--mib", type=int, default=320)
    parser.add_argument("--trees", default="synthetic,debian,nanos")
    parser.add_argument("--compressor", default="zstd")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for path in (GVLT, INIT):
        if not os.path.exists(path):
            raise SystemExit("%s is missing: run `swift build -c release --product gvlt` and scripts/build-init" % path)
    work = args.work or tempfile.mkdtemp(prefix="gvlt-bench-rebuild-")
    os.makedirs(work, exist_ok=True)
    results = []
    for name in args.trees.split(","):
        tree = os.path.join(work, "tree-" + name)
        if name == "nanos":
            results.append(bench_nanos(work, args.runs))
            continue
        if name == "synthetic" and not os.path.isdir(tree):
            make_tree(tree, args.mib)
        elif name == "debian":
            debian_tree(tree)
        results.append(bench_tree(name, tree, work, args.runs, args.compressor))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            if r["tree"] == "nanos":
                print("== nanos: %.1f MB tree, %d runs: cold %.2f s (%.2f cpu-s), after a program change %.2f s (%.2f cpu-s)" % (
                    r["bytes"] / 1e6, r["runs"], r["cold"]["wall"], r["cold"]["cpu"], r["changed"]["wall"], r["changed"]["cpu"]))
                continue
            print("== %s tree: %.1f MB, %d entries, %s, %d runs (medians; wall / cpu seconds)" % (
                r["tree"], r["bytes"] / 1e6, r["entries"], r["compressor"], r["runs"]))
            for k, v in r["median"].items():
                print("  %-10s %7.2f s  %7.2f cpu-s" % (k, v["wall"], v["cpu"]))
            print("  ratios:", r["ratios"])
            print("  cold/floor per run:", r["cold_floor_per_run"])
            print("  blocks reused/compressed after the change:", r["changed_blocks_reused_compressed"])
            print("  targets:", r["targets_met"])
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
