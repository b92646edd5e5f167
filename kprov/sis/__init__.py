"""Rosters pulled from a student information system's OneRoster REST API (1.1 and 1.2).

A pull reads every collection it needs in full (``paging``), over the same wire rules as the
Knewton client (``wire`` reuses ``kprov.api``'s transport: deadlines, bounded retries, paced
429s, no redirects, answers capped, secrets scrubbed), then writes what it read as a OneRoster
CSV bundle (``convert``, ``bundle``) that kprov's bundle reader reads like any other: a pulled
source and the same data exported as CSV plan identically, because they *are* read by the
same code. Nothing here knows the terminal or the Knewton API.
"""
