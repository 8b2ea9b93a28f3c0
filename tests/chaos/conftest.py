"""The chaos test lives apart so that it runs first (it is minutes long); it uses the fixtures
of the integration tests."""

from tests.integration.conftest import (  # noqa: F401 -- fixtures, registered by import
    connectors,
    crd,
    operator_kubeconfig,
)
