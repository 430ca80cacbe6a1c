"""A local, in-memory imitation of the Gorgias REST API for tests, demos and benchmarks.

See ``docs/sandbox.md``. Entry points: :func:`gorgias_sandbox.server.create_app`,
:func:`gorgias_sandbox.server.start_sandbox` and :func:`gorgias_sandbox.server.serve`.
"""
