#!/usr/bin/env python3
"""--accel nvidia build overhead (issue 5). The driver build happens once per (driver, kernel) pair;
after that, an --accel nvidia build may add at most 2 s plus the cost of putting the driver files in
the image, over the same build without the accelerator. Measured in the same run:
  plain:  gvlt build --backend linuxvm --rootfs-dir TREE
  accel:  the same with --accel nvidia (modules, firmware and libraries already cached)
  copy:   the floor for the driver files themselves: mksquashfs of exactly the files the accelerator
          added (read back from the image), with the image's compressor
Target: accel - plain <= 2 s + copy.
Usage: bench/nvidia.py [--mib 100] [--runs 3] [--work DIR] [--cache DIR]
       (run scripts/build-init and `swift build -c release --product gvlt` first; the first run
       builds the NVIDIA modules into the cache, about 2 minutes, outside the timed runs)
"""
import argparse, importlib.util, json, os, shutil, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GVLT = os.path.join(ROOT, ".build", "release", "gvlt")
if not os.path.exists(GVLT):
    GVLT = os.path.join(ROOT, ".build", "debug", "gvlt")
INIT = os.path.join(ROOT, ".build", "gvlt-init")

# The tree generator and the timer of bench/linuxvm.py, so both benchmarks measure alike.
_spec = importlib.util.spec_from_file_location("linuxvm_bench", os.path.join(ROOT, "bench", "linuxvm.py"))
linuxvm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(linuxvm)
timed = linuxvm.timed

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work")
    parser.add_argument("--cache", help="gvlt cache (default: WORK/cache); reuse one to skip the module build")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="gvlt-bench-nvidia-")
    cache = args.cache or os.path.join(work, "cache")
    tree = os.path.join(work, "tree")
    if not os.path.isdir(tree):
        linuxvm.make_tree(tree, args.mib)
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    # --no-cache: the build caches would serve every run after the first (the driver caches stay).
    base = [GVLT, "build", "--backend", "linuxvm", "--rootfs-dir", tree, "--force", "--quiet", "--init-binary", INIT, "--cache-dir", cache,
            "--no-cache"]
    plain_cmd = base + ["-o", os.path.join(work, "plain.img")]
    accel_cmd = base + ["-o", os.path.join(work, "accel.img"), "--accel", "nvidia"]
    print("warm-up: fills the kernel and NVIDIA caches (the module build takes about 2 minutes the first time)", file=sys.stderr)
    subprocess.run(plain_cmd, check=True, env=env)
    subprocess.run(accel_cmd, check=True, env=env)

    # The driver files, read back from the image: what the accelerator really added.
    report = json.loads(subprocess.run([GVLT, "inspect", os.path.join(work, "accel.img"), "--json"], check=True, capture_output=True).stdout)
    gpu = report["nvidia"]
    paths = [m["path"] for m in gpu["modules"]] + gpu["firmware"] + gpu["libraries"] + ["/etc/gvlt/nvidia"]
    offset = report["partitions"][1]["start"]
    files = os.path.join(work, "driver-files")
    shutil.rmtree(files, ignore_errors=True)
    subprocess.run(["unsquashfs", "-o", str(offset), "-q", "-n", "-no-xattrs", "-d", files, os.path.join(work, "accel.img")]
                   + [p.lstrip("/") for p in paths], check=True)
    driver_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(files) for f in fs
                       if not os.path.islink(os.path.join(d, f)))

    plains, accels, copies = [], [], []
    for _ in range(args.runs):
        plains.append(timed(plain_cmd, env=env))
        accels.append(timed(accel_cmd, env=env))
        copies.append(timed(["mksquashfs", files, os.path.join(work, "driver.sqfs"), "-noappend", "-quiet", "-no-progress", "-comp", "zstd"]))
    overhead = min(accels) - min(plains)
    allowance = 2.0 + min(copies)
    result = {"tree_mib": args.mib, "driver_files": len(paths), "driver_bytes": driver_bytes,
              "plain_s": min(plains), "accel_s": min(accels), "overhead_s": overhead,
              "copy_floor_s": min(copies), "allowance_s": allowance, "pass": overhead <= allowance}
    print(json.dumps(result, indent=2))
    print("--accel nvidia adds %.2f s (target <= 2 s + %.2f s for the %.0f MiB of driver files): %s"
          % (overhead, min(copies), driver_bytes / 1048576, "PASS" if result["pass"] else "FAIL"))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)

main()
