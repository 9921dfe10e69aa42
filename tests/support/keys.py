"""The tests' keys: fixed, so that a failing run can be repeated, and never used outside."""

from __future__ import annotations

# The token signing key: as `secrets.token_urlsafe(48)` makes one.
TEST_KEY = "fW6hOMJli19sPY8_R2TRYEyGwnbzv-zOGkwvx2YgWiJY5qKsfEo2895KuXLalkJn"
# 32 bytes in URL-safe base64, as `facematch keys new` prints one.
TEST_TEMPLATE_KEY = "dGVzdC10ZW1wbGF0ZS1rZXktMzItYnl0ZXMtbG9uZyE="
# As `facematch audit new-key` prints one: the audit log's signing key, and the anchors'.
TEST_AUDIT_KEY = "dGVzdC1hdWRpdC1zaWduaW5nLWtleS0zMi1ieXRlcyE="
TEST_ANCHOR_KEY = "BguqnW58FSKgc2Ag4gzhMb_KaLcK9yjBPstbGt63T_s="
