"""What a hospital engineer writes instead: page each type with fhirpy into SQLite.

    python fhirpy_dump.py BASE_URL DB_PATH TYPE [TYPE ...]

Prints "<resources> <seconds>". Pages 500 at a time, as such scripts typically do.
"""

import json
import sqlite3
import sys
import time

from fhirpy import SyncFHIRClient


def main() -> None:
    base, path, *types = sys.argv[1:]
    client = SyncFHIRClient(base)
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE IF NOT EXISTS resource (type TEXT, id TEXT, body TEXT, "
        "PRIMARY KEY (type, id))"
    )
    count, began = 0, time.perf_counter()
    for rtype in types:
        for resource in client.resources(rtype).limit(500):
            data = resource.serialize()
            db.execute(
                "INSERT OR REPLACE INTO resource VALUES (?, ?, ?)",
                (rtype, data["id"], json.dumps(data)),
            )
            count += 1
        db.commit()
    print(count, round(time.perf_counter() - began, 3))


if __name__ == "__main__":
    main()
