"""The yardstick of bench/throughput.py: a bare concurrent client, as a capable script would be.

It reads the same roster as kprov (external_user_id,role,instance) and does the same work the
same way: accounts in POST /batch calls of 50, one learning instance per class, instructors
registered with the partner admin's token, learners with their instructor's own token. It
uses 16 threads, each with its own pooled ``requests.Session``, and nothing else: nothing
recorded, no answer checked beyond its status, no pacing, no deadline, no scrubbing. It shares
no code with kprov (it imports only requests).

Prints one line of JSON: {"requests": N, "accounts": N, "registrations": N, "failed": N}.

    python bench/bare_client.py BASE_URL KEY SECRET ROSTER [--graph-id G] [--concurrency 16]
        [--accounts-only]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

_local = threading.local()
_count_lock = threading.Lock()
_counts = {"requests": 0, "failed": 0}


def session() -> requests.Session:
    """One pooled session per thread."""
    own = getattr(_local, "session", None)
    if own is None:
        own = _local.session = requests.Session()
    return own


def post(url: str, *, bearer: str | None = None, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    answer = session().post(url, headers=headers, **kwargs)
    with _count_lock:
        _counts["requests"] += 1
        _counts["failed"] += answer.status_code >= 400
    return answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("key")
    parser.add_argument("secret")
    parser.add_argument("roster")
    parser.add_argument("--graph-id", default="gref-bench")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--accounts-only", action="store_true")
    args = parser.parse_args()
    base = args.base_url.rstrip("/")

    with open(args.roster, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    people = list(dict.fromkeys(r["external_user_id"] for r in rows))
    pool = ThreadPoolExecutor(args.concurrency)

    def run(work: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        return list(pool.map(work, items))

    def token(scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        answer = post(f"{base}/oauth/token", data=form, auth=(args.key, args.secret))
        return str(answer.json()["access_token"])

    admin = token()
    account_of: dict[str, str] = {}

    def batch(ids: list[str]) -> None:
        body = {
            "requests": [
                {"method": "post", "relative_url": "/accounts", "body": {"external_user_id": i}}
                for i in ids
            ]
        }
        for item in post(f"{base}/batch", bearer=admin, json=body).json()["responses"]:
            if item["code"] == 200:
                account_of[item["body"]["external_user_id"]] = item["body"]["account_id"]

    run(batch, [people[i : i + 50] for i in range(0, len(people), 50)])
    registrations = 0
    if not args.accounts_only:
        classes = list(dict.fromkeys(r["instance"] for r in rows))

        def instance(key: str) -> tuple[str, str]:
            body = {"graph_id": args.graph_id, "name": key}
            return key, post(f"{base}/learning-instances", bearer=admin, json=body).json()["id"]

        instance_of = dict(run(instance, classes))
        teachers: dict[str, str] = {}
        learners: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            if r["role"] == "instructor":
                teachers.setdefault(r["instance"], r["external_user_id"])
            else:
                learners[r["instance"]].append(r["external_user_id"])

        def register(work: tuple[str, str, str, str | None]) -> None:
            kind, ext, key, bearer = work
            body = {
                "type": kind,
                "account_id": account_of[ext],
                "learning_instance_id": instance_of[key],
            }
            post(f"{base}/registrations", bearer=bearer, json=body)

        run(register, [("instructor", ext, key, admin) for key, ext in teachers.items()])
        teacher_token = dict(zip(teachers, run(token, teachers.values()), strict=True))
        todo = [
            ("learner", ext, key, teacher_token[key])
            for key, people_ in learners.items()
            for ext in people_
        ]
        run(register, todo)
        registrations = len(todo) + len(teachers)
    pool.shutdown()
    print(json.dumps({**_counts, "accounts": len(account_of), "registrations": registrations}))
    return 0 if _counts["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
