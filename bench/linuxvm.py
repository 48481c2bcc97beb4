#!/usr/bin/env python3
"""Linux VM image benchmarks (issue 3), each a ratio or difference against a floor measured in the
same run:
  build: `gvlt build --backend linuxvm --rootfs-dir TREE` wall time vs the squashfs tool alone on the
         same tree with the same compressor (tar2sqfs fed a tar of the tree, and mksquashfs on the dir)
  boot:  QEMU start to the program's first output line vs the same kernel with a minimal initramfs
         that prints and powers off, booted the same way: the image's own disk (SeaBIOS, SYSLINUX)
         with its initrd.img replaced, under the worker's flags. Also reported: the same minimal
         initramfs put in memory by QEMU (-kernel/-initrd), which skips the boot loader the worker's
         disk format requires.
  size:  image bytes - (squashfs of the tree + kernel + initramfs)
Usage: bench/linuxvm.py [--mib 320] [--runs 3] [--work DIR]
       (run scripts/build-init and `swift build -c release --product gvlt` first; a debug build is
       used only when there is no release one, and is slower at streaming the tree)
"""
import argparse, hashlib, json, os, random, shutil, struct, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GVLT = os.path.join(ROOT, ".build", "release", "gvlt")
if not os.path.exists(GVLT):
    GVLT = os.path.join(ROOT, ".build", "debug", "gvlt")
INIT = os.path.join(ROOT, ".build", "gvlt-init")

