"""`make run`'s vault on a developer's machine: the tests' KV v2 stand-in
(tests/edc/vault.py), served on loopback until interrupted. Not a vault for real secrets: it
keeps everything in memory and checks one token."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.edc.vault import Vault


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--token", required=True)
    parser.add_argument("--port", type=int, default=8200)
    args = parser.parse_args()
    vault = Vault(args.token)
    url = vault.start(port=args.port)
    print(f"dev vault at {url}", file=sys.stderr, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    vault.stop()


if __name__ == "__main__":
    main()
