"""A local, in-memory imitation of the Gorgias REST API for tests, demos and benchmarks.

See ``docs/sandbox.md``. Entry points: :func:`worker.sandbox.server.create_app`,
:func:`worker.sandbox.server.start_sandbox` and :func:`worker.sandbox.server.serve`.
"""
