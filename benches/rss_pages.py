#!/usr/bin/env python3
"""What a running process's resident memory is: its binary's pages by section and by crate.

    benches/rss_pages.py PID [BINARY]

BINARY (default: the process's executable) must keep its symbols (build with
`CARGO_PROFILE_RELEASE_STRIP=false` or `--profile profiling`). Reads /proc/PID/smaps for
each mapping's resident bytes and /proc/PID/pagemap (root) for which of the binary's pages
are resident, then charges each resident page of code to the crates whose functions lie on
it (by bytes, from `nm`), and the rest of the binary's pages to their ELF section.
"""

import bisect
import collections
import os
import re
import struct
import subprocess
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")


def mappings(pid):
    """(start, end, file offset, path, resident bytes) of each mapping, from smaps."""
    result = []
    current = None
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            head = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s*(.*)$", line)
            if head:
                start, end, offset, path = head.groups()
                current = [int(start, 16), int(end, 16), int(offset, 16), path or "[anon]", 0]
                result.append(current)
            elif line.startswith("Rss:") and current is not None:
                current[4] = int(line.split()[1]) * 1024
    return result


def resident_pages(pid, start, end):
    """The addresses of the resident pages in [start, end)."""
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        pagemap.seek(start // PAGE * 8)
        data = pagemap.read((end - start) // PAGE * 8)
    return [
        start + i * PAGE
        for i, (entry,) in enumerate(struct.iter_unpack("<Q", data))
        if entry >> 63
    ]


def sections(binary):
    """(file offset, size, name) of the binary's allocated sections."""
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True)
    found = []
    for line in out.stdout.splitlines():
        m = re.match(r"^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m:
            name, address, offset, size = m.groups()
            if int(address, 16):
                found.append((int(offset, 16), int(size, 16), int(address, 16), name))
    return found


def crate_of(symbol):
    """The crate a demangled symbol belongs to: the first path segment, generics unwrapped."""
    symbol = symbol.lstrip("<&*(").replace("dyn ", "").replace("mut ", "")
    head = re.split(r"::|<| as |\s", symbol, maxsplit=1)[0]
    return head or "?"


def symbols(binary):
    """(address, size, crate) of the binary's functions, by address."""
    out = subprocess.run(
        ["nm", "-S", "-C", "--defined-only", binary], capture_output=True, text=True, check=True
    )
    found = []
    for line in out.stdout.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[2] in "tTwW":
            found.append((int(parts[0], 16), int(parts[1], 16), crate_of(parts[3])))
    found.sort()
    return found


def main():
    pid = int(sys.argv[1])
    binary = sys.argv[2] if len(sys.argv) > 2 else os.readlink(f"/proc/{pid}/exe")
    maps = mappings(pid)
    total = sum(m[4] for m in maps)
    print(f"resident: {total / 2**20:.1f} MiB")
    by_path = collections.Counter()
    for _, _, _, path, rss in maps:
        by_path[path] += rss
    for path, rss in by_path.most_common(8):
        print(f"  {rss / 2**20:6.1f} MiB  {path}")

    real = os.path.realpath(binary)
    exe = [m for m in maps if os.path.realpath(m[3]) == real if m[3].startswith("/")]
    # Each resident page of the binary as an address the symbols and sections use.
    pages = []
    for start, end, offset, _, _ in exe:
        pages += [(page - start + offset) for page in resident_pages(pid, start, end)]
    secs = sections(binary)
    by_section = collections.Counter()
    text_pages = []
    for file_offset in pages:
        for offset, size, address, name in secs:
            if offset <= file_offset < offset + size:
                by_section[name] += PAGE
                if name == ".text":
                    text_pages.append(address + file_offset - offset)
                break
        else:
            by_section["(between sections)"] += PAGE
    print(f"\n{binary}: {len(pages) * PAGE / 2**20:.1f} MiB resident, by section")
    for name, size in by_section.most_common(8):
        print(f"  {size / 2**20:6.1f} MiB  {name}")

    syms = symbols(binary)
    starts = [s[0] for s in syms]
    by_crate = collections.Counter()
    for page in text_pages:
        i = max(bisect.bisect_right(starts, page) - 1, 0)
        while i < len(syms) and syms[i][0] < page + PAGE:
            address, size, crate = syms[i]
            overlap = min(address + size, page + PAGE) - max(address, page)
            if overlap > 0:
                by_crate[crate] += overlap
            i += 1
    print("\n.text resident, by crate of the functions on its pages")
    for crate, size in by_crate.most_common(25):
        print(f"  {size / 2**20:6.2f} MiB  {crate}")


if __name__ == "__main__":
    main()
