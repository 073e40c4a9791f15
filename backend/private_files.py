"""Files that hold tokens, names or results are readable by their owner only, whatever the umask says."""
from __future__ import annotations

import os


def private_dir(path: str | os.PathLike) -> None:
    """Create ``path`` (and parents) as 0700; an existing folder is left as its owner set it."""
    os.makedirs(path, mode=0o700, exist_ok=True)


def private_sqlite_file(path: str | os.PathLike) -> None:
    """Create an SQLite file 0600 before SQLite does (it would follow the umask; its -wal/-shm files copy the
    main file's mode), and tighten files an older version left readable by others."""
    path = os.fspath(path)
    private_dir(os.path.dirname(os.path.abspath(path)))
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.exists(name) and os.stat(name).st_mode & 0o077:
            os.chmod(name, 0o600)
