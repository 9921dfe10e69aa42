"""Every refusal the service makes, in one catalogue: its stable code, the HTTP status it
answers with, and what it means. The rules, workflows and accounts raise a `Refusal` with a
code and a sentence for a person, and know nothing of HTTP; the API's handlers and the
command line each turn one into an answer in one place. docs/api.md's table of codes is
this catalogue (`python -m app.core.refusals` prints it; a test compares the two).

The matcher refuses photos with codes of its own (matcher.refusals) and the token reader
with its own (auth.tokens): they are in the catalogue too, under the same names.
"""

from __future__ import annotations

from enum import Enum


class Code(Enum):
    """A refusal's code (its name), with its status and its meaning."""

    def __init__(self, status: int, meaning: str) -> None:
        self.status = status
        self.meaning = meaning

    def __str__(self) -> str:
        return self.name

    # The photo.
    unsupported_image = (
        422,
        "not a JPEG or PNG by its bytes, damaged or truncated, with more after the image's end "
        "(a JPEG–ZIP polyglot), or an EXIF orientation that does not exist",
    )
    image_too_large = 413, "over the byte or pixel limit, or a decompression bomb"
    no_face = 422, "no face found (or none inside the `face_box` given)"
    multiple_faces = 422, "several faces; `faces` lists their boxes"
    face_too_small = 422, "fewer than `FACEMATCH_MIN_INTER_EYE_PX` pixels between the eyes"
    face_cut_off = 422, "less than `FACEMATCH_MIN_IN_FRAME` of the face box inside the photo"
    face_blurred = 422, "sharpness below `FACEMATCH_MIN_SHARPNESS`"
    face_turned = 422, "estimated yaw above `FACEMATCH_MAX_YAW_DEG`"
    invalid_face_box = 422, "`face_box` is not `left,top,right,bottom`"
    photo_too_slow = (
        422,
        "a probe worker took the photo up but did not finish it within `FACEMATCH_PROBE_TIMEOUT_S`",
    )
    face_matcher_busy = (
        429,
        "every probe worker stayed busy for `FACEMATCH_PROBE_TIMEOUT_S`, or more probes were "
        "already waiting than the line holds (eight per worker, at most 16); `Retry-After` says "
        "when to try again",
    )
    face_matcher_starting = (
        503,
        "the probe workers are still loading their models (after a start or a crash); "
        "`Retry-After` says when to try again",
    )
    unsupported_media_type = (
        415,
        "a probe declared as something other than `image/jpeg`, `image/png` or "
        "`application/octet-stream`, a court order's document that is not a PDF, JPEG or PNG, or "
        "a photo set sent as anything but `application/zip`",
    )
    content_type_mismatch = 415, "a probe declared as the format its bytes are not"

    # The request as HTTP.
    request_too_large = (
        413,
        "the request body is over `FACEMATCH_MAX_REQUEST_BYTES`, declared or as it arrives",
    )
    document_too_large = 413, "a court order's document over `FACEMATCH_MAX_COURT_ORDER_BYTES`"
    malformed_request = (
        400,
        "the body could not be read at all: broken JSON or multipart framing, a form part over "
        "1 MiB, more than 1,000 form fields",
    )
    invalid_request = 422, "a required field is missing or malformed"
    repeated_field = (
        422,
        "a form sends a field twice (two `probe` parts): refused whole, never half-read",
    )
    not_found = 404, "no such route"
    method_not_allowed = 405, "that method is not allowed on this route"
    client_not_allowed = (
        403,
        "the client's address is outside `FACEMATCH_ALLOWED_NETWORKS` (forwarding headers are "
        "read only from `FACEMATCH_TRUSTED_PROXIES`)",
    )
    too_many_attempts = (
        429,
        "more sign-ins or activations on the username than `FACEMATCH_LOGIN_RATE_LIMIT`, "
        "counted before a password is checked; `Retry-After` says when",
    )
    too_many_searches = (
        429,
        "more searches by the operator than `FACEMATCH_SEARCH_RATE_LIMIT`, counted before a "
        "photo is read; `Retry-After` says when",
    )
    conflict = 409, "a simultaneous change won; reload and try again"
    audit_unavailable = (
        503,
        "the action's audit entry could not be written, so the action was not taken "
        "(counted in `facematch_audit_write_failures_total`); try again later",
    )
    database_unavailable = (
        503,
        "the database could not complete the change (out of space, read-only, locked for too "
        "long or out of reach), so none of it was kept; try again later",
    )
    engine_files_changed = (
        503,
        "a weight file of the configured engine is no longer the file its figures were measured "
        "with; the engine cannot be reported on until the file is restored",
    )

    # Who is calling.
    not_authenticated = 401, "no access token"
    token_expired = 401, "the access token has expired"
    invalid_token = 401, "the access token was not signed by this service, or is not a valid one"
    account_disabled = 401, "the account is disabled"
    token_revoked = (
        401,
        "the token predates the account's last disabling, enabling, reset or password change",
    )
    invalid_credentials = (
        401,
        "wrong username, password, one-time code or client secret, an account not yet "
        "activated, or one locked for `FACEMATCH_LOCKOUT_MINUTES` after "
        "`FACEMATCH_LOCKOUT_FAILURES` failures in a row: one answer, taking as long, whether "
        "the account exists or not",
    )
    invalid_activation = (
        401,
        "the username or activation code is not right, or the code expired "
        "(`FACEMATCH_ACTIVATION_HOURS`) or was used; the same for an account that does not "
        "exist",
    )
    invalid_scrape_token = (
        401,
        "`GET /metrics` without `Authorization: Bearer` and the scrape token "
        "(`FACEMATCH_METRICS_TOKEN`); an access token is not one",
    )
    mfa_required = 403, "the token was made without the second factor"
    forbidden = 403, "the caller's role may not do this"
    unknown_calling_system = (
        403,
        "`X-Calling-System` does not carry a request-review system's token",
    )

    # Accounts.
    account_not_found = 404, "no such account"
    username_taken = 409, "an account with that username exists already"
    administrator_exists = (
        409,
        "the command line makes the first administrator only; there is one already",
    )
    weak_password = (
        422,
        "a password that is short, common, breached or easy to guess (the message says which)",
    )
    wrong_password = 422, "the current password given is not right"
    not_a_person = 409, "a system account has no second factor; it signs in with a client secret"
    totp_already_active = 409, "the account's second factor is set up already"
    totp_not_pending = 409, "no second-factor set-up waits to be confirmed"
    invalid_code = 422, "the one-time code that would confirm the second factor is not right"
    invalid_training = (
        422,
        "a training record completed in the future, expiring before it, or valid longer than "
        "`FACEMATCH_TRAINING_MAX_VALIDITY_DAYS`",
    )
    change_not_found = 404, "no such account change"
    own_change = 403, "an administrator approving a change they asked for"
    change_closed = 409, "the change was approved or rejected already"

    # Requests and their reviews.
    request_not_found = 404, "no such request"
    screening_rejected = 409, "screening rejected the request: it cannot be reviewed"
    review_closed = 409, "the request was approved or denied already"
    not_your_level = 409, "the request awaits another level's review"
    separation_of_duties = (
        403,
        "the caller submitted or already reviewed this request, or an operator assigned did",
    )
    operators_required = 422, "the unit administrator's approval names no operator"
    unknown_operator = 422, "an operator named is not an active operator's account"
    operators_not_assigned_here = 422, "only the unit administrator's approval assigns operators"
    not_submitter = 403, "only the account that submitted a request adds its court order"
    no_court_order = 409, "the request declares no court order"
    court_order_missing = 409, "review waits for the court order's document"
    court_order_closed = 409, "the court order's document is on file already, or review has begun"
    court_order_mismatch = 422, "the document's SHA-256 is not the one the request declared"
    court_order_not_found = 404, "no court order document is on file for the request"
    court_order_unreadable = (
        409,
        "the sealed document on file was changed, or sealed under a key not configured",
    )

    # Searches and their decisions.
    request_not_approved = 403, "the request is not approved (rule 7)"
    authorisation_expired = 403, "the request's authorisation has expired (rule 7)"
    searches_exhausted = 403, "the request's authorised searches are all used (rule 7)"
    not_assigned = 403, "the unit administrator's approval assigned the request to others"
    training_expired = (
        403,
        "the operator has no current certification for `FACEMATCH_OPERATOR_COURSE`",
    )
    console_signed_out = 401, "the console session ended: signed out, or never signed in"
    console_locked = (
        401,
        "the console session locked after `FACEMATCH_CONSOLE_IDLE_MINUTES` idle, or passed "
        "its maximum lifetime",
    )
    csrf_failed = 403, "a console form was sent without its session's CSRF token"
    # Independent testers' evaluations.
    invalid_photo_set = (
        422,
        "an evaluation's photo set that is not a ZIP holding `manifest.csv` and the photos it "
        "lists once each, with the columns `photo`, `person` and at most 8 labels of at most 32 "
        "values, and at least four people with two photos",
    )
    photo_set_too_large = (
        413,
        "more photos than `FACEMATCH_EVALUATION_MAX_PHOTOS`, one over "
        "`FACEMATCH_MAX_IMAGE_BYTES`, or all of them unpacked over "
        "`FACEMATCH_EVALUATION_MAX_BYTES`",
    )
    too_many_evaluations = (
        429,
        "the tester's evaluation before is not finished, or `FACEMATCH_EVALUATIONS_PER_DAY` "
        "were sent in the last day; `Retry-After` says when",
    )
    evaluation_not_found = 404, "no evaluation of the tester's by that number"
    search_not_found = 404, "no such search"
    not_search_operator = (
        403,
        "only the operator who searched (or the search's verifying examiner) examines it, "
        "sees its photos or reads its release",
    )
    no_such_candidate = 422, "the search has no candidate by that reference"
    conclusions_incomplete = 422, "a conclusion is missing for a candidate, or given twice"
    several_identifications = 422, "more than one candidate concluded an identification"
    already_examined = 409, "this examiner has recorded their conclusions on the search already"
    verification_not_needed = 409, "a release needs one examiner: there is nothing to verify"
    verifier_taken = 409, "another examiner is verifying this search"
    search_undecided = 409, "the search has not been decided yet"
    no_release = 404, "the search released nobody"
    release_already_shown = 409, "the release was shown to the operator once already"
    no_photo_store = 409, "`FACEMATCH_PHOTO_STORE` names no folder"
    photo_missing = 409, "the enrolled photo is not in the photo store"
    photo_changed = 409, "the photo store's file is not the photo enrolled (its SHA-256 differs)"
    no_such_photo = 404, "the candidate has no enrolled photo of that number"
    probe_not_kept = 409, "the search's probe was deleted once the search was decided"
    already_decided = 409, "the search was decided already"
    record_purged = 409, "the confirmed person's licence record has since been purged"
    candidates_purged = (
        409,
        "the search's candidate list was deleted under the retention policy",
    )

    # Oversight.
    invalid_period = 422, "a report period whose end is not after its start"


class Refusal(Exception):
    """What a rule, a workflow or an account says no with: a code from the catalogue and a
    sentence for a person. No HTTP: the API and the command line each answer it their way."""

    def __init__(self, code: Code, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after_s = code, message, retry_after_s


def table() -> str:
    """The catalogue as docs/api.md shows it."""
    rows = [f"| `{code.name}` | {code.status} | {code.meaning} |" for code in Code]
    return "\n".join(["| code | status | meaning |", "|---|---|---|", *rows]) + "\n"


if __name__ == "__main__":
    print(table(), end="")
