#!/usr/bin/env python3
"""mkinitramfs.py - build a newc cpio initramfs from host files.

For tests that boot a real kernel under QEMU (and later a dev guest image):
it copies programs with every shared library ldd finds (and the dynamic
loader), kernel modules with their modules.dep/softdep dependencies, plain
files and trees, and busybox with its applet links, into one "070701" cpio
archive. No root is needed: owners, modes and the /dev/console and /dev/null
nodes are written into the archive, not onto the disk.

  mkinitramfs.py -o OUT.cpio [--busybox PATH] [--init FILE]
      [--bin SRC[=DEST]]... [--lib SRC]... [--file SRC=DEST]...
      [--tree SRCDIR=DEST]... [--dir DEST]... [--symlink DEST=TARGET]...
      [--kver VERSION [--moddir DIR] --module NAME...]

Arguments may come from a file: @FILE (one argument per line).

Modules go to /lib/modules/VERSION/<path in modules.dep>; their load order
(dependencies first) is written to /lib/modules/VERSION/load-order, one path
per line, for an /init that runs `insmod` on each; modules.dep/softdep of
just those modules go beside it. Names built into the kernel
(modules.builtin) are skipped with a note, so a caller can list what it needs
without knowing the kernel's configuration. Compressed modules (.xz, .gz)
are stored decompressed for busybox insmod.

Explicit entries win over busybox applet links of the same name anywhere in
the image, so a real util-linux losetup in /usr/sbin is not shadowed by a
/bin/losetup link. But Debian's busybox-static shell runs its own applets
before searching PATH: where real tools must win (system(3), popen(3),
scripts), install a real shell as /bin/sh, e.g. --bin /bin/dash=/bin/sh. The output is deterministic (sorted, mtime 0).
"""

import argparse
import gzip
import lzma
import os
import stat
import subprocess
import sys

DIR_MODE = 0o040755
SEARCH_PATH = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]


class Image:
    """Entries by path (no leading slash): (mode, data bytes, rdev)."""

    def __init__(self):
        self.entries = {}

    def _parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.entries:
                self.entries[d] = (DIR_MODE, b"", (0, 0))

    def add(self, path, mode, data=b"", rdev=(0, 0), replace=True):
        path = path.strip("/")
        if not path:
            return
        old = self.entries.get(path)
        if old is not None and stat.S_ISDIR(old[0]) and stat.S_ISDIR(mode):
            return
        if old is not None and not replace:
            return
        self._parents(path)
        self.entries[path] = (mode, data, rdev)

    def add_file(self, src, dest, mode=None):
        with open(src, "rb") as f:
            data = f.read()
        if mode is None:
            mode = stat.S_IMODE(os.stat(src).st_mode)
        self.add(dest, stat.S_IFREG | mode, data)

    def write(self, out):
        ino = 1
        with open(out + ".tmp", "wb") as f:
            for path in sorted(self.entries, key=lambda p: p.split("/")):
                mode, data, rdev = self.entries[path]
                _cpio_entry(f, path, mode, data, rdev, ino)
                ino += 1
            _cpio_entry(f, "TRAILER!!!", 0, b"", (0, 0), 0)
        os.replace(out + ".tmp", out)


def _pad(f, n):
    f.write(b"\0" * ((4 - n % 4) % 4))


def _cpio_entry(f, name, mode, data, rdev, ino):
    nlink = 2 if stat.S_ISDIR(mode) else 1
    name_b = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0]
    hdr = b"070701" + b"".join(b"%08X" % v for v in fields)
    f.write(hdr + name_b)
    _pad(f, len(hdr) + len(name_b))
    f.write(data)
    _pad(f, len(data))


