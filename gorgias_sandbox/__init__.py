"""A local, in-memory imitation of the Gorgias REST API for tests, demos and benchmarks.

A package of its own beside ``worker``, from which it imports nothing (a test checks it): it is the
oracle the worker's client is tested against, so its rules (``schemas``, the route handlers) are an
independent, hand-written reading of Gorgias' documentation, corrections and recorded responses.

See ``docs/sandbox.md``. Entry points: :func:`gorgias_sandbox.server.create_app`,
:func:`gorgias_sandbox.server.start_sandbox` and :func:`gorgias_sandbox.server.serve`.
"""
