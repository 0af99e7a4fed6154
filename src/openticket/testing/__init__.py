"""The kit for integrators and testers, shipped with the package.

- ``openticket.testing.contracts``: one contract test suite per port
  (``LockStoreContract``, ``UnitOfWorkContract``, one per repository, ...). Subclass
  it once per adapter and provide the fixture that builds the adapter.
- ``openticket.testing.strategies``: hypothesis strategies (seat maps, hold requests,
  money, times) for your own property tests.

Install with the ``testing`` extra (``pip install "openticket[testing]"``) for
pytest, pytest-asyncio and hypothesis.
"""
