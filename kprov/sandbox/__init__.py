"""A local, faithful implementation of the documented v0 API, for trying and testing kprov.

It shares no code with the client: two independent readings of the reference catch each
other's mistakes.
"""
