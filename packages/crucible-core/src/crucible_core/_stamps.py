"""File stamps: telling that a file is unchanged since it was read, without reading it again.

A stamp is what `os.stat` says of a file (size, mtime, ctime, inode, device). A user can set the
mtime back with `os.utime`, never the ctime, so an edit that restores the mtime still changes the
stamp. What a stamp cannot show is an edit in the same timestamp tick as the read (a kernel tick
on ext4, 2 s on FAT) that keeps the size: so a stamp vouches for a file only if the file had
settled, had last changed at least `RACY_NS` before it was read. git calls the other entries
"racily clean" and checks their content.
"""

from __future__ import annotations

import os

__all__ = ("RACY_NS", "settled", "stamp")

RACY_NS = 2_000_000_000
"""How long before being read a file must have last changed for its stamp to vouch for it."""


def stamp(st: os.stat_result) -> list[int]:
    """The stamp of a file from its `os.stat` (a list, so it round-trips through JSON)."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def settled(mark: list[int], read_at: int) -> bool:
    """Whether a file with stamp `mark`, read at `read_at` (`time.time_ns()`), had settled."""
    return read_at - max(mark[1], mark[2]) >= RACY_NS
