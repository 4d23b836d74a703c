"""Blooio's official SDK (`blooio`, a benchmark-only extra) sending N messages, as a whole
process: what a user would otherwise write. `AsyncBlooio` with `asyncio.gather` under a
semaphore of C, the messages read from the same CSV the campaign names.

    python benchmarks/_sdk_send.py BASE_URL people.csv CONCURRENCY   (key in BLOOIO_API_KEY)
"""

from __future__ import annotations

import asyncio
import csv
import sys

from blooio import AsyncBlooio


async def main(base_url: str, csv_path: str, concurrency: int) -> None:
    with open(csv_path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    sem = asyncio.Semaphore(concurrency)
    async with AsyncBlooio(base_url=base_url, max_retries=0) as client:

        async def one(row: dict[str, str]) -> None:
            async with sem:
                await client.chats.messages.send(
                    row["phone"],
                    text=f"Hello {row['first_name']}, your {row['order']} shipped.",
                    from_number="+15551234567",
                )

        await asyncio.gather(*(one(r) for r in rows))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
