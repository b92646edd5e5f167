"""The core: plans and executes provisioning through small interfaces, knows no terminal."""
