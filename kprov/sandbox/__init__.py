"""A local implementation of the documented v0 API, for trying and testing kprov.

It shares no code with the client: two independent readings of the reference catch each
other's mistakes. By default it is faithful; opt-in, seeded faults (``faults``) and hostile
modes (``hostile``: reordered or lying answers, trap refusals, echoed secrets, redirects,
trickling and stalled answers...) make it the adversary kprov must survive.
"""