def is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def shared_libs(path):
    """Absolute paths of the libraries (and loader) ldd resolves for path."""
    r = subprocess.run(["ldd", path], capture_output=True, text=True)
    out = r.stdout + r.stderr
    if "not a dynamic executable" in out or "statically linked" in out:
        return []
    if r.returncode != 0:
        sys.exit("mkinitramfs: ldd %s failed: %s" % (path, out.strip()))
    libs = []
    for line in out.splitlines():
        line = line.strip()
        if "=> not found" in line:
            sys.exit("mkinitramfs: %s needs %s, not found on this host" % (path, line.split()[0]))
        if "=>" in line:
            target = line.split("=>", 1)[1].split("(")[0].strip()
        else:
            target = line.split("(")[0].strip()
        if target.startswith("/"):
            libs.append(target)
    return libs


def add_program(img, src, dest, have_libs):
    """A program or library at dest plus what it links to (once each)."""
    img.add_file(src, dest, stat.S_IMODE(os.stat(src).st_mode) | 0o555)
    if not is_elf(src):
        return
    for lib in shared_libs(src):
        if lib not in have_libs:
            have_libs.add(lib)
            img.add_file(lib, lib, 0o755)


def which(name):
    if "/" in name:
        return name
    for d in SEARCH_PATH + os.environ.get("PATH", "").split(":"):
        p = os.path.join(d, name)
        if d and os.access(p, os.X_OK) and os.path.isfile(p):
            return p
    sys.exit("mkinitramfs: program %s not found" % name)


def split_pair(arg, what):
    if "=" not in arg:
        sys.exit("mkinitramfs: %s wants SRC=DEST, got %r" % (what, arg))
    a, b = arg.split("=", 1)
    return a, b


# ---- kernel modules ----


