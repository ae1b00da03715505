"""Downloads of weight files: a quick reachability probe (so an offline machine fails fast), and one file fetched
atomically with its checksum prefix checked (torch.hub's downloader)."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from ..errors import MRDError


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("MRD_OFFLINE", "HF_HUB_OFFLINE"))


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether the host of `url` answers on port 443 (a quick probe, so an offline machine fails fast)."""
    if offline():
        return False
    host = urlparse(url).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def download_part(part, dest_dir: Path, log=print) -> Path:
    """Downloads files[0] of `part` (a weights.Part) into dest_dir, checking the sha256 prefix when known. Not
    atomic_write: torch.hub writes the file itself, to a unique temporary name (mkstemp) so that two processes
    fetching the same file never share one, and it is renamed into place only after its checksum passed."""
    import torch
    dest_dir.mkdir(parents=True, exist_ok=True)
    if part.package_file is not None and not part.urls:
        src = part.package_file()
        if src is None:
            raise MRDError(f"{part.role}: the package that ships {part.files[0]} is not installed: pip install lpips")
        shutil.copyfile(src, dest_dir / part.files[0])
        return dest_dir / part.files[0]
    errors = []
    for url in part.urls:
        if not reachable(url):
            errors.append(f"{url} not reachable")
            continue
        log(f"downloading {url} -> {dest_dir / part.files[0]}")
        fd, tmp = tempfile.mkstemp(dir=dest_dir, suffix=".part")
        os.close(fd)
        try:
            torch.hub.download_url_to_file(url, tmp, hash_prefix=part.sha256_prefix, progress=True)
            os.replace(tmp, dest_dir / part.files[0])
            return dest_dir / part.files[0]
        except Exception as exc:  # a failed mirror: try the next one
            errors.append(f"{url}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise MRDError(f"could not download {part.files[0]} ({'; '.join(errors) or 'no source'}): check the network, "
                   f"or copy the file into {dest_dir} by hand")