def make_tree(path, mib, seed=7):
    """Deterministic tree: many files of text-like and binary-like content, gzip ratio about 3."""
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(4000)]
    total, index = 0, 0
    os.makedirs(path)
    while total < mib << 20:
        directory = os.path.join(path, "usr", "lib", "pkg%03d" % (index // 40))
        os.makedirs(directory, exist_ok=True)
        size = int(2 ** rng.uniform(9, 20))
        chunks, length = [], 0
        while length < size:
            line = b" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) + b"\n"
            chunks.append(line)
            length += len(line)
        data = b"".join(chunks)[:size]
        if index % 5 == 0:  # binary-ish: short records with small deltas
            data = bytes((b * 7 + i) & 0xff for i, b in enumerate(data[: size // 2])) + data[size // 2 :]
        with open(os.path.join(directory, "f%05d" % index), "wb") as f:
            f.write(data)
        total += size
        index += 1
    os.makedirs(os.path.join(path, "usr", "bin"))
    return total, index

def timed(cmd, **kw):
    start = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.monotonic() - start

def first_line_time(cmd, marker, timeout=240):
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = None
    buffer = b""
    while True:
        chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(1)
        if not chunk:
            break
        buffer += chunk
        if seen is None and marker in buffer:
            seen = time.monotonic() - start
        if time.monotonic() - start > timeout:
            proc.kill()
            break
    proc.wait()
    if seen is None:
        raise SystemExit("marker %r never appeared:\n%s" % (marker, buffer.decode(errors="replace")[-3000:]))
    return seen

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=320)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work")
    parser.add_argument("--compressor", default="zstd")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="gvlt-bench-vm-")
    cache = os.path.join(work, "cache")
    tree = os.path.join(work, "tree")
    if not os.path.isdir(tree):
        content, files = make_tree(tree, args.mib)
    else:
        content = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tree) for f in fs)
        files = sum(len(fs) for _, _, fs in os.walk(tree))
    # The program the boot benchmark waits for: prints at once, then exits.
    program_c = os.path.join(work, "first.c")
    with open(program_c, "w") as f:
        f.write('#include <stdio.h>\nint main(void){puts("bench-first-line");return 0;}\n')
    subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(tree, "usr", "bin", "first"), program_c], check=True)

    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    image = os.path.join(work, "bench.img")
    build_cmd = [GVLT, "build", "--backend", "linuxvm", "--rootfs-dir", tree, "-o", image, "--force", "--quiet",
                 "--init-binary", INIT, "--cache-dir", cache, "--squashfs-compressor", args.compressor,
                 # Every run a cold build: the build caches would serve the runs after the first.
                 "--no-cache"]
    subprocess.run(build_cmd, check=True, env=env)  # warm-up: fills the kernel cache and the page cache

    tar_path = os.path.join(work, "tree.tar")
    subprocess.run(["tar", "-C", tree, "--numeric-owner", "-cf", tar_path, "."], check=True)
    floors_tar, floors_dir, builds = [], [], []
    sqfs = os.path.join(work, "floor.sqfs")
    for _ in range(args.runs):
        floors_tar.append(timed(["bash", "-c", "tar2sqfs -q -f -c %s -j %d %s < %s" % (args.compressor, os.cpu_count(), sqfs, tar_path)]))
        floors_dir.append(timed(["mksquashfs", tree, sqfs + ".mk", "-noappend", "-quiet", "-no-progress", "-comp", args.compressor]))
        builds.append(timed(build_cmd, env=env))
    floor = min(min(floors_tar), min(floors_dir))

    # Size: the image minus the parts it must hold (the tree's squashfs, the kernel, the initramfs).
    report = json.loads(subprocess.run([GVLT, "inspect", image, "--json"], check=True, capture_output=True).stdout)
    boot = report["partitions"][0]
    boot_ref = "%s@@%d" % (image, boot["start"])
    listing = subprocess.run(["mdir", "-a", "-i", boot_ref, "::/"], capture_output=True, text=True,
                             env=dict(os.environ, MTOOLS_SKIP_CHECK="1")).stdout
    # mdir lists `vmlinuz  SIZE DATE` and `initrd  img  SIZE DATE` (8.3 names, extension apart).
    sizes = {}
    for line in listing.splitlines():
        parts = line.split()
        if parts[:1] == ["vmlinuz"] and len(parts) > 1 and parts[1].isdigit():
            sizes["vmlinuz"] = int(parts[1])
        if parts[:2] == ["initrd", "img"] and len(parts) > 2 and parts[2].isdigit():
            sizes["initrd"] = int(parts[2])
    tree_sqfs = os.path.getsize(sqfs)
    image_bytes = os.path.getsize(image)
    overhead = image_bytes - (tree_sqfs + sizes.get("vmlinuz", 0) + sizes.get("initrd", 0))

    # Boot: the floor is the same kernel booting a one-program initramfs straight from QEMU.
    kernel_dir = [os.path.join(d, "boot") for d, _, _ in os.walk(os.path.join(cache, "entries", "kernels", "debian")) if os.path.isdir(os.path.join(d, "boot"))][0]
    vmlinuz = os.path.join(kernel_dir, [f for f in os.listdir(kernel_dir) if f.startswith("vmlinuz-")][0])
    floor_c = os.path.join(work, "floor-init.c")
    with open(floor_c, "w") as f:
        f.write('#include <stdio.h>\n#include <sys/reboot.h>\n#include <unistd.h>\n'
                'int main(void){FILE*c=fopen("/dev/console","w");if(c){fputs("bench-first-line\\n",c);fclose(c);}'
                'puts("bench-first-line");fflush(stdout);sync();reboot(RB_POWER_OFF);return 0;}\n')
    floor_root = os.path.join(work, "floor-initramfs")
    shutil.rmtree(floor_root, ignore_errors=True)
    os.makedirs(os.path.join(floor_root, "dev"))
    subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(floor_root, "init"), floor_c], check=True)
    floor_cpio = os.path.join(work, "floor.cpio")
    subprocess.run(["bash", "-c", "cd %s && printf 'init\\n' | cpio -o -H newc > %s 2>/dev/null" % (floor_root, floor_cpio)], check=True)
    qemu_common = ["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "512M", "-no-reboot", "-serial", "stdio",
                   "-display", "none", "-vga", "none"]
    boot_floors, boots = [], []
    shares = os.path.join(work, "shares")
    for share in ("input", "output", "rt-config"):
        os.makedirs(os.path.join(shares, share), exist_ok=True)
    with open(os.path.join(shares, "rt-config", "config.yaml"), "w") as f:
        f.write('version: "1.1.0"\ncommand: "/usr/bin/first"\ndebug-exit: {arch: "x86", iobase: 244, iosize: 4, success-code: 3}\n')
    worker = qemu_common + ["-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-hd,bus=scsi0.0,drive=hd0",
                            "-drive", "file=%s,format=raw,if=none,id=hd0,readonly=on" % image, "-device", "virtio-rng-pci",
                            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x4"]
    for share, ro in (("rt-config", True), ("input", True), ("output", False)):
        worker += ["-virtfs", "local,path=%s/%s,mount_tag=gevulot-%s,security_model=none,multidevs=remap%s" % (shares, share, share, ",readonly=on" if ro else "")]
    # The disk floor: the image itself, its initramfs swapped for the minimal one.
    floor_disk = os.path.join(work, "floor-disk.img")
    shutil.copyfile(image, floor_disk)
    subprocess.run(["mcopy", "-o", "-i", "%s@@%d" % (floor_disk, boot["start"]), floor_cpio, "::initrd.img"], check=True,
                   env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    floor_worker = [a.replace(image, floor_disk) for a in worker]
    direct_floors = []
    for _ in range(args.runs):
        direct_floors.append(first_line_time(qemu_common + ["-kernel", vmlinuz, "-initrd", floor_cpio, "-append", "console=ttyS0 quiet panic=-1"], b"bench-first-line"))
        boot_floors.append(first_line_time(floor_worker, b"bench-first-line"))
        boots.append(first_line_time(worker, b"bench-first-line"))

    result = {
        "tree": {"bytes": content, "files": files, "compressor": args.compressor},
        "build": {"floor_tar2sqfs_s": min(floors_tar), "floor_mksquashfs_s": min(floors_dir), "gvlt_build_s": min(builds),
                  "ratio": min(builds) / floor, "target": 1.15},
        "boot": {"floor_s": min(boot_floors), "image_s": min(boots), "difference_s": min(boots) - min(boot_floors), "target_s": 0.5,
                 "direct_floor_s": min(direct_floors), "difference_from_direct_s": min(boots) - min(direct_floors)},
        "size": {"image": image_bytes, "tree_squashfs": tree_sqfs, "kernel": sizes.get("vmlinuz"), "initramfs": sizes.get("initrd"),
                 "overhead": overhead, "overhead_mib": overhead / 1048576, "target_mib": 2},
    }
    print(json.dumps(result, indent=2))
    print("build: %.2fx of the squashfs floor (target <= 1.15x)  boot: floor + %.2f s (target <= 0.5 s; + %.2f s over QEMU's direct load)  size overhead: %.2f MiB (target <= 2 MiB)"
          % (result["build"]["ratio"], result["boot"]["difference_s"], result["boot"]["difference_from_direct_s"], result["size"]["overhead_mib"]))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
