"""What the tests share, and nothing else: the datasets' photos and the manifests made from
them (`data`), a gallery written for a test (`gallery`), the test keys (`keys`), photos made
from real ones (`images`), agency requests and the review chain (`requests`), the staff in
process or over HTTP (`staff`), the `facematch` command (`commands`) and the service served
(`service`).

No test module imports from another: what two of them need lives here, and a fixture more
than one module uses lives in tests/conftest.py (a module's own fixtures, and its overrides of
the shared ones, stay beside its tests).
"""
