"""The only package that knows HTTP: the Knewton v0 client, its errors and its models."""
