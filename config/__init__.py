"""Shipped configurations: ``rosetta.yaml`` is the embedded default used when no config is
given; the ``*.example.yaml`` files show other deployments."""
