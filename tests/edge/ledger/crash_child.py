"""Child process for the crash-safety test: rings sales until it is killed.

Usage: ``python crash_child.py LEDGER_PATH SEED``. Prints ``ready <last_seq>`` once the ledger is
open, then ``committed <sale_id>`` for each sale, flushed only after ``record_sale`` returned: a
printed id is one the ledger promised to keep.
"""

import asyncio
import random
import sys

from edge.ledger import Ledger
from edge.simulated_register import random_sale


async def main(path: str, seed: int) -> None:
    rng = random.Random(seed)
    async with Ledger(path, register_id="crash-1") as ledger:
        sys.stdout.write(f"ready {ledger.last_seq}\n")
        sys.stdout.flush()
        while True:
            sale = await ledger.record_sale(random_sale(rng, currency="EUR"))
            sys.stdout.write(f"committed {sale.sale_id}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