def mod_name(path):
    base = os.path.basename(path)
    for ext in (".xz", ".gz", ".zst"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    if base.endswith(".ko"):
        base = base[:-3]
    return base.replace("-", "_")


def read_modules_db(moddir):
    deps, by_name = {}, {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            if ":" not in line:
                continue
            path, rest = line.split(":", 1)
            deps[path] = rest.split()
            by_name[mod_name(path)] = path
    soft = {}
    try:
        with open(os.path.join(moddir, "modules.softdep")) as f:
            for line in f:
                w = line.split()
                if len(w) < 3 or w[0] != "softdep":
                    continue
                pre, post, cur = [], [], None
                for t in w[2:]:
                    if t in ("pre:", "post:"):
                        cur = pre if t == "pre:" else post
                    elif cur is not None:
                        cur.append(t)
                soft[w[1].replace("-", "_")] = (pre, post)
    except FileNotFoundError:
        pass
    builtin = set()
    try:
        with open(os.path.join(moddir, "modules.builtin")) as f:
            builtin = {mod_name(line.strip()) for line in f if line.strip()}
    except FileNotFoundError:
        pass
    return deps, by_name, soft, builtin


def resolve_modules(moddir, names):
    """Module paths (relative to moddir) in a valid load order."""
    deps, by_name, soft, builtin = read_modules_db(moddir)
    order, seen = [], set()

    def visit(name, required):
        n = name.replace("-", "_")
        if n in builtin:
            print("mkinitramfs: %s is built into the kernel" % name, file=sys.stderr)
            return
        path = by_name.get(n)
        if path is None:
            if required:
                sys.exit("mkinitramfs: module %s not in %s/modules.dep" % (name, moddir))
            return
        if path in seen:
            return
        seen.add(path)
        pre, post = soft.get(n, ([], []))
        for p in pre:
            visit(p, False)
        # modules.dep lists the whole closure; each entry's own deps go first.
        for d in reversed(deps[path]):
            visit(mod_name(d), True)
        order.append(path)
        for p in post:
            visit(p, False)

    for name in names:
        visit(name, True)
    return order, deps


def read_module(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        sys.exit("mkinitramfs: %s: zstd modules are not supported" % path)
    return data


def add_modules(img, kver, moddir, names):
    order, deps = resolve_modules(moddir, names)
    base = "lib/modules/%s/" % kver
    plain = {}
    for path in order:
        p = path
        for ext in (".xz", ".gz"):
            if p.endswith(ext):
                p = p[: -len(ext)]
        plain[path] = p
        img.add(base + p, stat.S_IFREG | 0o644, read_module(os.path.join(moddir, path)))
    dep_lines = "".join(
        "%s: %s\n" % (plain[m], " ".join(plain.get(d, d) for d in deps[m])) for m in order
    )
    img.add(base + "modules.dep", stat.S_IFREG | 0o644, dep_lines.encode())
    img.add(base + "load-order", stat.S_IFREG | 0o644, "".join(plain[m] + "\n" for m in order).encode())
    return order


# ---- main ----


def main():
    ap = argparse.ArgumentParser(
        fromfile_prefix_chars="@", description="Build a newc cpio initramfs from host files."
    )
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--init", help="file to install as /init (mode 0755)")
    ap.add_argument("--busybox", help="busybox binary: /bin/busybox plus /bin links for its applets")
    ap.add_argument("--bin", action="append", default=[], help="SRC[=DEST] program with its libraries")
    ap.add_argument("--lib", action="append", default=[], help="extra library (e.g. dlopen'ed) at its own path")
    ap.add_argument("--file", action="append", default=[], help="SRC=DEST plain file")
    ap.add_argument("--tree", action="append", default=[], help="SRCDIR=DEST directory copied recursively")
    ap.add_argument("--dir", action="append", default=[], help="empty directory")
    ap.add_argument("--symlink", action="append", default=[], help="DEST=TARGET")
    ap.add_argument("--kver", help="kernel release for --module")
    ap.add_argument("--moddir", help="module directory (default /lib/modules/KVER)")
    ap.add_argument("--module", action="append", default=[], help="kernel module name (dependencies follow)")
    a = ap.parse_args()

    img = Image()
    img.add("dev", DIR_MODE)
    img.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    img.add("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3))
    for d in ("proc", "sys", "tmp", "run", "root", "etc"):
        img.add(d, DIR_MODE)
    libs = set()

    for spec in a.bin:
        src, dest = split_pair(spec, "--bin") if "=" in spec else (spec, None)
        src = which(src)
        add_program(img, src, dest or src, libs)
    for lib in a.lib:
        add_program(img, lib, lib, libs)
    for spec in a.file:
        src, dest = split_pair(spec, "--file")
        img.add_file(src, dest)
    for spec in a.tree:
        src, dest = split_pair(spec, "--tree")
        for root, dirs, files in os.walk(src):
            rel = os.path.relpath(root, src)
            target = dest if rel == "." else os.path.join(dest, rel)
            img.add(target, DIR_MODE)
            for name in sorted(files):
                img.add_file(os.path.join(root, name), os.path.join(target, name))
    for d in a.dir:
        img.add(d, DIR_MODE)
    for spec in a.symlink:
        dest, target = split_pair(spec, "--symlink")
        img.add(dest, stat.S_IFLNK | 0o777, target.encode())
    if a.module:
        if not a.kver:
            sys.exit("mkinitramfs: --module needs --kver")
        add_modules(img, a.kver, a.moddir or "/lib/modules/" + a.kver, a.module)
    if a.init:
        img.add_file(a.init, "init", 0o755)
    if a.busybox:
        img.add_file(a.busybox, "bin/busybox", 0o755)
        if shared_libs(a.busybox):
            print("mkinitramfs: note: %s is not static" % a.busybox, file=sys.stderr)
            add_program(img, a.busybox, "bin/busybox", libs)
        applets = subprocess.run([a.busybox, "--list"], capture_output=True, text=True, check=True)
        taken = {os.path.basename(p) for p in img.entries}
        for name in applets.stdout.split():
            if name and name not in taken and name != "busybox":
                img.add("bin/" + name, stat.S_IFLNK | 0o777, b"busybox", replace=False)
    img.write(a.output)


if __name__ == "__main__":
    main()
