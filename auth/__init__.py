"""Identity, tokens, roles and training records of the people and systems that use facematch.

Pure policy and cryptography: the accounts themselves live in the service's database.
"""

from auth.activation import canonical_code, code_halves, new_code_half
from auth.lockout import LockoutPolicy, is_locked
from auth.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_secret,
    needs_rehash,
    password_problem,
    verify_secret,
)
from auth.roles import LEVEL_ROLE, PERMISSIONS, SERVICE_ROLES, Level, Permission, Role, may
from auth.throttle import Throttle, parse_rate
from auth.tokens import (
    Claims,
    SubjectKind,
    TokenError,
    TokenIssuer,
    development_key,
    signing_key_problem,
)
from auth.totp import accepted_step, new_secret, provisioning_uri
from auth.training import certification_current, training_problem

__all__ = [
    "LEVEL_ROLE",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "PERMISSIONS",
    "SERVICE_ROLES",
    "Claims",
    "Level",
    "LockoutPolicy",
    "Permission",
    "Role",
    "SubjectKind",
    "Throttle",
    "TokenError",
    "TokenIssuer",
    "accepted_step",
    "canonical_code",
    "code_halves",
    "certification_current",
    "development_key",
    "hash_secret",
    "is_locked",
    "may",
    "needs_rehash",
    "new_code_half",
    "new_secret",
    "parse_rate",
    "password_problem",
    "provisioning_uri",
    "signing_key_problem",
    "training_problem",
    "verify_secret",
]
