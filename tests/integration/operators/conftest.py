"""The operator tests' IoTDA fakes (tests/unit/operators/conftest.py), for the storage
integration tests here."""

from unit.operators.conftest import fake_iotda, loopback_iotda

__all__ = ["fake_iotda", "loopback_iotda"]
