"""Accounts, training records and the changes that wait for a second administrator.

Every change that gives someone the means to act (an account made, enabled or reset; an
operator's training) answers 202 with the pending change, and for a person's account the
first half of its activation code; the second administrator's approval answers with what
took effect, and the second half (or a system's client secret), once. Disabling is at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import select

from app.accounts.models import Account, AccountChange
from app.accounts.schemas import (
    AccountChangeView,
    AccountOutcome,
    AccountView,
    ActiveChange,
    CredentialsView,
    NewAccount,
    NewTraining,
    TrainingView,
)
from app.accounts.service import (
    ChangeStatus,
    Outcome,
    add_training,
    approve_change,
    create_account,
    reject_change,
    reset_credentials,
    set_active,
)
from app.api.deps import Caller, ServicesDep, SessionDep, require
from app.api.schemas import RowId, problems
from auth import Permission

router = APIRouter(tags=["accounts"], responses=problems(401, 403, 404, 409, 422))
Admin = Annotated[Caller, Depends(require(Permission.manage_accounts))]


def account_view(account: Account) -> AccountView:
    return AccountView(
        id=account.id,
        username=account.username,
        kind=account.kind,
        role=account.role,
        active=account.active,
        awaiting_activation=account.secret_hash is None,
        totp_active=account.totp_active,
        locked_until=account.locked_until,
    )


def outcome_view(outcome: Outcome, response: Response | None = None) -> AccountOutcome:
    """The outcome as the API shows it; a change still pending answers 202."""
    pending = outcome.change is not None and outcome.change.status == ChangeStatus.pending
    if response is not None and pending:
        response.status_code = 202
    credentials = outcome.credentials
    return AccountOutcome(
        account=account_view(outcome.account) if outcome.account else None,
        credentials=CredentialsView(
            activation_code=credentials.activation_code,
            activation_part=credentials.activation_part,
            activation_expires_at=credentials.activation_expires_at,
            client_secret=credentials.client_secret,
        )
        if credentials
        else None,
        training=TrainingView.model_validate(outcome.training, from_attributes=True)
        if outcome.training
        else None,
        pending_change=AccountChangeView.model_validate(outcome.change) if outcome.change else None,
    )


@router.post("/v1/accounts", response_model=AccountOutcome, status_code=202, name="account.create")
def new_account(
    body: NewAccount, admin: Admin, services: ServicesDep, session: SessionDep, response: Response
) -> AccountOutcome:
    """Ask for an account: it is made when a second administrator approves. A person's
    comes with the first half of its activation code, in this response only."""
    with session.begin():
        outcome = create_account(session, body.username, body.role, admin.id, services.accounts)
        return outcome_view(outcome, response)


@router.get("/v1/accounts", response_model=list[AccountView])
def list_accounts(admin: Admin, session: SessionDep) -> list[AccountView]:
    return [account_view(a) for a in session.scalars(select(Account).order_by(Account.id))]


@router.patch(
    "/v1/accounts/{account_id}",
    response_model=AccountOutcome,
    name="account.change",
    responses={202: {"model": AccountOutcome, "description": "Waits for a second administrator"}},
)
def change_account(
    account_id: RowId,
    body: ActiveChange,
    admin: Admin,
    services: ServicesDep,
    session: SessionDep,
    response: Response,
) -> AccountOutcome:
    """Disable an account at once (its tokens and any activation code stop working), or ask
    for it to be enabled (202: a second administrator approves; its old tokens stay dead)."""
    with session.begin():
        outcome = set_active(session, account_id, body.active, admin.id, services.accounts)
        return outcome_view(outcome, response)


@router.post(
    "/v1/accounts/{account_id}/reset",
    response_model=AccountOutcome,
    status_code=202,
    name="account.reset",
)
def reset_account(
    account_id: RowId, admin: Admin, services: ServicesDep, session: SessionDep, response: Response
) -> AccountOutcome:
    """Ask for a reset: once a second administrator approves, the person's password and
    second factor are gone, a new activation code is issued (its first half in this
    response) and their sessions end; a system gets a new client secret."""
    with session.begin():
        outcome = reset_credentials(session, account_id, admin.id, services.accounts)
        return outcome_view(outcome, response)


@router.post(
    "/v1/accounts/{account_id}/training",
    response_model=AccountOutcome,
    status_code=201,
    name="training.add",
    responses={202: {"model": AccountOutcome, "description": "Waits for a second administrator"}},
)
def new_training(
    account_id: RowId,
    body: NewTraining,
    admin: Admin,
    services: ServicesDep,
    session: SessionDep,
    response: Response,
) -> AccountOutcome:
    """Record a completed course; an operator's waits for a second administrator."""
    with session.begin():
        outcome = add_training(
            session,
            account_id,
            body.course,
            body.completed_on,
            body.expires_on,
            admin.id,
            services.accounts,
        )
        return outcome_view(outcome, response)


@router.get("/v1/account-changes", response_model=list[AccountChangeView])
def list_changes(
    admin: Admin,
    session: SessionDep,
    status: Annotated[ChangeStatus | None, Query(description="Only changes in this state")] = None,
) -> list[AccountChangeView]:
    query = select(AccountChange).order_by(AccountChange.id)
    if status is not None:
        query = query.where(AccountChange.status == status)
    return [AccountChangeView.model_validate(c) for c in session.scalars(query)]


@router.post(
    "/v1/account-changes/{change_id}/approve",
    response_model=AccountOutcome,
    name="account_change.approve",
)
def approve(
    change_id: RowId, admin: Admin, services: ServicesDep, session: SessionDep
) -> AccountOutcome:
    """A second administrator approves: the change takes effect, and a new account's or a
    reset's credentials are shown in this response only."""
    with session.begin():
        outcome = approve_change(session, change_id, admin.id, admin.actor, services.accounts)
        return outcome_view(outcome)


@router.post(
    "/v1/account-changes/{change_id}/reject",
    response_model=AccountChangeView,
    name="account_change.reject",
)
def reject(change_id: RowId, admin: Admin, session: SessionDep) -> AccountChangeView:
    """Reject a pending change (the administrator who asked for it may withdraw it)."""
    with session.begin():
        return AccountChangeView.model_validate(reject_change(session, change_id, admin.id))
