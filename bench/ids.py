"""Benchmark: strict resident-ID validation, studentstatus vs python-stdnum.

Generates N resident numbers with a seeded ``random.Random`` (90% valid:
mainland citizens over current and historical address codes, plus HK/Macau/
Taiwan residence permits; 10% corrupted: digit substitution, adjacent
transposition, impossible date, unknown address code, wrong length, junk),
then times ``studentstatus.ids.resident.is_valid`` (strict) and
``stdnum.cn.ric.is_valid`` over the same list in the same process, and
reports both throughputs, the ratio and every verdict that differs, grouped
by reason.

    .venv/bin/python bench/ids.py            # 1,000,000 numbers
    .venv/bin/python bench/ids.py --n 100000
"""

from __future__ import annotations

import argparse
import collections
import random
import time

from stdnum.cn import ric

from studentstatus import regions
from studentstatus.ids import resident
from studentstatus.ids._mod11 import check_char

CHUNK = 2_000


def _date(rng: random.Random, y0: int, y1: int) -> str:
    y = rng.randint(y0, y1)
    m = rng.randint(1, 12)
    d = rng.randint(1, 28)
    return f"{y:04d}{m:02d}{d:02d}"


def _first_year(code: str) -> int:
    region = regions.lookup(code)
    assert region is not None
    starts = [p.start for p in region.names]
    return 1940 if None in starts else min(s for s in starts if s is not None)


def generate(n: int, seed: int = 20250901) -> list[str]:
    rng = random.Random(seed)
    current = regions.counties("")
    table = regions.id_address_table()
    historical = [
        code
        for code in table
        if (r := regions.lookup(code)) is not None and r.last_year < 9999 and r.level == "county"
    ]
    first = {code: _first_year(code) for code in current}
    out: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.97:
            code = rng.choice(current)
            # mostly born while the code existed; 3% before it was created
            start = 1940 if rng.random() < 0.03 else min(2024, max(1940, first[code]))
            body = code + _date(rng, start, 2024) + f"{rng.randint(0, 999):03d}"
        elif roll < 0.99:
            code = rng.choice(historical)
            region = regions.lookup(code)
            assert region is not None
            last = min(region.last_year, 2024)
            body = code + _date(rng, max(1930, last - 40), last) + f"{rng.randint(0, 999):03d}"
        else:
            code = rng.choice(list(resident.PERMIT_KINDS))
            body = code + _date(rng, 1950, 2024) + f"{rng.randint(0, 999):03d}"
        number = body + check_char(body)
        if rng.random() < 0.10:
            number = corrupt(rng, number)
        out.append(number)
    return out


def corrupt(rng: random.Random, number: str) -> str:
    kind = rng.randrange(6)
    if kind == 0:  # substitution
        i = rng.randrange(17)
        d = str((int(number[i]) + rng.randint(1, 9)) % 10)
        return number[:i] + d + number[i + 1 :]
    if kind == 1:  # adjacent transposition
        i = rng.randrange(16)
        return number[:i] + number[i + 1] + number[i] + number[i + 2 :]
    if kind == 2:  # impossible date (month 13), fixed check digit
        body = number[:10] + "13" + number[12:17]
        return body + check_char(body)
    if kind == 3:  # unknown address code, fixed check digit
        body = "990000" + number[6:17]
        return body + check_char(body)
    if kind == 4:  # wrong length
        return number[: rng.choice((15, 17))]
    return number[:8] + "A" + number[9:]  # junk character


def reason(number: str, ours: bool, theirs: bool) -> str:
    if number[:6] in resident.PERMIT_KINDS:
        return "residence permit (stdnum: no 830000; 810000/820000 only from 1997/1999)"
    code = number[:6]
    region = regions.lookup(code)
    if region is None:
        return "summary code xxxx01/20/02/11 not in loc.dat (accepted via its prefecture)"
    year = int(number[6:10])
    if ours and not theirs and not regions.valid_in(code, year):
        return "address code created after the birth year (accepted here)"
    return f"other (ours={ours}, stdnum={theirs})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    t = time.perf_counter()
    numbers = generate(args.n)
    print(f"generated {len(numbers):,} numbers in {time.perf_counter() - t:.1f} s")

    is_valid = resident.is_valid
    is_valid(numbers[0])  # load the registry outside the timing
    ric.is_valid(numbers[0])

    # Interleave the two validators chunk by chunk so that both see the same
    # machine load (the runs take seconds vs minutes).
    ours: list[bool] = []
    theirs: list[bool] = []
    t_ours = t_theirs = 0.0
    stdnum_is_valid = ric.is_valid
    perf = time.perf_counter
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start : start + CHUNK]
        t = perf()
        ours += [is_valid(n) for n in chunk]
        t_ours += perf() - t
        t = perf()
        theirs += [stdnum_is_valid(n) for n in chunk]
        t_theirs += perf() - t

    r_ours = len(numbers) / t_ours
    r_theirs = len(numbers) / t_theirs
    print(f"studentstatus.ids.resident.is_valid: {r_ours:>13,.0f} numbers/s ({t_ours:.2f} s)")
    print(f"stdnum.cn.ric.is_valid:              {r_theirs:>13,.0f} numbers/s ({t_theirs:.2f} s)")
    print(f"ratio: {r_ours / r_theirs:.1f}x")
    print(f"valid (ours): {sum(ours):,}  valid (stdnum): {sum(theirs):,}")
    diff = collections.Counter(reason(n, a, b) for n, a, b in zip(numbers, ours, theirs) if a != b)
    print(f"differing verdicts: {sum(diff.values()):,}")
    for why, count in diff.most_common():
        print(f"  {count:>8,}  {why}")


if __name__ == "__main__":
    main()
